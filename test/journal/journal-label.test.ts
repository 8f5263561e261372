// journal label and clear (src/journal/label.ts) over a recording engine:
// every FreeBSD refusal and geomctl's own, with nothing written on refusal;
// the metadata written, field by field and byte for byte against the
// independent kernel model's label (test/model/journal-kernel.ts); one
// commit per command.

import { describe, expect, it } from 'vitest';
import type { BufferType, Engine, EngineStats } from '../../src/engine/types.js';
import { GeomError, UsageError } from '../../src/errors.js';
import type { Provider } from '../../src/provider/provider.js';
import { clearJournal, labelJournal, type JournalLabelOptions } from '../../src/journal/label.js';
import { decodeJournalMetadata } from '../../src/journal/metadata.js';
import { kDecodeMetadata, kLabel } from '../model/journal-kernel.js';

const M = 1024 * 1024;
const G = 1024 * M;

/** A sparse image: any size, zeros except the sectors written. */
class SparseProvider implements Provider {
  readonly name: string;
  readonly writable = true;
  readonly identity: { dev: number; ino: number };
  private readonly chunks = new Map<number, Buffer>();
  private static ino = 1;

  constructor(readonly path: string, readonly size: number, readonly mediaSectorSize = 512) {
    this.name = path.split('/').pop() as string;
    this.identity = { dev: 0, ino: SparseProvider.ino++ };
  }

  read(offset: number, length: number): Buffer {
    if (offset < 0 || offset + length > this.size) throw new Error(`read past the end of ${this.path}`);
    const out = Buffer.alloc(length);
    for (const [at, data] of this.chunks) {
      const s = Math.max(offset, at);
      const e = Math.min(offset + length, at + data.length);
      if (s < e) data.copy(out, s - offset, s - at, e - at);
    }
    return out;
  }

  readInto(offset: number, target: Buffer): void {
    this.read(offset, target.length).copy(target);
  }

  write(offset: number, data: Buffer): void {
    if (offset < 0 || offset + data.length > this.size) throw new Error(`write past the end of ${this.path}`);
    for (const [at, old] of [...this.chunks]) {
      if (at >= offset && at + old.length <= offset + data.length) this.chunks.delete(at);
    }
    this.chunks.set(offset, Buffer.from(data));
  }

  barrier(): void {}
  close(): void {}
}

function stats(): EngineStats {
  const z = () => ({ VOLUME: 0, META: 0, DATA: 0, UNDO: 0, ORDERED: 0 });
  return { reads: 0, readBytes: 0, writes: z(), writeBytes: z(), barriers: 0, undoRecords: 0, undoBytes: 0, cacheHits: 0, cacheMisses: 0, evictions: 0, combined: 0 };
}

/** Records writes; applies them to the providers only at commit(). */
class RecordingEngine implements Engine {
  readonly stats = stats();
  readonly critical = false;
  readonly writes: { image: number; offset: number; length: number; type: BufferType }[] = [];
  commits = 0;
  private pending: { image: number; offset: number; data: Buffer }[] = [];

  constructor(readonly providers: Provider[]) {}

  read(image: number, offset: number, length: number): Buffer {
    const p = this.providers[image] as Provider;
    if (offset % p.mediaSectorSize || length % p.mediaSectorSize) throw new Error(`unaligned read ${offset}+${length}`);
    const out = p.read(offset, length);
    for (const w of this.pending) {
      if (w.image !== image) continue;
      const s = Math.max(offset, w.offset);
      const e = Math.min(offset + length, w.offset + w.data.length);
      if (s < e) w.data.copy(out, s - offset, s - w.offset, e - w.offset);
    }
    return out;
  }

  write(image: number, offset: number, data: Buffer, type: BufferType): void {
    const p = this.providers[image] as Provider;
    if (offset % p.mediaSectorSize || data.length % p.mediaSectorSize) throw new Error(`unaligned write ${offset}+${data.length}`);
    this.writes.push({ image, offset, length: data.length, type });
    this.pending.push({ image, offset, data: Buffer.from(data) });
  }

  writeOrdered(): void {
    throw new Error('label and clear write no ordered data');
  }

  readInto(image: number, offset: number, target: Buffer): void {
    this.read(image, offset, target.length).copy(target);
  }

  barrier(): void {}

  abort(): void {
    this.pending = [];
  }

  commit(): void {
    for (const w of this.pending) (this.providers[w.image] as Provider).write(w.offset, w.data);
    this.pending = [];
    this.commits++;
  }

  close(): void {}
}

function lastSector(p: Provider, ss = 512): Buffer {
  return p.read(p.size - ss, ss);
}

/** A UFS2 superblock at 65536 whose file system is `fsBytes` long (4 KiB fragments). */
function plantUfs(p: SparseProvider, fsBytes: number): void {
  const sb = Buffer.alloc(8192);
  sb.writeInt32LE(32768, 48); // fs_bsize
  sb.writeInt32LE(4096, 52); // fs_fsize
  sb.writeInt32LE(3, 100); // fs_fsbtodb
  sb.writeInt32LE(4096, 104); // fs_sbsize
  sb.writeBigInt64LE(65536n, 1000); // fs_sblockloc
  sb.writeBigInt64LE(BigInt(fsBytes / 4096), 1080); // fs_size
  sb.writeUInt32LE(0x19540119, 1372);
  p.write(65536, sb);
}

function refusal(engine: RecordingEngine, opts: JournalLabelOptions): GeomError {
  const before = engine.providers.map((p) => lastSector(p).toString('hex'));
  let caught: unknown;
  try {
    labelJournal(engine, opts, () => 1);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(GeomError);
  // Nothing written, nothing committed.
  expect(engine.writes).toEqual([]);
  expect(engine.commits).toBe(0);
  expect(engine.providers.map((p) => lastSector(p).toString('hex'))).toEqual(before);
  return caught as GeomError;
}

describe('journal label, one image', () => {
  it('writes the metadata FreeBSD writes: 1 GiB journal at the end, CLEAN, type 3', () => {
    const d = new SparseProvider('dir/data.img', 4 * G);
    d.write(d.size - 512, Buffer.alloc(512, 0xee)); // an old label to spoil
    const engine = new RecordingEngine([d]);
    const r = labelJournal(engine, {}, () => 1886289645);
    expect(engine.commits).toBe(1);
    expect(engine.writes.every((w) => w.type === 'VOLUME' && w.offset === 4 * G - 512 && w.length === 512)).toBe(true);
    const sector = lastSector(d);
    const md = decodeJournalMetadata(sector, d.path);
    expect(md).toMatchObject({ magic: 'GEOM::JOURNAL', version: 0, id: 1886289645, type: 3, jstart: 3221224960n, jend: 4294966784n, joffset: 0n, jid: 0, flags: 1n, provider: '', provsize: 4294967296n });
    expect(md.hash.toString('hex')).toBe('6e2a2547ab2a73dfeb3ed89553fbcf49'); // cli.md's dump example
    expect(sector.subarray(101).every((b) => b === 0)).toBe(true);
    expect(r).toMatchObject({ id: 1886289645, sectorSize: 512, images: [{ path: 'dir/data.img', offset: 4 * G - 512 }] });
  });

  it('is byte-identical to the kernel model label (-c, -s, hardcoded name)', () => {
    const size = 101 * M + 4096;
    const model = kLabel({ size, jsize: 100 * M, id: 0xabcdef01, checksum: true, hardcoded: 'data.img' });
    const d = new SparseProvider('data.img', size);
    labelJournal(new RecordingEngine([d]), { checksum: true, jsize: 100 * M, hardcode: true }, () => 0xabcdef01);
    expect(lastSector(d).equals(model.d.subarray(size - 512))).toBe(true);
    expect(kDecodeMetadata(lastSector(d)).hashOk).toBe(true);
  });

  it('takes --id and --sectorsize', () => {
    const d = new SparseProvider('big.img', 2 * G);
    labelJournal(new RecordingEngine([d]), { id: 42, sectorSize: 4096, jsize: 512 * M }, () => 1);
    const sector = lastSector(d, 4096);
    const md = decodeJournalMetadata(sector, 'big.img');
    expect(md).toMatchObject({ id: 42, jstart: BigInt(2 * G - 4096 - 512 * M), jend: BigInt(2 * G - 4096) });
    expect(sector.subarray(101).every((b) => b === 0)).toBe(true);
  });

  it('labels over a file system with -f', () => {
    const d = new SparseProvider('ufs.img', 2 * G);
    plantUfs(d, 2 * G);
    labelJournal(new RecordingEngine([d]), { force: true }, () => 7);
    expect(decodeJournalMetadata(lastSector(d), 'ufs.img').id).toBe(7);
  });

  it('draws a random id when none is given', () => {
    const ids = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const d = new SparseProvider('r.img', 2 * G);
      ids.add(labelJournal(new RecordingEngine([d])).id);
    }
    expect(ids.size).toBeGreaterThan(1);
  });
});

describe('journal label, two images', () => {
  it('writes DATA and JOURNAL metadata, journal over the whole journal image, in one commit', () => {
    const size = 8 * M;
    const jsize = 48 * M;
    const model = kLabel({ size, journalImageSize: jsize, id: 0x0badcafe });
    const d = new SparseProvider('data.img', size);
    const j = new SparseProvider('journal.img', jsize);
    const engine = new RecordingEngine([d, j]);
    const r = labelJournal(engine, {}, () => 0x0badcafe);
    expect(engine.commits).toBe(1);
    // Both last sectors cleared first, then both metadata sectors.
    expect(engine.writes.map((w) => [w.image, w.offset])).toEqual([[0, size - 512], [1, jsize - 512], [0, size - 512], [1, jsize - 512]]);
    expect(lastSector(d).equals(model.d.subarray(size - 512))).toBe(true);
    expect(lastSector(j).equals(model.j.subarray(jsize - 512))).toBe(true);
    expect(decodeJournalMetadata(lastSector(d), 'data.img')).toMatchObject({ type: 1, jstart: 0n, jend: BigInt(jsize - 512), provsize: BigInt(size) });
    expect(decodeJournalMetadata(lastSector(j), 'journal.img')).toMatchObject({ type: 2, jstart: 0n, jend: BigInt(jsize - 512), provsize: BigInt(jsize) });
    expect(r.images.map((i) => i.path)).toEqual(['data.img', 'journal.img']);
  });

  it('accepts a file system that stops short of the last sector without -f', () => {
    const d = new SparseProvider('data.img', 64 * M);
    plantUfs(d, 32 * M);
    const j = new SparseProvider('journal.img', 48 * M);
    labelJournal(new RecordingEngine([d, j]), {}, () => 3);
    expect(decodeJournalMetadata(lastSector(d), 'data.img').type).toBe(1);
  });

  it('accepts a small journal image with --maxphys 128k', () => {
    const d = new SparseProvider('data.img', 64 * M);
    const j = new SparseProvider('journal.img', 10 * M);
    labelJournal(new RecordingEngine([d, j]), { maxphys: 128 * 1024 }, () => 3);
    expect(decodeJournalMetadata(lastSector(j), 'journal.img').jend).toBe(BigInt(10 * M - 512));
  });
});

describe('journal label refusals (nothing written)', () => {
  const one = (size: number, media = 512) => new RecordingEngine([new SparseProvider('data.img', size, media)]);
  const two = (dsize: number, jsize: number, jmedia = 512) => new RecordingEngine([new SparseProvider('data.img', dsize), new SparseProvider('journal.img', jsize, jmedia)]);

  it('a file system on the one image', () => {
    const e = one(2 * G);
    plantUfs(e.providers[0] as SparseProvider, 2 * G);
    const err = refusal(e, {});
    expect(err.line).toBe('File system exists on data.img and this operation would destroy it; use -f if you really want to do it');
    expect(err.code).toBe('REFUSED');
  });

  it('a file system using the data image last sector', () => {
    const e = two(64 * M, 48 * M);
    plantUfs(e.providers[0] as SparseProvider, 64 * M);
    expect(refusal(e, {}).line).toBe('File system on data.img is using the last sector and this operation is going to overwrite it; use -f if you really want to do it');
  });

  it('-s below 100 MiB, not a sector multiple, or too big for the image', () => {
    expect(refusal(one(2 * G), { jsize: 100 * M - 512 }).line).toBe('data.img: Journal too small: -s 104857088 is below 104857600 (100M); use -s 100M or more');
    expect(refusal(one(2 * G), { jsize: 100 * M + 100 }).line).toBe('data.img: Invalid journal size: -s 104857700 is not a multiple of the sector size 512');
    expect(refusal(one(G + 512), {}).line).toBe('data.img: Provider too small for journalling. You can try smaller jsize (default is 1073741824).');
    // jsize + sectorsize must be below the size: one more sector is enough.
    expect(() => labelJournal(one(G + 1024), {}, () => 1)).not.toThrow();
  });

  it('-s with two images', () => {
    const err = refusal(two(64 * M, 48 * M), { jsize: 100 * M });
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('jsize argument is valid only for all-in-one configuration.');
  });

  it('unequal sector sizes', () => {
    expect(refusal(two(64 * M, 48 * M, 4096), {}).line).toBe('Not equal sector sizes: data.img has 512, journal.img has 4096; give both the same --sectorsize');
  });

  it('a journal too small for maxphys, naming the smallest size that works', () => {
    const err = refusal(two(64 * M, 10 * M), {});
    const need = 2 * (512 + 20 * M) + 1024;
    expect(err.line).toBe(
      `journal.img: a journal of ${10 * M - 512} bytes is too small for maxphys ${M}: it must hold a header and two records of ${512 + 20 * M} bytes, ${need} bytes in all; the smallest that works is a journal image of at least ${need + 512} bytes (40M)`,
    );
    // That smallest size works, one sector less does not.
    expect(() => labelJournal(two(64 * M, need + 512), {}, () => 1)).not.toThrow();
    refusal(two(64 * M, need), {});
    const big = refusal(one(2 * G), { jsize: 100 * M, maxphys: 4 * M });
    expect(big.line).toMatch(/the smallest that works is -s 167774208$/);
  });

  it('a hardcoded name over 15 bytes', () => {
    const e = new RecordingEngine([new SparseProvider('dir/sixteen-chars.img', 2 * G)]);
    expect(refusal(e, { hardcode: true }).line).toBe("dir/sixteen-chars.img: provider name 'sixteen-chars.img' is 17 bytes, too long to hardcode (at most 15); rename the image or label without -h");
    expect(() => labelJournal(new RecordingEngine([new SparseProvider('fifteen-ch.img', 2 * G)]), { hardcode: true }, () => 1)).not.toThrow();
  });

  it('bad --sectorsize, an image size not a multiple of it, a medium with larger sectors', () => {
    expect(refusal(one(2 * G), { sectorSize: 1000 })).toBeInstanceOf(UsageError);
    expect(refusal(one(2 * G + 512), { sectorSize: 4096 }).line).toBe('data.img: its size 2147484160 is not a multiple of the sector size 4096');
    expect(refusal(one(2 * G, 4096), { sectorSize: 512 }).line).toBe("data.img: sector size 512 is smaller than the medium's 4096; use --sectorsize 4096 or more");
  });

  it('a bad --id, a one-sector data image, three images', () => {
    expect(refusal(one(2 * G), { id: 2 ** 32 })).toBeInstanceOf(UsageError);
    expect(refusal(two(512, 48 * M), {}).line).toBe('data.img: too small for a data image: it must be larger than one sector (512 bytes)');
    const three = new RecordingEngine([new SparseProvider('a', 2 * G), new SparseProvider('b', 2 * G), new SparseProvider('c', 2 * G)]);
    expect(refusal(three, {}).message).toBe('Invalid number of arguments.');
  });
});

describe('journal clear', () => {
  it('zeroes journal metadata (at its sector size) and reports other images, in one commit', () => {
    const a = new SparseProvider('a.img', 2 * G);
    const b = new SparseProvider('b.img', 2 * G);
    const c = new SparseProvider('c.img', 2 * G);
    labelJournal(new RecordingEngine([a]), {}, () => 1);
    labelJournal(new RecordingEngine([b]), { sectorSize: 4096 }, () => 2);
    const engine = new RecordingEngine([a, b, c]);
    const r = clearJournal(engine);
    expect(r.cleared).toEqual(['a.img', 'b.img']);
    expect(r.failures.map((f) => f.line)).toEqual(['Cannot clear metadata on c.img: no GEOM::JOURNAL metadata in its last sector']);
    expect(engine.commits).toBe(1);
    expect(engine.writes).toEqual([
      { image: 0, offset: 2 * G - 512, length: 512, type: 'VOLUME' },
      { image: 1, offset: 2 * G - 4096, length: 4096, type: 'VOLUME' },
    ]);
    expect(lastSector(a).every((x) => x === 0)).toBe(true);
    expect(lastSector(b, 4096).every((x) => x === 0)).toBe(true);
  });
});
