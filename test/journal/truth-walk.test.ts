// Issue 9, item 5, on the library side: a given --maxphys that finishes some
// journals, but fewer than the other maxphys, is not taken at its word. The
// device is DIRTY under it (nothing looks broken), yet a replay under it
// would mark CLEAN past journals it never copied: recover refuses, -f or not.

import { describe, expect, it } from 'vitest';
import { checkJournal } from '../../src/journal/check.js';
import { minJournalSize } from '../../src/journal/format.js';
import { MAXPHYS_128K, MAXPHYS_1M } from '../../src/util/maxphys.js';
import { KernelJournal, kRandom } from '../model/journal-kernel.js';
import { DirectEngine, K, M, labeled, openDevice, providersOf, randomBytes } from './journal-engine-support.js';

/** Journal 1 of 64 KiB entries (any maxphys reads it), journal 2 of one 1 MiB entry (only 1M reads it). */
function twoJournals(): ReturnType<typeof labeled> {
  const disk = labeled({ two: true, dataSize: 4 * M, jsize: minJournalSize(512, MAXPHYS_1M) + M });
  const rnd = kRandom(5);
  const k = new KernelJournal(disk, { maxphys: MAXPHYS_1M, random: rnd });
  k.openWrite();
  k.write(0, randomBytes(rnd, 64 * K));
  k.switchJournal({ copy: false });
  k.write(M, randomBytes(rnd, M));
  k.switchJournal({ metadata: false, copy: false });
  k.flushAll();
  return disk;
}

describe('a given maxphys that finishes fewer journals than the other', () => {
  it('detection replays both journals', () => {
    const { dev } = openDevice(twoJournals());
    expect(dev.state).toBe('DIRTY');
    expect(dev.choice?.walk.maxphys).toBe(MAXPHYS_1M);
    expect(dev.choice?.walk.finished).toBe(2);
  });

  it('--maxphys 128k: DIRTY with one journal, fewer than 1M, and no replay or repair under it', () => {
    const disk = twoJournals();
    const before = [Buffer.from(disk.d), Buffer.from(disk.j)];
    const { dev } = openDevice(disk, { maxphys: MAXPHYS_128K });
    expect(dev.state).toBe('DIRTY');
    expect(dev.choice?.walk.finished).toBe(1);
    expect(dev.choice?.fewer).toBe(true);
    expect(dev.choice?.other?.finished).toBe(2);
    expect(dev.maxphysShortfall).toMatch(/--maxphys 128k walks 1 finished journal, maxphys 1M walks 2 finished journals/);
    for (const force of [false, true]) expect(() => dev.recover(force)).toThrow(/would discard them/);
    expect([disk.d, disk.j].map((b, i) => b.equals(before[i] as Buffer))).toEqual([true, true]);
  });

  it('check -y under it reports the shortfall and repairs nothing', () => {
    const disk = twoJournals();
    const before = Buffer.from(disk.d);
    const r = checkJournal(new DirectEngine(providersOf(disk)), { maxphys: MAXPHYS_128K, cacheLimit: 64 * M, repair: true });
    expect(r.problems).toEqual([expect.stringMatching(/--maxphys 128k walks 1 finished journal, maxphys 1M walks 2/)]);
    expect(r.remedy).toBe('give --maxphys 1M, or leave --maxphys out to detect it');
    expect(r.repaired).toBeUndefined();
    expect(disk.d.equals(before)).toBe(true);
  });

  it('--maxphys 1M is the walk detection uses: nothing to say', () => {
    const { dev } = openDevice(twoJournals(), { maxphys: MAXPHYS_1M });
    expect(dev.choice?.fewer).toBe(false);
    expect(dev.maxphysShortfall).toBeUndefined();
    expect(dev.recover(false).journals).toBe(2);
  });
});
