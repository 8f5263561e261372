// The journal engine against the independent kernel model
// (test/model/journal-kernel.ts): geomctl replays what the kernel writes, the
// kernel replays what geomctl writes, and a write far larger than the journal
// goes through on the smallest journal label accepts.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeomError } from '../../src/errors.js';
import { JournalDevice } from '../../src/journal/device.js';
import { minJournalSize } from '../../src/journal/format.js';
import { openImage } from '../../src/provider/file.js';
import {
  GJ_FLAG_CHECKSUM,
  GJ_FLAG_CLEAN,
  KernelJournal,
  kDataSize,
  kJournaledContents,
  kLabel,
  kRandom,
  kReadMetadata,
  kSync,
  type KDisk,
} from '../model/journal-kernel.js';
import { DirectEngine, K, M, labeled, modelWrites, openDevice, randomBytes, type Layout } from './journal-engine-support.js';

function dataArea(disk: KDisk): Buffer {
  return disk.d.subarray(0, kDataSize(disk));
}

/**
 * A kernel session: switches whose metadata update reached the disk or was
 * lost (the kernel does not wait for it), each followed by its copy, then a
 * crash: a few terminated journals neither recorded in the metadata nor
 * copied, and an unterminated tail. Returns the state a replay must give.
 */
function kernelSession(disk: KDisk, seed: number, maxphys: number, rounds: number, maxLen: number): Buffer {
  const rnd = kRandom(seed);
  const k = new KernelJournal(disk, { maxphys, random: rnd, flagsPolicy: 'keep-checksum' });
  k.openWrite();
  for (let i = 0; i < rounds; i++) {
    modelWrites(k, rnd, 1 + (rnd() % 12), maxLen);
    k.switchJournal({ metadata: rnd() % 3 !== 0 });
  }
  for (let i = rnd() % 3; i > 0; i--) {
    modelWrites(k, rnd, 1 + (rnd() % 4), maxLen);
    k.switchJournal({ metadata: false, copy: false });
  }
  modelWrites(k, rnd, rnd() % 8, maxLen);
  k.flushAll();
  return Buffer.from(k.terminated[k.terminated.length - 1] ?? dataArea(disk));
}

describe('geomctl replays what the kernel wrote', { timeout: 60_000 }, () => {
  it('to exactly the bytes of the last termination (one and two images, with and without checksums)', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 2 ** 31 }),
          two: fc.boolean(),
          checksum: fc.boolean(),
          maxphys: fc.constantFrom(16 * K, 64 * K),
          rounds: fc.integer({ min: 1, max: 8 }),
          sectorSize: fc.constantFrom(512, 4096),
        }),
        (s) => {
          const disk = labeled({ two: s.two, dataSize: M, jsize: minJournalSize(s.sectorSize, s.maxphys) + 2 * M, checksum: s.checksum, sectorSize: s.sectorSize }, s.seed);
          const expected = kernelSession(disk, s.seed, s.maxphys, s.rounds, s.maxphys);
          expect(kJournaledContents(disk, { maxphys: s.maxphys }).equals(expected)).toBe(true);
          const { dev } = openDevice(disk, { maxphys: s.maxphys });
          expect(dev.sectorSize).toBe(s.sectorSize);
          expect(dev.state).toBe(kSync(disk, { maxphys: s.maxphys }).found > 0 ? 'DIRTY' : 'BROKEN');
          // Read-only: the replay set laid over D.
          expect(dev.read(0, dev.dataSize).equals(expected)).toBe(true);
          dev.recover(true);
          expect(dataArea(disk).equals(expected)).toBe(true);
          const md = kReadMetadata(disk.d, s.sectorSize);
          expect(md.flags & GJ_FLAG_CLEAN).toBe(GJ_FLAG_CLEAN);
          expect((md.flags & GJ_FLAG_CHECKSUM) !== 0).toBe(s.checksum);
          // Replayed once, the device opens CLEAN and shows the same.
          const again = openDevice(disk, { maxphys: s.maxphys }).dev;
          expect(again.state).toBe('CLEAN');
          expect(again.read(0, again.dataSize).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  for (const maxphys of [128 * K, M]) {
    it(`detects maxphys ${maxphys / K}k and replays a wrapped journal`, () => {
      const rnd = kRandom(maxphys);
      const jsize = minJournalSize(512, M) + (maxphys === M ? 4 * M : 512 * K);
      const disk = kLabel({ size: 4 * M, journalImageSize: jsize + 512, id: 3, checksum: true });
      const k = new KernelJournal(disk, { maxphys, random: rnd, flagsPolicy: 'keep-checksum' });
      k.openWrite();
      const rmax1m = 512 + 20 * M;
      let wrapped = false;
      for (let i = 0; i < 2000 && !wrapped; i++) {
        const before = k.journalOffset;
        modelWrites(k, rnd, 20, maxphys);
        // Keep the metadata moving until the 1 MiB wrap zone, then crash-like switches.
        const late = k.journalOffset + rmax1m >= k.md.jend;
        k.switchJournal({ metadata: !late, copy: !late });
        if (!late && k.copying) k.copyFinish();
        if (k.journalOffset < before) wrapped = true;
      }
      expect(wrapped).toBe(true);
      modelWrites(k, rnd, 10, maxphys);
      k.switchJournal({ metadata: false, copy: false });
      const expected = k.terminated[k.terminated.length - 1] as Buffer;
      const { dev } = openDevice(disk);
      expect(dev.choice?.walk.maxphys).toBe(maxphys);
      expect(dev.choice?.disagree).toBe(false);
      expect(dev.read(0, dev.dataSize).equals(expected)).toBe(true);
      const r = dev.recover(false);
      expect(r.action).toBe('replay');
      expect(r.maxphys).toBe(maxphys);
      expect(dataArea(disk).equals(expected)).toBe(true);
    });
  }
});

describe('the kernel replays what geomctl wrote', { timeout: 60_000 }, () => {
  it('with switches, evictions, wrap-around and a finished last journal', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 2 ** 31 }),
          two: fc.boolean(),
          checksum: fc.boolean(),
          maxphys: fc.constantFrom(16 * K, 64 * K),
          writes: fc.integer({ min: 1, max: 120 }),
          cacheLimit: fc.constantFrom(32 * K, 256 * K, 64 * M),
          sync: fc.boolean(),
          sectorSize: fc.constantFrom(512, 4096),
        }),
        (s) => {
          const rnd = kRandom(s.seed);
          const ss = s.sectorSize;
          const disk = labeled({ two: s.two, dataSize: 2 * M, jsize: minJournalSize(ss, s.maxphys) + 16 * K, checksum: s.checksum, sectorSize: ss }, s.seed);
          const shadow = Buffer.from(dataArea(disk));
          const { dev } = openDevice(disk, { maxphys: s.maxphys, cacheLimit: s.cacheLimit, seed: s.seed });
          dev.recover(false);
          const w = dev.writer();
          for (let i = 0; i < s.writes; i++) {
            const len = (1 + (rnd() % 16)) * ss;
            const off = (rnd() % ((shadow.length - len) / ss)) * ss;
            const data = randomBytes(rnd, len);
            data.copy(shadow, off);
            w.write(off, data);
            if (rnd() % 10 === 0) expect(dev.read(off, len).equals(data)).toBe(true);
          }
          expect(dev.read(0, dev.dataSize).equals(shadow)).toBe(true);
          const counters = s.sync ? w.sync() : w.finish();
          const md = kReadMetadata(disk.d, ss);
          expect((md.flags & GJ_FLAG_CLEAN) !== 0).toBe(s.sync);
          // The kernel's own walk (it checks sums only when CHECKSUM is set).
          const ks = kSync(disk, { maxphys: s.maxphys, checksum: s.checksum });
          expect(ks.badSums).toEqual([]);
          expect(kJournaledContents(disk, { maxphys: s.maxphys }).equals(shadow)).toBe(true);
          if (s.sync) expect(dataArea(disk).equals(shadow)).toBe(true);
          // A kernel attaching now (replaying) shows the same device.
          const k = new KernelJournal(disk, { maxphys: s.maxphys, random: kRandom(1) });
          expect(k.logical.equals(shadow)).toBe(true);
          expect(counters.records).toBeGreaterThan(0);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('writes records and headers byte for byte as the kernel lays them out', () => {
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, 16 * K) + 16 * K, checksum: true });
    const { dev } = openDevice(disk, { maxphys: 16 * K, seed: 7 });
    dev.recover(false);
    const w = dev.writer();
    const a = randomBytes(kRandom(1), 8 * K);
    const b = randomBytes(kRandom(2), 4 * K);
    w.write(64 * K, a);
    w.write(0, b);
    w.finish();
    const j = disk.j;
    const ids = kRandom(7);
    const id0 = ids();
    const next0 = ids();
    // Journal header at jstart (0): "GJHDR\0", id, next id, zeros.
    expect(j.subarray(0, 6).toString('latin1')).toBe('GJHDR\0');
    expect(j.readUInt32LE(6)).toBe(id0);
    expect(j.readUInt32LE(10)).toBe(next0);
    expect(j.subarray(14, 512).every((x) => x === 0)).toBe(true);
    // One record: entries in offset order, data right after the header, MD5 of the data.
    expect(j.subarray(512, 519).toString('latin1')).toBe('GJRHDR\0');
    expect(j.readUInt32LE(519)).toBe(id0);
    expect(j.readUInt32LE(523)).toBe(0);
    expect(j.readUInt16LE(527)).toBe(2);
    expect(j.subarray(529, 537).equals(createHash('md5').update(b).update(a).digest().subarray(0, 8))).toBe(true);
    expect(j.readBigUInt64LE(537)).toBe(1024n);
    expect(j.readBigUInt64LE(545)).toBe(0n);
    expect(j.readBigUInt64LE(553)).toBe(4096n);
    expect(j.readBigUInt64LE(561)).toBe(BigInt(1024 + 4096));
    expect(j.readBigUInt64LE(569)).toBe(BigInt(64 * K));
    expect(j.readBigUInt64LE(577)).toBe(8192n);
    expect(j.subarray(585, 1024).every((x) => x === 0)).toBe(true);
    expect(j.subarray(1024, 1024 + 4096).equals(b)).toBe(true);
    expect(j.subarray(5120, 5120 + 8192).equals(a)).toBe(true);
    // The terminating header: id = next id of the first journal.
    expect(j.subarray(13312, 13318).toString('latin1')).toBe('GJHDR\0');
    expect(j.readUInt32LE(13318)).toBe(next0);
    // Metadata: dirty, naming the first journal, CHECKSUM kept.
    const md = kReadMetadata(disk.d, 512);
    expect(md).toMatchObject({ joffset: 0, jid: id0, flags: GJ_FLAG_CHECKSUM, provsize: disk.d.length });
  });

  it('orders its writes: records, barrier, header, barrier, metadata, barrier', () => {
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, 16 * K) + 16 * K });
    const { dev, engine } = openDevice(disk, { maxphys: 16 * K });
    dev.recover(false);
    const w = dev.writer();
    w.write(0, Buffer.alloc(8 * K, 1));
    w.finish();
    const kinds = engine.log.map((e) => (e.kind === 'barrier' ? `B${e.image}` : `W${e.image}@${e.offset}`));
    expect(kinds).toEqual(['W1@0', 'W1@512', 'W1@1024', 'B1', 'W1@9216', 'B1', `W0@${M}`, 'B0']);
  });
});

describe('a write of three times the journal', { timeout: 60_000 }, () => {
  it('goes through at 128k on the smallest journal', () => {
    const maxphys = 128 * K;
    const jsize = minJournalSize(512, maxphys);
    const disk = labeled({ two: true, dataSize: 3 * jsize + M, jsize, checksum: true });
    const { dev } = openDevice(disk, { maxphys, cacheLimit: 4 * M });
    dev.recover(false);
    const w = dev.writer();
    const input = randomBytes(kRandom(11), 3 * jsize);
    for (let o = 0; o < input.length; o += maxphys) w.write(o, input.subarray(o, Math.min(input.length, o + maxphys)));
    const counters = w.finish();
    expect(counters.switches).toBeGreaterThan(3);
    expect(counters.forcedSwitches).toBeGreaterThan(0);
    expect(kJournaledContents(disk, { maxphys }).subarray(0, input.length).equals(input)).toBe(true);
    const again = openDevice(disk).dev;
    expect(again.read(0, input.length).equals(input)).toBe(true);
  });

  it('goes through at 1M on the smallest journal (image files)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'geomctl-j3x-'));
    try {
      const maxphys = M;
      const jsize = minJournalSize(512, maxphys);
      const size = 3 * jsize + M;
      const disk = labeled({ two: true, dataSize: M, jsize: M });
      // Label the real images with the model's metadata sectors at the right sizes.
      const dm = kLabel({ size: size + 512, journalImageSize: jsize + 512, id: 42 });
      const dpath = join(dir, 'data.img');
      const jpath = join(dir, 'journal.img');
      writeFileSync(dpath, Buffer.alloc(0));
      truncateSync(dpath, size + 512);
      writeFileSync(jpath, Buffer.alloc(0));
      truncateSync(jpath, jsize + 512);
      const dp = openImage(dpath, { write: true });
      const jp = openImage(jpath, { write: true });
      dp.write(size, dm.d.subarray(size));
      jp.write(jsize, dm.j.subarray(jsize));
      void disk;
      const engine = new DirectEngine([dp, jp]);
      const dev = JournalDevice.open(engine, { cacheLimit: 64 * M, random: kRandom(5) });
      expect(dev.writeMaxphys).toBe(M);
      dev.recover(false);
      const w = dev.writer();
      const total = 3 * jsize;
      const piece = (i: number): Buffer => Buffer.alloc(maxphys, i & 0xff);
      let written = 0;
      for (let i = 0; written < total; i++) {
        const len = Math.min(maxphys, total - written);
        w.write(written, piece(i).subarray(0, len));
        written += len;
      }
      expect(w.sync().forcedSwitches).toBeGreaterThan(0);
      for (let o = 0, i = 0; o < total; o += maxphys, i++) {
        const got = dp.read(o, Math.min(maxphys, total - o));
        expect(got.every((x) => x === (i & 0xff))).toBe(true);
      }
      engine.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** A UFS2 superblock at 65536 that findUfsSuperblock accepts. */
function writeUfs2(disk: KDisk): void {
  const sb = Buffer.alloc(8192);
  sb.writeInt32LE(32768, 48); // fs_bsize
  sb.writeInt32LE(4096, 52); // fs_fsize
  sb.writeInt32LE(3, 100); // fs_fsbtodb
  sb.writeInt32LE(2048, 104); // fs_sbsize
  sb.writeInt8(1, 209); // fs_clean
  sb.writeBigInt64LE(65536n, 1000); // fs_sblockloc
  sb.writeBigInt64LE(64n, 1080); // fs_size
  sb.writeUInt32LE(0x19540119, 1372); // fs_magic
  sb.copy(disk.d, 65536);
}

describe('broken and damaged journals', () => {
  const layouts: [string, Layout][] = [
    ['one image', { two: false, dataSize: M, jsize: minJournalSize(512, 16 * K) + 16 * K }],
    ['two images (jstart 0)', { two: true, dataSize: M, jsize: minJournalSize(512, 16 * K) + 16 * K }],
  ];
  for (const [name, layout] of layouts) {
    it(`${name}: a crash before any termination is BROKEN; -f marks the UFS dirty and CLEAN`, () => {
      const disk = labeled(layout);
      writeUfs2(disk);
      const k = new KernelJournal(disk, { maxphys: 16 * K, random: kRandom(2) });
      k.openWrite(); // the kernel's metadata now names the active journal
      modelWrites(k, kRandom(3), 30, 16 * K);
      k.flushAll();
      const before = Buffer.from(dataArea(disk));
      const { dev } = openDevice(disk, { maxphys: 16 * K });
      expect(dev.state).toBe('BROKEN');
      expect(dev.read(0, dev.dataSize).equals(before)).toBe(true);
      let err: unknown;
      try {
        dev.recover(false);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GeomError);
      expect((err as GeomError).code).toBe('BROKEN');
      expect((err as GeomError).line).toMatch(/journal on data\.img is broken: no finished journal at offset \d+ \(id \d+\); 'geomctl journal scan data\.img' shows what is there; -f reinitialises it/);
      const r = dev.recover(true);
      expect(r).toMatchObject({ action: 'repair', journals: 0, ufsMarkedDirty: true });
      expect(disk.d.readInt8(65536 + 209)).toBe(0);
      expect(disk.d.readInt32LE(65536 + 1312) & 0x05).toBe(0x05);
      expect(kReadMetadata(disk.d, 512).flags & GJ_FLAG_CLEAN).toBe(GJ_FLAG_CLEAN);
      expect(openDevice(disk, { maxphys: 16 * K }).dev.state).toBe('CLEAN');
    });
  }

  it('a bad record checksum: the journals before it replay, the rest does not, -f marks the UFS dirty', () => {
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, 16 * K) + 64 * K, checksum: true });
    writeUfs2(disk);
    const rnd = kRandom(4);
    const k = new KernelJournal(disk, { maxphys: 16 * K, random: rnd, flagsPolicy: 'keep-checksum' });
    k.openWrite();
    modelWrites(k, rnd, 10, 8 * K);
    k.switchJournal({ copy: false });
    const first = Buffer.from(k.logical);
    const secondStart = k.journalOffset;
    modelWrites(k, rnd, 10, 8 * K);
    k.switchJournal({ metadata: false, copy: false });
    // Damage a data byte of the second journal's first record.
    disk.j[secondStart + 512 + 3] ^= 0xff;
    const { dev } = openDevice(disk, { maxphys: 16 * K });
    expect(dev.state).toBe('DIRTY');
    expect(dev.damaged).toBe(true);
    expect(dev.readWarnings().join('\n')).toMatch(/fails its MD5 checksum/);
    expect(dev.read(0, dev.dataSize).equals(first)).toBe(true);
    expect(() => dev.recover(false)).toThrow(/damaged/);
    const r = dev.recover(true);
    expect(r).toMatchObject({ action: 'repair', journals: 1, ufsMarkedDirty: true });
    const now = Buffer.from(dataArea(disk));
    now.fill(0, 65536, 65536 + 8192);
    const want = Buffer.from(first);
    want.fill(0, 65536, 65536 + 8192);
    expect(now.equals(want)).toBe(true);
  });

  it('refuses to write when the two maxphys walks disagree', () => {
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, M) + M });
    const { dev } = openDevice(disk);
    // Forge a disagreement: the walks exist only on a dirty device.
    (dev as unknown as { state: string }).state = 'DIRTY';
    (dev as unknown as { choice: unknown }).choice = { walk: { finished: 1, end: { reason: 'end' } }, given: false, disagree: true };
    expect(() => dev.recover(true)).toThrow(expect.objectContaining({ code: 'REFUSED', line: expect.stringMatching(/--maxphys 1M or --maxphys 128k/) }));
  });
});
