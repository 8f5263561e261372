// virstor label: the planner's results, messages and refusals on worked
// examples (computed by hand from gvirstor(8)'s rules), and labelVirstor's
// writes through an engine — the transaction's shape, the zeroed map written
// in bounded pieces, and the metadata sectors.

import { describe, expect, it } from 'vitest';
import type { BufferType, Engine, EngineStats } from '../../src/engine/types.js';
import { GeomError } from '../../src/errors.js';
import type { Provider } from '../../src/provider/provider.js';
import { labelVirstor, planVirstorLabel, type LabelComponent, type VirstorLabelInput } from '../../src/virstor/label.js';
import { decodeVirstorMetadata } from '../../src/virstor/metadata.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function comp(path: string, size: number, sectorSize = 512): LabelComponent {
  return { path, name: path, size, sectorSize };
}

function input(over: Partial<VirstorLabelInput> = {}): VirstorLabelInput {
  return {
    name: 'mydata',
    components: [comp('c0.img', GiB), comp('c1.img', GiB)],
    chunkSize: 4n * BigInt(MiB),
    virsize: 2n << 40n,
    maxphys: MiB,
    hardcode: false,
    id: 1234,
    ...over,
  };
}

function refusal(over: Partial<VirstorLabelInput>): GeomError {
  try {
    planVirstorLabel(input(over));
  } catch (err) {
    if (err instanceof GeomError) return err;
    throw err;
  }
  throw new Error('the label was not refused');
}

describe('planVirstorLabel', () => {
  it('labels two 1 GiB images with the defaults', () => {
    const { plan, messages } = planVirstorLabel(input());
    expect(plan.chunkSize).toBe(4 * MiB);
    expect(plan.virsize).toBe(2n << 40n);
    expect(plan.geometry).toMatchObject({ virtualChunks: 524288, mapSize: 4 * MiB, mapChunks: 1, reserved: 2 });
    expect(plan.metadata[0]).toMatchObject({ no: 0, count: 2, chunkCount: 255, chunkNext: 2, chunkReserved: 2, flags: 3, provsize: BigInt(GiB), id: 1234, provider: '' });
    expect(plan.metadata[1]).toMatchObject({ no: 1, count: 2, chunkCount: 255, chunkNext: 0, chunkReserved: 0, flags: 0 });
    expect(messages).toEqual([
      { kind: 'verbose', text: 'Total virtual chunks: 524288 (4 MB each), 2097152 MB total virtual size.' },
      { kind: 'verbose', text: 'Clearing metadata on c0.img c1.img.' },
      { kind: 'verbose', text: 'Writing allocation table to c0.img... (4 MB, 1 chunks) ' },
      { kind: 'verbose', text: 'Storing metadata on c0.img (256 chunks) (2 reserved) c1.img (256 chunks) ' },
    ]);
  });

  it('keeps every chunk when the last one ends before the metadata sector', () => {
    const { plan } = planVirstorLabel(input({ components: [comp('c0.img', GiB + 512)] }));
    expect(plan.metadata[0]!.chunkCount).toBe(256);
  });

  it('rounds the chunk size up to maxphys, with FreeBSD notes', () => {
    const { plan, messages } = planVirstorLabel(input({ chunkSize: 1000n * 1024n }));
    expect(plan.chunkSize).toBe(MiB);
    expect(messages.filter((m) => m.kind === 'notice').map((m) => m.text)).toEqual([
      'Resizing chunk size to be a multiple of MAXPHYS (1024 kB).',
      'New chunk size: 1024 kB',
    ]);
    const old = planVirstorLabel(input({ chunkSize: 100n * 1024n, maxphys: 128 * KiB }));
    expect(old.plan.chunkSize).toBe(128 * KiB);
    expect(old.messages[0]!.text).toBe('Resizing chunk size to be a multiple of MAXPHYS (128 kB).');
  });

  it('rounds the virtual size down to chunks, then up to whole map sectors', () => {
    const down = planVirstorLabel(input({ virsize: (2n << 40n) + 5n }));
    expect(down.plan.virsize).toBe(2n << 40n);
    expect(down.messages.filter((m) => m.kind === 'notice').map((m) => m.text)).toEqual([
      'Resizing virtual size to be a multiple of chunk size.',
      'New virtual size: 2097152 MB',
    ]);
    // 100 chunks of 1 MiB: an 800-byte map, completed to 512 * 2 bytes = 128 entries.
    const up = planVirstorLabel(input({ virsize: 100n * BigInt(MiB), chunkSize: BigInt(MiB) }));
    expect(up.plan.virsize).toBe(128n * BigInt(MiB));
    expect(up.plan.geometry.mapSize).toBe(1024);
    expect(up.messages.filter((m) => m.kind === 'notice').map((m) => m.text)).toEqual([
      'Resizing virtual size to fit virstor structures.',
      'New virtual size: 128 MB (28 new chunks)',
      'WARNING: Virtual storage size < Physical available storage (134217728 < 2147483648)',
    ]);
  });

  it('warns when the virtual size is below the physical size, and only then', () => {
    const warnings = (sizes: number[]) =>
      planVirstorLabel(input({ components: sizes.map((s, i) => comp(`c${i}.img`, s)), virsize: 128n * BigInt(MiB), chunkSize: BigInt(MiB) }))
        .messages.filter((m) => m.text.startsWith('WARNING'))
        .map((m) => m.text);
    expect(warnings([64 * MiB, 64 * MiB])).toEqual([]);
    expect(warnings([64 * MiB, 64 * MiB + 512])).toEqual(['WARNING: Virtual storage size < Physical available storage (134217728 < 134218240)']);
  });

  it('hardcodes base names with -h', () => {
    const { plan } = planVirstorLabel(input({ hardcode: true, components: [{ path: 'dir/c0.img', name: 'c0.img', size: GiB, sectorSize: 512 }] }));
    expect(plan.metadata[0]!.provider).toBe('c0.img');
  });

  it('labels with a larger sector size', () => {
    const { plan } = planVirstorLabel(input({ components: [comp('c0.img', GiB, 4096)], virsize: 100n * BigInt(4 * MiB) }));
    expect(plan.sectorSize).toBe(4096);
    // 100 entries = 800 bytes, completed to one 4096-byte sector: 512 entries.
    expect(plan.geometry.virtualChunks).toBe(512);
    expect(plan.metadata[0]!.chunkCount).toBe(255);
  });

  describe('refuses before writing anything', () => {
    it('-s 8P -m 1M: more reserved chunks than a u16 holds', () => {
      const err = refusal({ virsize: 8n << 50n, chunkSize: BigInt(MiB), components: [comp('c0.img', 65 * GiB)] });
      expect(err.code).toBe('REFUSED');
      expect(err.message).toBe('the 68719476736-byte map needs 131072 reserved chunks, more than chunk_reserved (u16) holds (65535)');
      expect(err.hint).toMatch(/larger chunk size/);
    });

    it('a name longer than 15 bytes', () => {
      expect(refusal({ name: 'sixteen-bytes-xx' }).message).toBe("virstor name 'sixteen-bytes-xx' is 16 bytes long, more than the 15 md_name holds");
      expect(refusal({ name: '' }).code).toBe('USAGE');
    });

    it('a component below max(4 chunks, map size)', () => {
      const err = refusal({ components: [comp('c0.img', GiB), comp('c1.img', 16 * MiB - 512)] });
      expect(err.message).toBe('Device c1.img is too small');
      expect(err.hint).toContain('16777216 bytes');
      // The map is the larger bound here: 2 TiB of 1 MiB chunks is a 16 MiB map.
      expect(refusal({ chunkSize: BigInt(MiB), components: [comp('c0.img', 16 * MiB - 512)] }).message).toBe('Device c0.img is too small');
    });

    it('components with different sector sizes', () => {
      const err = refusal({ components: [comp('c0.img', GiB), comp('c1.img', GiB, 4096)] });
      expect(err.code).toBe('MISMATCH');
      expect(err.message).toBe('Devices need to have same sector size (4096 on c1.img needs to be 512).');
    });

    it('zero sizes, a chunk size beyond u32, a virtual size below one chunk', () => {
      expect(refusal({ virsize: 0n }).message).toBe('Virtual size and chunk size must be non-zero');
      expect(refusal({ chunkSize: 0n }).message).toBe('Virtual size and chunk size must be non-zero');
      expect(refusal({ chunkSize: 5n << 30n }).message).toMatch(/^chunk size 5368709120 does not fit md_chunk_size/);
      // Rounding up to maxphys overflows 32 bits, where FreeBSD would store 0.
      expect(refusal({ chunkSize: (4n << 30n) - 1n }).message).toMatch(/^chunk size 4294967296 does not fit/);
      expect(refusal({ virsize: BigInt(MiB) }).message).toBe('virtual size 1048576 is smaller than the chunk size 4194304');
    });

    it('a component 0 that cannot hold more chunks than it reserves', () => {
      // A 3.5 MiB map of 1 MiB chunks: 4 map chunks, 8 reserved; component 0 has 4 chunks.
      const err = refusal({ chunkSize: BigInt(MiB), virsize: 458752n * BigInt(MiB), components: [comp('c0.img', 4 * MiB + 512)] });
      expect(err.message).toBe('component 0 (c0.img) holds 4 chunks, not more than the 8 reserved for the allocation map');
    });

    it('the same image twice, a name that cannot be hardcoded, a bad sector size', () => {
      const same = { dev: 1, ino: 2 };
      expect(refusal({ components: [{ ...comp('a.img', GiB), identity: same }, { ...comp('./a.img', GiB), identity: same }] }).message).toBe('./a.img is named twice (also as a.img)');
      expect(refusal({ hardcode: true, components: [comp('a-very-long-name.img', GiB)] }).message).toMatch(/^cannot hardcode a-very-long-name.img/);
      expect(refusal({ components: [comp('c0.img', GiB, 1000)] }).code).toBe('USAGE');
      expect(refusal({ components: [comp('c0.img', GiB + 512, 4096)] }).message).toBe('c0.img (1073742336 bytes) is not a whole number of 4096-byte sectors');
      expect(refusal({ id: 2 ** 32 }).code).toBe('USAGE');
    });
  });
});

interface Write {
  image: number;
  offset: number;
  length: number;
  type: BufferType;
}

/** An engine over in-memory images that records what it is asked to do. */
class RecordingEngine implements Engine {
  readonly providers: readonly Provider[];
  readonly stats = {} as EngineStats;
  readonly critical = false;
  readonly log: Array<Write | 'commit'> = [];
  maxRead = 0;
  readonly reads: number[] = [];
  constructor(
    private readonly images: Array<Buffer | undefined>,
    private readonly zeros?: Buffer,
    /** Where the images hold data (provider.dataRegions); default: everywhere. */
    regions?: Array<[number, number]>,
  ) {
    // All label asks of a provider: where its data is.
    this.providers = images.map(() => ({ dataRegions: (o: number, l: number) => regions ?? [[o, o + l]] }) as unknown as Provider);
  }
  read(image: number, offset: number, length: number): Buffer {
    this.maxRead = Math.max(this.maxRead, length);
    this.reads.push(offset);
    const img = this.images[image];
    // A sparse image too large to hold: it reads as zeros.
    if (!img) return this.zeros!.subarray(0, length);
    return Buffer.from(img.subarray(offset, offset + length));
  }
  write(image: number, offset: number, data: Buffer, type: BufferType): void {
    this.log.push({ image, offset, length: data.length, type });
    const img = this.images[image];
    if (img) data.copy(img, offset);
  }
  writeOrdered(): void {
    throw new Error('label uses no ordered writes');
  }
  readInto(image: number, offset: number, target: Buffer): void {
    this.read(image, offset, target.length).copy(target);
  }
  barrier(): void {}
  abort(): void {}
  commit(): void {
    this.log.push('commit');
  }
  close(): void {}
}

describe('labelVirstor', () => {
  it('writes the zeroed map and the metadata sectors as one transaction', () => {
    const size = 64 * MiB;
    const c0 = Buffer.alloc(size);
    const c1 = Buffer.alloc(size, 0x5a);
    c0.fill(0x11, 512, 1536); // garbage in the first map piece
    c0.fill(0x22, 3 * MiB, 3 * MiB + 10); // garbage in the fourth
    c0.fill(0x33, 4 * MiB - 8, 4 * MiB + 8); // past the map's end (3.5 MiB)
    c0.fill(0x44, size - 512); // an old metadata sector
    const { plan } = planVirstorLabel(input({
      chunkSize: BigInt(MiB),
      virsize: 458752n * BigInt(MiB), // a 3.5 MiB map
      components: [comp('c0.img', size), comp('c1.img', size)],
    }));
    expect(plan.geometry.mapSize).toBe(3.5 * MiB);
    const engine = new RecordingEngine([c0, c1]);
    const progress: number[] = [];
    labelVirstor(engine, plan, (done, total) => {
      expect(total).toBe(3.5 * MiB);
      progress.push(done);
    });
    expect(engine.log).toEqual([
      { image: 0, offset: 0, length: MiB, type: 'META' },
      { image: 0, offset: 3 * MiB, length: MiB / 2, type: 'META' },
      { image: 0, offset: size - 512, length: 512, type: 'VOLUME' },
      { image: 1, offset: size - 512, length: 512, type: 'VOLUME' },
      'commit',
    ]);
    expect(progress).toEqual([MiB, 2 * MiB, 3 * MiB, 3.5 * MiB]);
    expect(c0.subarray(0, 3.5 * MiB).every((b) => b === 0)).toBe(true);
    // Bytes past the map are not the label's business.
    expect(c0[4 * MiB]).toBe(0x33);
    expect(c1[0]).toBe(0x5a);
    for (const [i, img] of [c0, c1].entries()) {
      const sector = img.subarray(size - 512);
      expect(decodeVirstorMetadata(sector, `c${i}.img`)).toEqual(plan.metadata[i]);
      expect(sector.subarray(92).every((b) => b === 0)).toBe(true);
    }
  });

  it('writes metadata at the start of the last sector of the labeled sector size', () => {
    const size = 32 * MiB;
    const c0 = Buffer.alloc(size, 0x77);
    const { plan } = planVirstorLabel(input({ chunkSize: BigInt(MiB), virsize: 64n * BigInt(MiB), components: [comp('c0.img', size, 4096)] }));
    labelVirstor(new RecordingEngine([c0]), plan);
    const sector = c0.subarray(size - 4096);
    expect(decodeVirstorMetadata(sector, 'c0.img')).toEqual(plan.metadata[0]);
    expect(sector.subarray(92).every((b) => b === 0)).toBe(true);
    expect(c0[size - 4097]).toBe(0x77);
  });

  it('streams a 2 GiB map (1 PiB of 4 MiB chunks) in 1 MiB pieces and leaves zeros alone', () => {
    const { plan } = planVirstorLabel(input({ virsize: 1n << 50n, components: [comp('c0.img', 5 * GiB)] }));
    expect(plan.geometry.mapSize).toBe(2 * GiB);
    expect(plan.metadata[0]!.chunkReserved).toBe(1024);
    const engine = new RecordingEngine([undefined], Buffer.alloc(MiB));
    labelVirstor(engine, plan);
    expect(engine.maxRead).toBe(MiB);
    expect(engine.log).toEqual([{ image: 0, offset: 5 * GiB - 512, length: 512, type: 'VOLUME' }, 'commit']);
  });

  it('reads only the pieces of the map where the image holds data (the holes read as zeros)', () => {
    const { plan } = planVirstorLabel(input({ virsize: 1n << 50n, components: [comp('c0.img', 5 * GiB)] }));
    const progress: number[] = [];
    const sparse = new RecordingEngine([undefined], Buffer.alloc(MiB), []);
    labelVirstor(sparse, plan, (done) => progress.push(done));
    expect(sparse.reads).toEqual([]);
    expect(progress).toEqual([2 * GiB]);
    expect(sparse.log).toEqual([{ image: 0, offset: 5 * GiB - 512, length: 512, type: 'VOLUME' }, 'commit']);
    const scattered = new RecordingEngine([undefined], Buffer.alloc(MiB), [
      [5 * MiB + 100, 5 * MiB + 200],
      [GiB - 10, GiB + 10],
    ]);
    labelVirstor(scattered, plan);
    expect(scattered.reads).toEqual([5 * MiB, GiB - MiB, GiB]);
  });
});
