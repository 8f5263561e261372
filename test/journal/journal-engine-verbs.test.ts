// The library side of the journal verbs: scan, check, export, read, the
// write input stream and finding the journal image by tasting.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkJournal } from '../../src/journal/check.js';
import { exportToFile, readRange, writeFromFile } from '../../src/io/transfer.js';
import { journalBlockProvider } from '../../src/journal/provider.js';
import { minJournalSize } from '../../src/journal/format.js';
import { journalImages } from '../../src/journal/resolve.js';
import { journalSummary, renderScan, scanJournal, scanJson, type ScanReport } from '../../src/journal/scan.js';
import { JournalDevice } from '../../src/journal/device.js';
import { KernelJournal, kLabel, kRandom, kReadMetadata } from '../model/journal-kernel.js';
import { DirectEngine, K, M, labeled, modelWrites, openDevice, providersOf, randomBytes } from './journal-engine-support.js';
import { expectGolden } from '../helpers/golden.js';

const MAXPHYS = 16 * K;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'geomctl-jverbs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A dirty kernel journal: two finished journals behind the metadata, an unfinished tail. */
function dirtyDisk(checksum = true): ReturnType<typeof labeled> {
  const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, MAXPHYS) + 64 * K, checksum });
  const rnd = kRandom(21);
  const k = new KernelJournal(disk, { maxphys: MAXPHYS, random: rnd, flagsPolicy: 'keep-checksum' });
  k.openWrite();
  modelWrites(k, rnd, 6, 8 * K);
  k.switchJournal({ copy: false });
  modelWrites(k, rnd, 6, 8 * K);
  k.switchJournal({ metadata: false, copy: false });
  modelWrites(k, rnd, 2, 8 * K);
  k.flushAll();
  return disk;
}

describe('scan', () => {
  it('shows every header and record of the walk, finished or not, and the replay', () => {
    const disk = dirtyDisk();
    const engine = new DirectEngine(providersOf(disk));
    const dev = JournalDevice.open(engine, { maxphys: MAXPHYS, cacheLimit: M, details: true });
    const r = scanJournal(dev, { maxphys: MAXPHYS });
    expect(r.state).toBe('DIRTY');
    expect(r.walks).toHaveLength(1);
    const w = r.walks[0]!;
    expect(w.finished).toBe(2);
    expect(w.journals.map((j) => j.finished)).toEqual([true, true, false]);
    expect(w.journals[2]!.recordList!.length).toBeGreaterThan(0);
    expect(w.journals.flatMap((j) => j.recordList!).every((rec) => rec.checksum === 'ok')).toBe(true);
    // The whole text: every header and record at its offset, ids and all (the model's ids are seeded).
    expectGolden('journal-scan-model.txt', renderScan(r));
    const json = scanJson(r) as { walks: { journals: { records: unknown[] }[] }[]; maxphys: number };
    expect(json.maxphys).toBe(MAXPHYS);
    expect(json.walks[0]!.journals[0]!.records.length).toBe(w.journals[0]!.records);
    expect(journalSummary(dev)).toMatchObject({ state: 'DIRTY', pendingJournals: 2 });
    expect(journalSummary(dev).journalUsedBytes).toBeGreaterThan(0);
  });

  it('--all finds every header and record in the journal space, including stale ones', () => {
    const disk = dirtyDisk(false);
    const dev = openDevice(disk, { maxphys: MAXPHYS }).dev;
    const r = scanJournal(dev, { maxphys: MAXPHYS, all: true });
    const found = r.found!;
    expect(found.filter((f) => f.kind === 'header').length).toBe(3);
    const walked = r.walks[0]!.journals.reduce((n, j) => n + j.records, 0);
    expect(found.filter((f) => f.kind === 'record' && !f.invalid).length).toBeGreaterThanOrEqual(walked);
    expect(renderScan(r)).toMatch(/every header and record in/);
  });

  it('shows both walks when maxphys is detected and they differ', () => {
    const rnd = kRandom(8);
    const disk = kLabel({ size: 2 * M, journalImageSize: minJournalSize(512, M) + 2 * M + 512, id: 4 });
    const k = new KernelJournal(disk, { maxphys: M, random: rnd });
    k.openWrite();
    modelWrites(k, rnd, 8, 512 * K);
    k.switchJournal({ copy: false });
    const dev = openDevice(disk).dev;
    const r = scanJournal(dev, {});
    expect(r.walks.map((w) => [w.maxphys, w.finished])).toEqual([
      [M, 1],
      [128 * K, 0],
    ]);
    expect(renderScan(r)).toMatch(/maxphys 1024k detected: its walk finishes more journals\./);
  });

  it('says why detection chose its walk: more journals, damage reached, or the same replay', () => {
    const walk = (maxphys: number, finished: number, reason: 'end' | 'checksum'): ScanReport['walks'][number] => ({
      maxphys,
      finished,
      journals: [],
      end: { offset: 0, reason, detail: '' },
      replay: { ranges: finished, bytes: finished * 512 },
    });
    const report = (walks: ScanReport['walks']): ScanReport => ({
      data: 'd.img', journal: 'd.img', sectorSize: 512, jstart: 0, jend: 0, state: 'DIRTY', checksum: false, joffset: 0, jid: 1, walks, maxphysGiven: false, disagree: false,
    });
    const last = (r: ScanReport): string => renderScan(r).trimEnd().split('\n').pop()!;
    expect(last(report([walk(M, 2, 'end'), walk(128 * K, 1, 'end')]))).toBe('maxphys 1024k detected: its walk finishes more journals.');
    expect(last(report([walk(128 * K, 1, 'checksum'), walk(M, 1, 'end')]))).toBe('maxphys 128k detected: its walk reaches damage the other stops short of.');
    expect(last(report([walk(M, 0, 'end'), walk(128 * K, 0, 'end')]))).toBe('Both walks replay the same: maxphys 1024k used.');
    expect(last({ ...report([walk(M, 1, 'end'), walk(128 * K, 1, 'end')]), disagree: true })).toBe('The two walks disagree on what to replay: give --maxphys.');
  });
});

describe('check', () => {
  it('reports a broken journal and repairs it with -y', () => {
    const disk = labeled({ two: false, dataSize: M, jsize: minJournalSize(512, MAXPHYS) + 16 * K });
    const k = new KernelJournal(disk, { maxphys: MAXPHYS, random: kRandom(1) });
    k.openWrite();
    modelWrites(k, kRandom(2), 5, 4 * K);
    k.flushAll();
    const r = checkJournal(new DirectEngine(providersOf(disk)), { maxphys: MAXPHYS, cacheLimit: M, repair: false });
    expect(r.problems.join('\n')).toMatch(/journal is broken: no finished journal at md_joffset/);
    const y = checkJournal(new DirectEngine(providersOf(disk)), { maxphys: MAXPHYS, cacheLimit: M, repair: true });
    expect(y.repaired?.action).toBe('repair');
    expect(y.state).toBe('CLEAN');
    expect(checkJournal(new DirectEngine(providersOf(disk)), { maxphys: MAXPHYS, cacheLimit: M, repair: false }).problems).toEqual([]);
  });

  it('reports bad metadata as a problem instead of failing', () => {
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, MAXPHYS) + 16 * K });
    disk.j[disk.j.length - 512 + 30] ^= 1; // breaks the journal image's MD5
    const r = checkJournal(new DirectEngine(providersOf(disk)), { maxphys: MAXPHYS, cacheLimit: M, repair: false });
    expect(r.problems).toEqual([expect.stringMatching(/MD5 hash mismatch for journal\.img/)]);
  });

  it('a dirty journal with finished journals is not a problem; -y replays it', () => {
    const disk = dirtyDisk();
    const r = checkJournal(new DirectEngine(providersOf(disk)), { maxphys: MAXPHYS, cacheLimit: M, repair: true });
    expect(r.problems).toEqual([]);
    expect(r.notes.join('\n')).toMatch(/2 finished journals/);
    expect(r.repaired).toMatchObject({ action: 'replay', journals: 2 });
    expect(kReadMetadata(disk.d, 512).flags & 1).toBe(1);
  });
});

describe('export and read', () => {
  it('export writes the journaled provider with holes for zero runs', () => {
    const disk = dirtyDisk();
    const { dev } = openDevice(disk, { maxphys: MAXPHYS });
    const want = dev.read(0, dev.dataSize);
    const out = join(dir, 'out.img');
    writeFileSync(out, Buffer.alloc(3 * M, 0xee)); // a longer old file: truncated
    const r = exportToFile(journalBlockProvider(dev, () => {}), out);
    expect(r.bytes).toBe(M);
    expect(r.written).toBeLessThan(M);
    expect(readFileSync(out).equals(want)).toBe(true);
    expect(statSync(out).blocks * 512).toBeLessThan(M);
  });

  it('streams any range, unaligned', () => {
    const disk = dirtyDisk();
    const { dev } = openDevice(disk, { maxphys: MAXPHYS });
    const all = dev.read(0, dev.dataSize);
    const parts: Buffer[] = [];
    readRange(journalBlockProvider(dev, () => {}), 1000, 300 * K + 7, { pieceSize: 128 * K, write: (b) => parts.push(Buffer.from(b)) });
    expect(Buffer.concat(parts).equals(all.subarray(1000, 1000 + 300 * K + 7))).toBe(true);
    expect(dev.read(3, 5).equals(all.subarray(3, 8))).toBe(true);
  });
});

describe('write input', () => {
  it('streams a file in maxphys requests and completes the last partial sector', () => {
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, MAXPHYS) + 16 * K });
    randomBytes(kRandom(3), M).copy(disk.d);
    const { dev } = openDevice(disk, { maxphys: MAXPHYS });
    const before = dev.read(0, dev.dataSize);
    dev.recover(false);
    const input = randomBytes(kRandom(4), 100 * K + 100);
    const path = join(dir, 'in.bin');
    writeFileSync(path, input);
    const fd = openSync(path, 'r');
    const n = writeFromFile(journalBlockProvider(dev, () => {}), fd, path, 8192);
    closeSync(fd);
    expect(n).toBe(input.length);
    dev.writer().finish();
    const want = Buffer.from(before);
    input.copy(want, 8192);
    expect(openDevice(disk, { maxphys: MAXPHYS }).dev.read(0, M).equals(want)).toBe(true);
  });

  it('refuses an input that passes the end before writing anything', () => {
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, MAXPHYS) + 16 * K });
    const { dev, engine } = openDevice(disk, { maxphys: MAXPHYS });
    dev.recover(false);
    const path = join(dir, 'big.bin');
    writeFileSync(path, Buffer.alloc(0));
    truncateSync(path, M);
    const fd = openSync(path, 'r');
    expect(() => writeFromFile(journalBlockProvider(dev, () => {}), fd, path, 512)).toThrow(/passes the end/);
    expect(() => writeFromFile(journalBlockProvider(dev, () => {}), fd, path, 100)).toThrow(/not a multiple of the 512-byte sectors/);
    closeSync(fd);
    expect(engine.log).toEqual([]);
  });
});

describe('finding the journal image', () => {
  it('tastes the directory for the journal image with the same id', () => {
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, MAXPHYS) + 16 * K }, 0xabc);
    const other = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, MAXPHYS) + 16 * K }, 0xdef);
    writeFileSync(join(dir, 'data.img'), disk.d);
    writeFileSync(join(dir, 'a-other-journal.img'), other.j);
    writeFileSync(join(dir, 'junk.bin'), Buffer.alloc(100));
    writeFileSync(join(dir, 'z-journal.img'), disk.j);
    expect(journalImages(join(dir, 'data.img'), undefined, [dir])).toEqual([join(dir, 'data.img'), join(dir, 'z-journal.img')]);
    expect(journalImages(join(dir, 'data.img'), 'x.img', [dir])).toEqual([join(dir, 'data.img'), 'x.img']);
    rmSync(join(dir, 'z-journal.img'));
    expect(() => journalImages(join(dir, 'data.img'), undefined, [dir])).toThrow(/no image with its journal was found/);
  });
});

describe('copyToData', () => {
  it('lays every range over the data image and nothing else, whatever the batching', async () => {
    const fc = (await import('fast-check')).default;
    const { copyToData, journalSource } = await import('../../src/journal/replay.js');
    const { RangeSet } = await import('../../src/journal/rangeset.js');
    const { sliceExtent, journalExtent, memoryExtent } = await import('../../src/journal/extent.js');
    const { MemoryProvider } = await import('../sim/memory.js');
    fc.assert(
      fc.property(
        fc.array(fc.record({ sector: fc.nat(2000), sectors: fc.integer({ min: 1, max: 700 }), cached: fc.boolean(), jsector: fc.nat(3000) }), { maxLength: 40 }),
        fc.constantFrom(4096, 64 * 1024, 1024 * 1024),
        fc.integer({ min: 1, max: 2 ** 30 }),
        (ranges, batch, seed) => {
          const d = randomBytes(kRandom(seed), 2 * M);
          const j = randomBytes(kRandom(seed + 1), 2 * M);
          const set = new RangeSet(sliceExtent);
          for (const r of ranges) {
            const len = Math.min(r.sectors, 4096 - r.sector) * 512;
            if (len <= 0) continue;
            const start = r.sector * 512;
            const jstart = Math.min(r.jsector * 512, j.length - len);
            set.insert(start, start + len, r.cached ? memoryExtent(randomBytes(kRandom(r.jsector + 7), len)) : journalExtent(jstart));
          }
          const want = Buffer.from(d);
          for (const r of set.entries()) {
            const { blob, delta } = r.value;
            const bytes = blob.data ? blob.data.subarray(delta, delta + r.end - r.start) : j.subarray(blob.joffset + delta, blob.joffset + delta + r.end - r.start);
            bytes.copy(want, r.start);
          }
          const engine = new DirectEngine([new MemoryProvider('data.img', d), new MemoryProvider('journal.img', j)]);
          const n = copyToData(engine, set, 0, journalSource(engine, 1), batch).bytes;
          expect(n).toBe(set.bytes);
          expect(d.equals(want)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });
});
