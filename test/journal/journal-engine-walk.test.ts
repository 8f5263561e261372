// geomctl's walk (src/journal/walk.ts) against the kernel model's
// g_journal_sync, and on corrupted journal spaces (parsing is total).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chooseWalk, walkJournal, type Walk, type WalkGeometry } from '../../src/journal/walk.js';
import {
  KernelJournal,
  kDataSize,
  kEncodeHeader,
  kEncodeRecordHeader,
  kLabel,
  kRandom,
  kReadMetadata,
  kSync,
  type KDisk,
  kRandomWrites,
} from '../model/journal-kernel.js';

const K = 1024;
const M = 1024 * 1024;



/** A reader that fails the test on any read outside the journal space. */
function boundedRead(disk: KDisk): { read: (o: number, l: number) => Buffer; readInto: (o: number, target: Buffer) => void; geo: WalkGeometry } {
  const md = kReadMetadata(disk.d, disk.sectorSize);
  const geo = { sectorSize: disk.sectorSize, jstart: md.jstart, jend: md.jend, dataSize: kDataSize(disk) };
  const read = (o: number, l: number): Buffer => {
    if (!(o >= md.jstart && l > 0 && o + l <= md.jend)) throw new Error(`read outside the journal space: ${o}+${l}`);
    return Buffer.from(disk.j.subarray(o, o + l));
  };
  const readInto = (o: number, target: Buffer): void => {
    read(o, target.length).copy(target);
  };
  return { read, readInto, geo };
}

function replayList(w: Walk): { offset: number; length: number; joffset: number }[] {
  return [...w.replay.entries()].map((r) => ({ offset: r.start, length: r.end - r.start, joffset: r.value.blob.joffset + r.value.delta }));
}

/** Coalesces touching ranges that are contiguous in the journal too, so two equivalent queues compare equal. */
function canonical(list: { offset: number; length: number; joffset: number }[]): { offset: number; length: number; joffset: number }[] {
  const out: { offset: number; length: number; joffset: number }[] = [];
  for (const r of list) {
    const last = out[out.length - 1];
    if (last && last.offset + last.length === r.offset && last.joffset + last.length === r.joffset) last.length += r.length;
    else out.push({ ...r });
  }
  return out;
}

function startOf(disk: KDisk): { joffset: number; jid: number } {
  const md = kReadMetadata(disk.d, disk.sectorSize);
  return { joffset: md.joffset, jid: md.jid };
}

interface Scenario {
  seed: number;
  two: boolean;
  checksum: boolean;
  maxphys: number;
  rounds: number;
}

/** A kernel session: several switches (some without metadata update or copy), then an unterminated tail. */
function runScenario(s: Scenario): KDisk {
  const rnd = kRandom(s.seed);
  const disk = s.two
    ? kLabel({ size: 2 * M, journalImageSize: 3 * M + 512, id: s.seed, checksum: s.checksum })
    : kLabel({ size: 2 * M + 3 * M + 512, jsize: 3 * M, id: s.seed, checksum: s.checksum });
  const k = new KernelJournal(disk, { maxphys: s.maxphys, random: rnd, flagsPolicy: 'keep-checksum' });
  k.openWrite();
  for (let i = 0; i < s.rounds; i++) {
    kRandomWrites(k, rnd, 1 + (rnd() % 30), Math.min(s.maxphys * 2, 48 * K));
    const kind = rnd() % 3;
    k.switchJournal({ metadata: kind !== 2, copy: kind === 0 });
    if (kind !== 0 && k.copying) k.copyFinish();
  }
  kRandomWrites(k, rnd, rnd() % 10, 16 * K);
  k.flushAll();
  return disk;
}

describe('walk vs the kernel model', { timeout: 60_000 }, () => {
  it('finds the same terminations and the same replay as g_journal_sync', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 2 ** 31 }),
          two: fc.boolean(),
          checksum: fc.boolean(),
          maxphys: fc.constantFrom(16 * K, 32 * K, 64 * K),
          rounds: fc.integer({ min: 0, max: 10 }),
        }),
        (s) => {
          const disk = runScenario(s);
          const { read, readInto, geo } = boundedRead(disk);
          const ks = kSync(disk, { maxphys: s.maxphys });
          const w = walkJournal(read, geo, startOf(disk), { maxphys: s.maxphys, checksum: s.checksum, details: true });
          expect(w.finished).toBe(ks.found);
          expect(canonical(replayList(w))).toEqual(canonical(ks.queue));
          if (ks.found > 0) expect(w.next?.offset).toBe(ks.activeOffset);
          for (const j of w.journals) for (const r of j.recordList ?? []) expect(r.checksum).toBe(s.checksum ? 'ok' : 'none');
          // With readInto the walk reads its sectors through a window (never past jend: boundedRead throws): the same walk.
          const windowed = walkJournal(read, geo, startOf(disk), { maxphys: s.maxphys, checksum: s.checksum, details: true, readInto });
          expect(windowed.journals).toEqual(w.journals);
          expect(windowed.end).toEqual(w.end);
          expect(replayList(windowed)).toEqual(replayList(w));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('detects maxphys: a 128k journal that wrapped is walked with 128k', () => {
    const rnd = kRandom(42);
    // A journal larger than 20 MiB so the 1 MiB walk has room to start at all.
    const disk = kLabel({ size: 4 * M, journalImageSize: 24 * M + 512, id: 5 });
    const k = new KernelJournal(disk, { maxphys: 128 * K, random: rnd });
    k.openWrite();
    // Copy and move the metadata until the write position passes the point
    // where a 1 MiB kernel would wrap; from there on (no more metadata
    // updates: a crash) the 128k kernel goes on and wraps later.
    const rmax1m = 512 + 20 * M;
    while (k.journalOffset + rmax1m < k.md.jend) {
      kRandomWrites(k, rnd, 20, 128 * K);
      k.switchJournal();
    }
    let wrapped = false;
    for (let i = 0; i < 400 && !wrapped; i++) {
      const before = k.journalOffset;
      kRandomWrites(k, rnd, 20, 128 * K);
      k.switchJournal({ metadata: false, copy: false });
      if (k.journalOffset < before) wrapped = true;
    }
    expect(wrapped).toBe(true);
    kRandomWrites(k, rnd, 20, 128 * K);
    k.switchJournal({ metadata: false, copy: false });
    const { read, geo } = boundedRead(disk);
    const choice = chooseWalk(read, geo, startOf(disk), { checksum: false });
    const ks = kSync(disk, { maxphys: 128 * K });
    expect(choice.walk.maxphys).toBe(128 * K);
    expect(choice.walk.finished).toBe(ks.found);
    expect(choice.other?.finished ?? Infinity).toBeLessThan(choice.walk.finished);
    expect(choice.disagree).toBe(false);
    expect(canonical(replayList(choice.walk))).toEqual(canonical(ks.queue));
  });

  it('detects maxphys: 1 MiB journals with large entries are walked with 1M', () => {
    const rnd = kRandom(43);
    const disk = kLabel({ size: 8 * M, journalImageSize: 44 * M + 512, id: 6 });
    const k = new KernelJournal(disk, { maxphys: M, random: rnd });
    k.openWrite();
    for (let i = 0; i < 3; i++) {
      kRandomWrites(k, rnd, 12, 2 * M);
      k.switchJournal({ metadata: i === 0, copy: false });
    }
    const { read, geo } = boundedRead(disk);
    const choice = chooseWalk(read, geo, startOf(disk), { checksum: false });
    expect(choice.walk.maxphys).toBe(M);
    expect(choice.walk.finished).toBe(kSync(disk, { maxphys: M }).found);
    expect(choice.walk.finished).toBe(3);
    expect(choice.other?.finished ?? 0).toBeLessThan(3);
  });

  it('a journal with no divergence is walked once', () => {
    const disk = runScenario({ seed: 9, two: true, checksum: false, maxphys: 16 * K, rounds: 3 });
    const { read, geo } = boundedRead(disk);
    const choice = chooseWalk(read, geo, startOf(disk), { checksum: false });
    // 16k entries and a 3 MiB journal far below 1 MiB's RMAX: the 1M walk wraps at once.
    expect(choice.walk.maxphys === M || choice.walk.maxphys === 128 * K).toBe(true);
  });
});

describe('total parsing', { timeout: 60_000 }, () => {
  const ss = 512;
  const jstart = 64 * K;
  const jend = jstart + 4 * M;
  const dataSize = jstart;
  const geo: WalkGeometry = { sectorSize: ss, jstart, jend, dataSize };
  const maxphys = 16 * K;

  /** A journal image: header(1 -> 2), one record of two entries, header(2 -> 3). */
  function image(): Buffer {
    const img = Buffer.alloc(jend + ss);
    kEncodeHeader(1, 2, ss).copy(img, jstart);
    const rec = jstart + ss;
    const entries = [
      { joffset: rec + ss, offset: 0, length: 4096 },
      { joffset: rec + ss + 4096, offset: 8192, length: 1024 },
    ];
    kEncodeRecordHeader(1, entries, undefined, ss).copy(img, rec);
    img.fill(7, rec + ss, rec + ss + 5120);
    kEncodeHeader(2, 3, ss).copy(img, rec + ss + 5120);
    return img;
  }
  const rec = jstart + ss;
  const reader = (img: Buffer) => (o: number, l: number): Buffer => {
    if (!(o >= jstart && l > 0 && o + l <= jend)) throw new Error(`read outside the journal space: ${o}+${l}`);
    return img.subarray(o, o + l);
  };
  const walk = (img: Buffer, checksum = false): Walk => walkJournal(reader(img), geo, { joffset: jstart, jid: 1 }, { maxphys, checksum });

  it('the well-formed journal finishes', () => {
    const w = walk(image());
    expect(w.finished).toBe(1);
    expect(replayList(w)).toEqual([
      { offset: 0, length: 4096, joffset: rec + ss },
      { offset: 8192, length: 1024, joffset: rec + ss + 4096 },
    ]);
    expect(w.end.reason).toBe('end');
  });

  const corruptions: [string, (img: Buffer) => void][] = [
    ['nentries > 20', (img) => img.writeUInt16LE(21, rec + 15)],
    ['an entry past jend', (img) => img.writeBigUInt64LE(BigInt(jend - 512), rec + 25)],
    ['an entry outside the data area', (img) => img.writeBigUInt64LE(BigInt(dataSize - 512), rec + 25 + 8)],
    ['a zero length', (img) => img.writeBigUInt64LE(0n, rec + 25 + 16)],
    ['an unaligned length', (img) => img.writeBigUInt64LE(4000n, rec + 25 + 16)],
    ['a length over maxphys', (img) => img.writeBigUInt64LE(BigInt(2 * maxphys), rec + 25 + 16)],
    ['an unaligned target', (img) => img.writeBigUInt64LE(100n, rec + 25 + 8)],
    ['a huge value', (img) => img.writeBigUInt64LE(2n ** 63n, rec + 25)],
    ['another journal id', (img) => img.writeUInt32LE(9, rec + 7)],
    ['a wrong magic', (img) => img.write('XJRHDR', rec, 'latin1')],
    ['a wrong next header id', (img) => img.writeUInt32LE(5, rec + ss + 5120 + 6)],
  ];
  for (const [name, corrupt] of corruptions) {
    it(`${name}: the record is not one, the journal is not finished`, () => {
      const img = image();
      corrupt(img);
      const w = walk(img);
      expect(w.finished).toBe(0);
      expect(w.replay.size).toBe(0);
      expect(w.end.reason).toBe('end');
    });
  }

  it('a bad MD5 ends the walk with CHECKSUM; without it the journal finishes', () => {
    const img = image();
    const w = walk(img, true);
    expect(w.end.reason).toBe('checksum');
    expect(w.finished).toBe(0);
    expect(walk(img, false).finished).toBe(1);
  });

  it('a bad MD5 in the unfinished last journal is a write cut short, not damage', () => {
    // A crash between a record's header and its data leaves exactly this: the
    // journal it belongs to was never finished, so it is dropped like any tail.
    const img = image();
    img.fill(0, rec + ss + 5120, rec + ss + 5120 + ss); // no header finishes the journal
    const w = walk(img, true);
    expect(w.end.reason).toBe('end');
    expect(w.end.offset).toBe(rec);
    expect(w.end.detail).toMatch(/fails its MD5 checksum, in the unfinished last journal/);
    expect(w.finished).toBe(0);
    expect(w.replay.size).toBe(0);
  });

  it('md_joffset outside the journal space or misaligned: no start', () => {
    const img = image();
    for (const joffset of [0, jstart - ss, jstart + 1, jend, jend + ss, 2 ** 52]) {
      const w = walkJournal(reader(img), geo, { joffset, jid: 1 }, { maxphys, checksum: false });
      expect(w.end.reason).toBe('no-start');
    }
    expect(walkJournal(reader(img), geo, { joffset: jstart, jid: 2 }, { maxphys, checksum: false }).end.reason).toBe('no-start');
  });

  it('a loop of headers ends with "journal loops"', () => {
    // Headers chained a -> b -> a -> ... over every usable sector of a small space.
    const small: WalkGeometry = { sectorSize: ss, jstart: 0, jend: 400 * K, dataSize: M };
    const img = Buffer.alloc(small.jend);
    for (let o = 0, i = 0; o < small.jend; o += ss, i++) kEncodeHeader(i % 2 ? 2 : 1, i % 2 ? 1 : 2, ss).copy(img, o);
    const w = walkJournal((o, l) => img.subarray(o, o + l), small, { joffset: 0, jid: 1 }, { maxphys: 4 * K, checksum: false });
    expect(w.end.reason).toBe('loops');
    expect(w.finished).toBeGreaterThan(100);
  });

  it('random corruption of journal sectors: the journals before the first damaged byte are still found, and nothing else changes the walk', () => {
    fc.assert(
      fc.property(
        fc.record({ seed: fc.integer({ min: 1, max: 2 ** 31 }), checksum: fc.boolean(), rounds: fc.integer({ min: 1, max: 6 }) }),
        fc.array(fc.record({ sector: fc.nat(), byte: fc.nat(511), value: fc.nat(255) }), { minLength: 1, maxLength: 40 }),
        (s, flips) => {
          const disk = runScenario({ ...s, two: true, maxphys: 16 * K });
          const { read, geo: g } = boundedRead(disk);
          const opts = { maxphys: 16 * K, checksum: s.checksum };
          const before = walkJournal(read, g, startOf(disk), opts);
          const original = Buffer.from(disk.j);
          const sectors = (g.jend - g.jstart) / 512;
          // Concentrate damage on the first sectors, where the journals are.
          for (const f of flips) disk.j[g.jstart + (f.sector % Math.min(sectors, 2048)) * 512 + f.byte] = f.value;
          const changed = flips.map((f) => g.jstart + (f.sector % Math.min(sectors, 2048)) * 512 + f.byte).filter((o) => disk.j[o] !== original[o]);
          const w = walkJournal(read, g, startOf(disk), opts);

          // The walk reads the journal space in order from md_joffset, wrapping at most once: a byte
          // it reads before reaching `to` lies in the circular range [md_joffset, to).
          const from = startOf(disk).joffset;
          const inWalkBefore = (o: number, to: number): boolean => (from <= to ? o >= from && o < to : o >= from || (o >= g.jstart && o < to));
          const intactBefore = (to: number): boolean => !changed.some((o) => inWalkBefore(o, to));
          const summary = (j: (typeof w.journals)[number]) => ({ offset: j.offset, id: j.id, nextId: j.nextId, records: j.records, entries: j.entries, bytes: j.bytes });

          // A journal is finished by its successor's header: journal k stands while every byte up to
          // the end of journal k+1's header sector is intact.
          let intact = 0;
          for (; intact < before.finished; intact++) {
            const successor = before.journals[intact + 1];
            if (!successor || !intactBefore(successor.offset + g.sectorSize)) break;
          }
          expect(w.finished).toBeGreaterThanOrEqual(intact);
          expect(w.journals.slice(0, intact).map(summary)).toEqual(before.journals.slice(0, intact).map(summary));
          if (intactBefore(before.end.offset + g.sectorSize)) {
            // Nothing the undamaged walk read changed: the same walk, the same replay.
            expect(w.finished).toBe(before.finished);
            expect(w.end).toEqual(before.end);
            expect([...w.replay.entries()]).toEqual([...before.replay.entries()]);
          }
          // What a replay would copy stays inside the data area, whatever the damage, and the walk is a function of the disk.
          for (const r of w.replay.entries()) {
            expect(r.start).toBeGreaterThanOrEqual(0);
            expect(r.end).toBeLessThanOrEqual(g.dataSize);
          }
          expect(walkJournal(read, g, startOf(disk), opts).finished).toBe(w.finished);
          chooseWalk(read, g, startOf(disk), { checksum: s.checksum });
        },
      ),
      { numRuns: 100 },
    );
  });
});
