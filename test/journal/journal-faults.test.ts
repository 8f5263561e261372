// Process kills and injected I/O errors (GEOMCTL_FAULT) for every mutating
// journal verb, through the built bin/geomctl (flush-engine.md, "Testing
// it"; quality.md, "Reliability"): label (two images, one image), clear,
// write (small, larger than 70% of the journal, --sync), sync, sync -f on a
// broken journal, stop, the replay a writing verb does on open, and recovery
// itself killed (a rolled-back transaction killed while rolling back, for both
// classes).
//
// Each verb runs killed at every write and barrier (and failing with EIO or
// ENOSPC at a few) — except where another test already leaves the same images
// (write --sync begins as write does; the write after a replay is a write), and
// the 4.5M write, killed at every barrier but only two of its ~50 writes. Then
// the next command must succeed and the effect be the state before the verb or
// after it:
// - for label and clear (undo-log transactions): the raw images;
// - for the runtime verbs: the journaled provider as an independent model of
//   FreeBSD's kernel (test/model/journal-kernel.ts) reads it from the raw
//   images right after the failure — what FreeBSD would see if the images
//   moved there — and again after geomctl's next command replayed it. A write
//   larger than one journal may also leave a prefix of whole journals
//   (journal.md, "Ordering").

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sparseImage, type CliResult } from '../helpers/cli.js';
import { ALL_FAULTS, describeCounts, every, faultRuns, filesSignature, snapshotFiles, undoLogs, type FaultCounts } from '../helpers/faults.js';
import { dirtied, handSuperblock, SB_OFFSET, SB_SIZE } from '../helpers/ufs.js';
import { GJ_FLAG_CLEAN, kEncodeMetadata, kJournaledContents, kRandom, kRandomBytes, kReadMetadata, kSync, type KMetadata } from '../model/journal-kernel.js';

const K = 1024;
const M = 1024 * K;
const K128 = 128 * K; // the maxphys the journals below are written with (the smaller FreeBSD uses)
const J_SIZE = 6 * M; // near the smallest journal 128k allows: few writes per verb
const JSPACE = J_SIZE - 512;
const NAMES = ['d.img', 'j.img'];

const s = scratch('geomctl-jfaults-');
afterAll(() => s.cleanup());

function ok(dir: string, args: string[], input?: Buffer): CliResult {
  const r = geomctl(args, { cwd: dir, ...(input ? { input } : {}) });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  expect(r.stderr).not.toMatch(/\n\s+at .*:\d+/);
  return r;
}

/** A fresh directory of the scratch area. */
function dirOf(name: string): string {
  const dir = s.path(name);
  mkdirSync(dir);
  return dir;
}

/**
 * A two-image journal (D 2M unless `size` says otherwise, J 6M), labeled CLEAN
 * for maxphys 128k (with MD5 checksums when `checksum`), whose data area
 * holds `content` (1M of random bytes by default) so that every write changes it.
 */
function journalDir(name: string, o: { content?: Buffer; checksum?: boolean; size?: number } = {}): string {
  const dir = dirOf(name);
  const d = Buffer.alloc(o.size ?? 2 * M);
  (o.content ?? kRandomBytes(kRandom(name.length), M)).copy(d);
  writeFileSync(join(dir, 'd.img'), d);
  sparseImage(join(dir, 'j.img'), J_SIZE);
  ok(dir, ['--maxphys', '128k', 'journal', 'label', ...(o.checksum ? ['-c'] : []), '--id', '5', 'd.img', 'j.img']);
  return dir;
}

/** What FreeBSD would show as the journaled provider of the images now (the kernel model), and whether D is CLEAN. */
function journaled(dir: string): { content: Buffer; clean: boolean } {
  const d = readFileSync(join(dir, 'd.img'));
  const j = readFileSync(join(dir, 'j.img'));
  const clean = (kReadMetadata(d, 512).flags & GJ_FLAG_CLEAN) !== 0;
  return { content: kJournaledContents({ d, j, sectorSize: 512 }, { maxphys: K128 }), clean };
}

/** `base` with `data` written at `offset`. */
function overlaid(base: Buffer, offset: number, data: Buffer): Buffer {
  const out = Buffer.from(base);
  data.copy(out, offset);
  return out;
}

interface JournalCase {
  dir: string;
  /** The verb, global options included. */
  verb: string[];
  input?: Buffer;
  specs: string[];
  /** The journaled provider after the verb, computed from the one before it without geomctl. */
  expectAfter(before: Buffer): Buffer;
  /** A write larger than one journal: a prefix of it (in whole sectors) is allowed too. */
  prefixOf?: { offset: number; data: Buffer };
}

interface JournalCounts extends FaultCounts {
  /** How the failed runs left D's metadata, as FreeBSD would find it. */
  leftDirty: number;
  leftClean: number;
  /** The distinct prefix lengths seen (a write larger than one journal). */
  prefixes: Set<number>;
  /** The run without a fault. */
  clean: CliResult;
}

/** Where `content` is `before` with a sector-aligned prefix of the write laid over it: the prefix length. */
function prefixLength(content: Buffer, before: Buffer, w: { offset: number; data: Buffer }): number | undefined {
  let x = 0;
  while (x < w.data.length && content.subarray(w.offset + x, w.offset + x + 512).equals(w.data.subarray(x, x + 512))) x += 512;
  return overlaid(before, w.offset, w.data.subarray(0, x)).equals(content) ? x : undefined;
}

/**
 * A runtime journal verb under each fault spec. After every failure there is
 * no undo log (the journal keeps itself consistent with barriers), the kernel
 * model's view of the raw images is before, after or an allowed prefix, and
 * `journal sync` (the next command, maxphys detected) replays exactly that
 * view and leaves the device CLEAN. Effects are compared byte for byte and
 * named: 'before', 'after', 'prefix N'.
 */
function journalFaults(c: JournalCase): JournalCounts {
  const restore = snapshotFiles(c.dir, NAMES);
  const b = journaled(c.dir).content;
  const clean = ok(c.dir, c.verb, c.input);
  const a = journaled(c.dir).content;
  expect(a.equals(c.expectAfter(b)), 'the verb did not do what it should').toBe(true);
  const prefixes = new Set<number>();
  const effect = (content: Buffer): string => {
    if (content.equals(b)) return 'before';
    if (content.equals(a)) return 'after';
    const x = c.prefixOf && prefixLength(content, b, c.prefixOf);
    if (x === undefined) return 'neither';
    prefixes.add(x);
    return `prefix ${x}`;
  };
  let atCrash = '';
  let afterNext = '';
  let leftDirty = 0;
  let leftClean = 0;
  const counts = faultRuns(
    {
      run: (spec) => geomctl(c.verb, { cwd: c.dir, env: { GEOMCTL_FAULT: spec }, ...(c.input ? { input: c.input } : {}) }),
      restore,
      atFailure: (spec) => {
        expect(undoLogs(c.dir), spec).toEqual([]);
        const v = journaled(c.dir);
        atCrash = effect(v.content);
        expect(atCrash, `${spec}: FreeBSD would find neither the state before nor after`).not.toBe('neither');
        if (v.clean) leftClean++;
        else leftDirty++;
      },
      next: () => ok(c.dir, ['journal', 'sync', 'd.img', 'j.img']),
      signature: () => {
        const v = journaled(c.dir);
        expect(v.clean, 'not CLEAN after sync').toBe(true);
        afterNext = effect(v.content);
        return afterNext;
      },
      before: 'before',
      after: 'after',
      other: (sig) => (sig.startsWith('prefix ') ? 'prefix' : undefined),
      // geomctl's replay gives what FreeBSD's would have.
      check: (spec) => expect(afterNext, `${spec}: sync replayed something else than FreeBSD would`).toBe(atCrash),
    },
    c.specs,
  );
  return { ...counts, leftDirty, leftClean, prefixes, clean };
}

function logJournal(what: string, r: JournalCounts): void {
  console.log(`${describeCounts(what, r)} (left DIRTY ${r.leftDirty}, CLEAN ${r.leftClean}${r.prefixes.size ? `; prefixes ${[...r.prefixes].join(', ')}` : ''})`);
}

const EXHAUSTED = { write: true, barrier: true };

describe('journal label and clear under GEOMCTL_FAULT (undo-log transactions: the raw images)', () => {
  /** The metadata gjournal label writes, from the model's encoder. */
  function metadataSector(md: Partial<KMetadata> & Pick<KMetadata, 'type' | 'jstart' | 'jend' | 'provsize'>): Buffer {
    const sector = Buffer.alloc(512);
    kEncodeMetadata({ magic: 'GEOM::JOURNAL', version: 0, id: 7, joffset: 0, jid: 0, flags: GJ_FLAG_CLEAN, provider: '', ...md }).copy(sector);
    return sector;
  }

  /**
   * `verb` on the images `names` of `dir` under each spec; `next` must roll
   * back (its own failure is allowed only where `nextFails` says).
   */
  function rawFaults(dir: string, names: string[], verb: string[], specs: string[], next: string[], expectAfter: (img: string, before: Buffer) => Buffer, nextFails?: RegExp): FaultCounts {
    const restore = snapshotFiles(dir, names);
    const pristine = names.map((n) => readFileSync(join(dir, n)));
    const before = filesSignature(dir, names);
    ok(dir, verb);
    names.forEach((n, i) => expect(readFileSync(join(dir, n)).equals(expectAfter(n, pristine[i] as Buffer)), n).toBe(true));
    const after = filesSignature(dir, names);
    expect(after).not.toBe(before);
    let nextStatus = 0;
    return faultRuns(
      {
        run: (spec) => geomctl(verb, { cwd: dir, env: { GEOMCTL_FAULT: spec } }),
        restore,
        next: (spec) => {
          const r = geomctl(next, { cwd: dir });
          nextStatus = r.status;
          if (r.status !== 0) expect(r.stderr, `${spec}: ${next.join(' ')}`).toMatch(nextFails ?? /^$/);
        },
        signature: () => filesSignature(dir, names),
        before,
        after,
        check: (spec, effect) => {
          expect(undoLogs(dir), spec).toEqual([]);
          // A next command may fail only on the state where it has nothing to work on.
          if (nextStatus !== 0) expect(effect, spec).toBe('after');
        },
      },
      specs,
    );
  }

  it('label of two images (over an older journal): killed at every write and barrier', () => {
    const dir = journalDir('label2');
    const verb = ['--maxphys', '128k', 'journal', 'label', '-f', '-c', '--id', '7', 'd.img', 'j.img'];
    const r = rawFaults(
      dir,
      NAMES,
      verb,
      every(8),
      ['journal', 'sync', 'd.img', 'j.img'],
      (img, before) => {
        const md = img === 'd.img' ? metadataSector({ type: 1, jstart: 0, jend: JSPACE, provsize: 2 * M, flags: 3 }) : metadataSector({ type: 2, jstart: 0, jend: JSPACE, provsize: J_SIZE, flags: 3 });
        return overlaid(before, before.length - 512, md);
      },
    );
    console.log(describeCounts('journal label (two images)', r));
    expect(r.runs).toBeGreaterThan(6);
    expect(r.exhausted).toEqual(EXHAUSTED);
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
  });

  it('label of one image (over an older journal): killed at every write and barrier', () => {
    const dir = dirOf('label1');
    sparseImage(join(dir, 'o.img'), 102 * M);
    ok(dir, ['journal', 'label', '-s', '100M', '--id', '5', 'o.img']);
    const jstart = 102 * M - 512 - 101 * M;
    const r = rawFaults(
      dir,
      ['o.img'],
      ['journal', 'label', '-f', '-s', '101M', '--id', '7', 'o.img'],
      every(8),
      ['journal', 'sync', 'o.img'],
      (_img, before) => overlaid(before, before.length - 512, metadataSector({ type: 3, jstart, jend: 102 * M - 512, provsize: 102 * M })),
    );
    console.log(describeCounts('journal label (one image)', r));
    expect(r.runs).toBeGreaterThan(5);
    expect(r.exhausted).toEqual(EXHAUSTED);
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
  });

  it('clear of two images: killed at every write and barrier, ENOSPC', () => {
    const dir = journalDir('clear2');
    const r = rawFaults(
      dir,
      NAMES,
      ['journal', 'clear', 'd.img', 'j.img'],
      [...every(8), 'enospc@barrier:2'],
      ['journal', 'sync', 'd.img', 'j.img'],
      (_img, before) => overlaid(before, before.length - 512, Buffer.alloc(512)),
      /^geomctl: Cannot read metadata from d\.img: no GEOM::JOURNAL metadata in its last sector/,
    );
    console.log(describeCounts('journal clear (two images)', r));
    expect(r.runs).toBeGreaterThan(8);
    expect(r.exhausted).toEqual(EXHAUSTED);
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
  });
});

describe('journal write, sync and stop under GEOMCTL_FAULT (the journaled provider)', () => {
  const small = kRandomBytes(kRandom(11), 64 * K);

  // write --sync starts as write does, operation for operation: it is killed only past
  // write's last write and barrier (the same kills would leave the same images).
  let plainOps: FaultCounts['ops'] = {};

  it('write (small, one journal): killed at every write and barrier, ENOSPC', () => {
    const dir = journalDir('write');
    const r = journalFaults({
      dir,
      verb: ['--maxphys', '128k', 'journal', 'write', '-o', '256k', 'd.img', 'j.img'],
      input: small,
      specs: [...every(8), 'enospc@write:3'],
      expectAfter: (before) => overlaid(before, 256 * K, small),
    });
    logJournal('journal write', r);
    expect(r.runs).toBeGreaterThan(6);
    expect(r.exhausted).toEqual(EXHAUSTED);
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
    expect(r.prefixes.size).toBe(0); // one journal: all or nothing
    plainOps = r.ops;
  });

  it('write --sync: killed at every write and barrier past those of write', () => {
    const dir = journalDir('wsync');
    const past = (spec: string): boolean => {
      const [, op, n] = /@(write|barrier):(\d+)$/.exec(spec) as unknown as [string, 'write' | 'barrier', string];
      return Number(n) > (plainOps[op] ?? 0); // all of them when run alone
    };
    const r = journalFaults({
      dir,
      verb: ['--maxphys', '128k', 'journal', 'write', '--sync', '-o', '256k', 'd.img', 'j.img'],
      input: small,
      specs: ALL_FAULTS ? every(12) : every(12).filter(past),
      expectAfter: (before) => overlaid(before, 256 * K, small),
    });
    logJournal('journal write --sync (past write)', r);
    expect(r.runs).toBeGreaterThan(3);
    expect(r.exhausted).toEqual(EXHAUSTED);
    expect(r.after).toBeGreaterThan(0);
    expect(r.leftDirty).toBeGreaterThan(0); // killed between the journal and its copy
  });

  it('write larger than 70% of the journal: killed at every barrier and two writes; whole journals only', () => {
    const big = kRandomBytes(kRandom(12), 4608 * K);
    expect(big.length).toBeGreaterThan(0.7 * JSPACE);
    // The data area holds the complement of the input: a prefix shows to the byte.
    const content = kRandomBytes(kRandom(13), 6 * M);
    for (let i = 0; i < big.length; i++) content[M + i] = ~(big[i] as number) & 0xff;
    const dir = journalDir('big', { content, size: 8 * M, checksum: true });
    // Every barrier (the journal boundaries); two of its ~50 writes, in the first record and
    // in a copy (most are 128k copies alike, each leaving the same kind of state) — all of
    // them under `npm run fuzz`.
    const specs = ALL_FAULTS ? every(80) : [...every(16).filter((x) => x.startsWith('kill@barrier')), 'kill@write:2', 'kill@write:40'];
    const r = journalFaults({
      dir,
      verb: ['--maxphys', '128k', '--json', 'journal', 'write', '-o', '1M', 'd.img', 'j.img'],
      input: big,
      specs,
      expectAfter: (before) => overlaid(before, M, big),
      prefixOf: { offset: M, data: big },
    });
    logJournal('journal write (4.5M, 6M journal)', r);
    const journals = (JSON.parse(r.clean.stdout) as { journals: number }).journals;
    expect(journals).toBeGreaterThan(1);
    expect(r.runs).toBeGreaterThan(10);
    expect(r.exhausted.barrier).toBe(true);
    if (ALL_FAULTS) expect(r.exhausted.write).toBe(true);
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
    // Prefixes of whole journals: at most one per journal boundary, and the kills do meet them.
    expect(r.other['prefix'] ?? 0).toBeGreaterThan(0);
    expect(r.prefixes.size).toBeLessThanOrEqual(journals - 1);
  });

  for (const verb of ['sync', 'stop'] as const) {
    it(`${verb} of a dirty journal: killed at every write and barrier${verb === 'sync' ? ', EIO' : ''}`, () => {
      const dir = journalDir(verb);
      ok(dir, ['--maxphys', '128k', 'journal', 'write', '-o', '256k', 'd.img', 'j.img'], small);
      const r = journalFaults({
        dir,
        verb: ['journal', verb, 'd.img', 'j.img'],
        specs: [...every(4), ...(verb === 'sync' ? ['eio@write:1'] : [])],
        expectAfter: (before) => before, // the provider's contents do not change; D alone holds them
      });
      logJournal(`journal ${verb}`, r);
      expect(r.runs).toBeGreaterThan(3);
      expect(r.exhausted).toEqual(EXHAUSTED);
      // Both sides of the commit point were hit: still DIRTY (replayed again next time), and CLEAN.
      expect(r.leftDirty).toBeGreaterThan(0);
      expect(r.leftClean).toBeGreaterThan(0);
    });
  }

  // The write after the replay runs as on any CLEAN device (the write test kills it):
  // kills here cover the replay and the first write and barrier after it.
  it('replay on open: a dirty journal left by a kill, replayed by the next write, that one killed too', () => {
    const dir = journalDir('replay', { checksum: true });
    const wsync = ['--maxphys', '128k', 'journal', 'write', '--sync', '-o', '256k', 'd.img', 'j.img'];
    // Find a kill of write --sync that leaves the journal DIRTY (finished, not yet copied).
    const restore = snapshotFiles(dir, NAMES);
    let left: string | undefined;
    for (const spec of ['kill@barrier:3', ...every(8)]) {
      restore();
      const r = geomctl(wsync, { cwd: dir, env: { GEOMCTL_FAULT: spec }, input: small });
      if (r.status === 128 && !journaled(dir).clean) {
        left = spec;
        break;
      }
    }
    expect(left, 'no kill of write --sync left a dirty journal').toBeDefined();
    const pending = kSync({ d: readFileSync(join(dir, 'd.img')), j: readFileSync(join(dir, 'j.img')), sectorSize: 512 }, { maxphys: K128 });
    expect(pending.found).toBeGreaterThan(0);
    const second = kRandomBytes(kRandom(14), 20 * K);
    const r = journalFaults({
      dir,
      // No --maxphys: the replay detects it.
      verb: ['journal', 'write', '-o', '250k', 'd.img', 'j.img'],
      input: second,
      specs: [...every(ALL_FAULTS ? 12 : 3), 'eio@write:2'],
      expectAfter: (before) => overlaid(before, 250 * K, second),
    });
    logJournal(`journal write replaying a journal left by ${left}`, r);
    if (ALL_FAULTS) expect(r.exhausted).toEqual(EXHAUSTED);
    else {
      expect(r.runs).toBe(7);
      expect(r.before).toBe(r.runs); // the replayed journal, and nothing yet of the new write
    }
  });

  it('sync -f of a broken journal (UFS marked dirty, one undo transaction): killed at every write and barrier, ENOSPC', () => {
    // D holds a UFS2 superblock that keeps a check-hash.
    const dir = journalDir('repair', { content: overlaid(Buffer.alloc(SB_OFFSET + SB_SIZE), SB_OFFSET, handSuperblock()) });
    ok(dir, ['--maxphys', '128k', 'journal', 'write', '-o', '1M', 'd.img', 'j.img'], small);
    // Break the header that finishes the journal: nothing is finished any more.
    const j = readFileSync(join(dir, 'j.img'));
    const walk = kSync({ d: readFileSync(join(dir, 'd.img')), j, sectorSize: 512 }, { maxphys: K128 });
    expect(walk.headers.length).toBe(2);
    j.fill(0, walk.headers[1]?.offset, (walk.headers[1]?.offset as number) + 512);
    writeFileSync(join(dir, 'j.img'), j);
    const verb = ['journal', 'sync', '-f', 'd.img', 'j.img'];
    const restore = snapshotFiles(dir, NAMES);
    const view = (): Buffer => readFileSync(join(dir, 'd.img')).subarray(0, 2 * M - 512);
    const b = view();
    ok(dir, verb);
    const a = view();
    const sb = b.subarray(SB_OFFSET, SB_OFFSET + SB_SIZE);
    expect(a.equals(overlaid(b, SB_OFFSET, dirtied(sb))), 'the superblock is not marked dirty as the kernel does').toBe(true);
    expect(kReadMetadata(readFileSync(join(dir, 'd.img')), 512).flags & GJ_FLAG_CLEAN).toBe(GJ_FLAG_CLEAN);
    let nextStatus = 0;
    const r = faultRuns(
      {
        run: (spec) => geomctl(verb, { cwd: dir, env: { GEOMCTL_FAULT: spec } }),
        restore,
        // Without -f: it rolls back; it fails (and says why) only on a journal still broken.
        next: (spec) => {
          const n = geomctl(['journal', 'sync', 'd.img', 'j.img'], { cwd: dir });
          nextStatus = n.status;
          // After the line saying what was rolled back, if anything was.
          if (n.status !== 0) expect(n.stderr, spec).toMatch(/^(geomctl: rolled back an unfinished transaction [^\n]*\n)?geomctl: journal on d\.img is broken: no finished journal/);
        },
        signature: () => {
          const v = view();
          const clean = (kReadMetadata(readFileSync(join(dir, 'd.img')), 512).flags & GJ_FLAG_CLEAN) !== 0;
          return v.equals(b) && !clean ? 'before' : v.equals(a) && clean ? 'after' : 'neither';
        },
        before: 'before',
        after: 'after',
        check: (spec, effect) => {
          expect(undoLogs(dir), spec).toEqual([]);
          expect(nextStatus === 0, spec).toBe(effect === 'after');
        },
      },
      [...every(8), 'enospc@write:3'],
    );
    console.log(describeCounts('journal sync -f (broken journal)', r));
    expect(r.runs).toBeGreaterThan(6);
    expect(r.exhausted).toEqual(EXHAUSTED);
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
  });
});

describe('recovery itself killed: a hot undo log, its rollback killed, then a command that finishes it', () => {
  /**
   * `first`, killed by the first of `firstSpecs` that leaves a hot undo log and
   * images that differ from before; then `rollback` (a write command) killed at
   * every write and barrier of its rollback — where the images are still not
   * as before, the log must still be there — and `finish` must bring back
   * exactly the state before `first`.
   */
  function killedRecovery(dir: string, names: string[], first: string[], firstSpecs: string[], rollback: string[], finish: string[]): FaultCounts & { midway: number } {
    const before = filesSignature(dir, names);
    const pristine = snapshotFiles(dir, names);
    let left: string | undefined;
    for (const spec of firstSpecs) {
      pristine();
      geomctl(first, { cwd: dir, env: { GEOMCTL_FAULT: spec } });
      if (undoLogs(dir).length > 0 && filesSignature(dir, names) !== before) {
        left = spec;
        break;
      }
    }
    expect(left, 'no kill left a hot undo log and changed images').toBeDefined();
    const logs = undoLogs(dir);
    let midway = 0;
    const r = faultRuns(
      {
        run: (spec) => geomctl(rollback, { cwd: dir, env: { GEOMCTL_FAULT: spec } }),
        restore: snapshotFiles(dir, [...names, ...logs]),
        atFailure: (spec) => {
          if (filesSignature(dir, names) === before) return;
          expect(undoLogs(dir), `${spec}: images not rolled back, and no log to finish it`).toEqual(logs);
          midway++;
        },
        next: () => ok(dir, finish),
        signature: () => filesSignature(dir, names),
        before,
        after: 'the transaction never committed',
        check: (spec) => expect(undoLogs(dir), spec).toEqual([]),
      },
      every(6),
    );
    pristine();
    return { ...r, midway };
  }

  it('journal clear of two images, rolled back by journal sync', () => {
    const dir = journalDir('rec-journal');
    const r = killedRecovery(dir, NAMES, ['journal', 'clear', 'd.img', 'j.img'], ['kill@barrier:3', 'kill@barrier:4', 'kill@write:3'], ['journal', 'sync', 'd.img', 'j.img'], ['journal', 'sync', 'd.img', 'j.img']);
    console.log(`${describeCounts('journal rollback', r)} (${r.midway} killed half way through the rollback)`);
    expect(r.midway).toBeGreaterThan(0);
    expect(r.runs).toBeGreaterThan(2);
    expect(r.before).toBe(r.runs);
    expect(r.exhausted).toEqual(EXHAUSTED);
  });

  it('virstor add, rolled back by virstor stop', () => {
    const dir = dirOf('rec-virstor');
    const vnames = ['v0.img', 'v1.img', 'v2.img'];
    sparseImage(join(dir, 'v0.img'), 8 * K128);
    sparseImage(join(dir, 'v1.img'), 6 * K128);
    sparseImage(join(dir, 'v2.img'), 6 * K128);
    ok(dir, ['--maxphys', '128k', 'virstor', 'label', '-m', '128k', '-s', '8M', 'rv', 'v0.img', 'v1.img']);
    ok(dir, ['virstor', 'write', '-o', '1M', 'rv'], kRandomBytes(kRandom(21), 300 * K));
    const r = killedRecovery(dir, vnames, ['virstor', 'add', 'rv', 'v2.img'], ['kill@barrier:3', 'kill@barrier:4', 'kill@write:4'], ['virstor', 'stop', 'rv'], ['virstor', 'stop', 'rv']);
    console.log(`${describeCounts('virstor rollback', r)} (${r.midway} killed half way through the rollback)`);
    expect(r.midway).toBeGreaterThan(0);
    expect(r.runs).toBeGreaterThan(2);
    expect(r.before).toBe(r.runs);
    expect(r.exhausted).toEqual(EXHAUSTED);
    expect(geomctl(['virstor', 'check', 'rv'], { cwd: dir }).status).toBe(0);
  });
});
