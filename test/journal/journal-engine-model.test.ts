// The kernel model checks itself: what its writer lays out, its reader
// (g_journal_sync) must replay to the state at the last termination. These
// tests keep the oracle honest before it judges geomctl.

import { describe, expect, it } from 'vitest';
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
  kRandomWrites,
} from '../model/journal-kernel.js';

const K128 = 128 * 1024;
const M1 = 1024 * 1024;



function oneImage(jsize: number, dataSize: number, checksum = false): KDisk {
  return kLabel({ size: dataSize + jsize + 512, jsize, id: 0x1234, checksum });
}

describe('kernel model', () => {
  it('a clean journal stays clean without writers and shows D', () => {
    const disk = oneImage(3 * M1, M1);
    const k = new KernelJournal(disk, { maxphys: K128, random: kRandom(1) });
    expect(kReadMetadata(disk.d, 512).flags).toBe(GJ_FLAG_CLEAN);
    expect(k.logical.length).toBe(M1);
    expect(kDataSize(disk)).toBe(M1);
  });

  for (const checksum of [false, true]) {
    it(`replays terminated journals and drops the unterminated tail (checksum ${checksum})`, () => {
      const rnd = kRandom(7);
      const disk = oneImage(4 * M1, 2 * M1, checksum);
      const k = new KernelJournal(disk, { maxphys: 64 * 1024, random: rnd, flagsPolicy: 'keep-checksum' });
      k.openWrite();
      // Metadata names the active journal: a crash now would be "broken".
      expect(kSync(disk, { maxphys: 64 * 1024 }).found).toBe(0);
      kRandomWrites(k, rnd, 40, 32 * 1024);
      k.switchJournal();
      kRandomWrites(k, rnd, 40, 32 * 1024);
      k.switchJournal({ copy: false });
      kRandomWrites(k, rnd, 10, 8 * 1024);
      k.flushAll(); // records of the active journal: never replayed
      const expected = k.terminated[k.terminated.length - 1] as Buffer;
      const s = kSync(disk, { maxphys: 64 * 1024 });
      expect(s.found).toBeGreaterThanOrEqual(1);
      expect(s.badSums).toEqual([]);
      expect(kJournaledContents(disk, { maxphys: 64 * 1024 }).equals(expected)).toBe(true);
      expect(kJournaledContents(disk, { maxphys: 64 * 1024 }).equals(k.logical)).toBe(false);
      expect((kReadMetadata(disk.d, 512).flags & GJ_FLAG_CHECKSUM) !== 0).toBe(checksum);
    });
  }

  it('wraps around the journal space and still replays', () => {
    const rnd = kRandom(99);
    const maxphys = 16 * 1024;
    const disk = kLabel({ size: 4 * M1, journalImageSize: 1024 * 1024 + 512, id: 77 });
    const k = new KernelJournal(disk, { maxphys, random: rnd });
    k.openWrite();
    let wrapped = false;
    for (let round = 0; round < 12; round++) {
      const before = k.journalOffset;
      kRandomWrites(k, rnd, 30, 16 * 1024);
      k.switchJournal();
      if (k.journalOffset < before) wrapped = true;
    }
    expect(wrapped).toBe(true);
    kRandomWrites(k, rnd, 5, 4096);
    k.switchJournal({ metadata: false, copy: false });
    const expected = k.terminated[k.terminated.length - 1] as Buffer;
    expect(kJournaledContents(disk, { maxphys }).equals(expected)).toBe(true);
    // The other maxphys walks the wrap differently and loses journals.
    const other = kSync(disk, { maxphys: maxphys * 8 });
    expect(other.found).toBeLessThanOrEqual(kSync(disk, { maxphys }).found);
  });

  it('destroy leaves a clean device whose D holds everything', () => {
    const rnd = kRandom(5);
    const disk = oneImage(4 * M1, M1, true);
    const k = new KernelJournal(disk, { maxphys: K128, random: rnd });
    k.openWrite();
    kRandomWrites(k, rnd, 50, 64 * 1024);
    k.destroy();
    const md = kReadMetadata(disk.d, 512);
    expect(md.flags).toBe(GJ_FLAG_CLEAN); // the kernel drops CHECKSUM
    expect(disk.d.subarray(0, M1).equals(k.logical)).toBe(true);
  });

  it('panics on overflow when a journal outgrows the free space, as the kernel does', () => {
    const rnd = kRandom(3);
    const maxphys = 16 * 1024;
    const disk = kLabel({ size: 8 * M1, journalImageSize: 768 * 1024 + 512, id: 9 });
    const k = new KernelJournal(disk, { maxphys, random: rnd });
    k.openWrite();
    kRandomWrites(k, rnd, 30, 16 * 1024);
    k.switchJournal({ copy: false });
    expect(() => kRandomWrites(k, rnd, 400, 16 * 1024)).toThrow(/Journal overflow/);
  });
});
