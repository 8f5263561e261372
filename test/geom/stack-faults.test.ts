// Crash safety across layers (providers.md): a journal whose data provider is
// virstor/thin (and whose journal is the image j.img, so one command's
// transaction spans a virstor component and a plain image), its
// `journal write` of 3 MiB and its `journal sync` killed (and failed with EIO)
// at every write and barrier, through the built bin/geomctl. Judged by the
// independent kernel models composed — FreeBSD's virstor device assembled
// from c0.img (test/model/virstor-kernel.ts), read as the data provider of
// FreeBSD's journal (test/model/journal-kernel.ts) — right after the failure
// (what FreeBSD would see if the image moved there) and after geomctl's next
// command: the journaled provider is all-before or all-after, and the
// virstor below is consistent, holding at least the chunks it held before
// and at most those it holds after.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sparseImage, type CliResult } from '../helpers/cli.js';
import { describeCounts, every, faultRuns, snapshotFiles } from '../helpers/faults.js';
import { ModelKernel } from '../model/virstor-kernel.js';
import { GJ_FLAG_CLEAN, kJournaledContents, kRandom, kRandomBytes, kReadMetadata } from '../model/journal-kernel.js';

const K = 1024;
const M = 1024 * K;
const MAXPHYS = ['--maxphys', '128k'];
const WRITE_AT = 512 * K;

const s = scratch('geomctl-stack-faults-');
afterAll(() => s.cleanup());

function ok(dir: string, args: string[]): CliResult {
  const r = geomctl(args, { cwd: dir });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

/** FreeBSD's view of the stack: its virstor device over c0.img, and its journaled provider over that. */
function kernelView(dir: string): { journaled: Buffer; allocated: number; clean: boolean } {
  const k = ModelKernel.taste([{ name: 'c0.img', data: readFileSync(join(dir, 'c0.img')) }]);
  const virtual = k.readAll();
  const clean = (kReadMetadata(virtual, 512).flags & GJ_FLAG_CLEAN) !== 0;
  const j = readFileSync(join(dir, 'j.img'));
  return { journaled: kJournaledContents({ d: virtual, j, sectorSize: 512 }, { maxphys: 128 * K }), allocated: k.allocatedCount(), clean };
}

const hash = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * What the journaled provider `content` is: 'before', 'after', or 'prefix N'
 * when it is `before` with the write's first N bytes (whole sectors) laid
 * over it — a write larger than one journal may leave its first journals
 * (journal.md, "Ordering"), each all-or-nothing.
 */
function effectOf(content: Buffer, before: Buffer, at: number, data: Buffer): string {
  let n = 0;
  while (n < data.length && content.subarray(at + n, at + n + 512).equals(data.subarray(n, n + 512))) n += 512;
  const expected = Buffer.from(before);
  data.copy(expected, at, 0, n);
  if (!expected.equals(content)) return 'neither';
  return n === 0 ? 'before' : n === data.length ? 'after' : `prefix ${n}`;
}

/** c0.img holding virstor thin (32M virtual, 1M chunks), a journal on virstor/thin with the 8M image j.img (room for the 3 MiB write in one journal) as its journal, and 1M of data synced. */
function stackDir(name: string): string {
  const dir = s.path(name);
  mkdirSync(dir);
  sparseImage(join(dir, 'c0.img'), 24 * M);
  ok(dir, ['virstor', 'label', '-s', '32M', '-m', '1M', 'thin', 'c0.img']);
  sparseImage(join(dir, 'j.img'), 8 * M);
  ok(dir, [...MAXPHYS, 'journal', 'label', 'virstor/thin', 'j.img']);
  writeFileSync(join(dir, 'r1'), kRandomBytes(kRandom(1), M));
  ok(dir, [...MAXPHYS, 'journal', 'write', '--sync', '-i', 'r1', 'virstor/thin']);
  writeFileSync(join(dir, 'r3'), kRandomBytes(kRandom(3), 3 * M));
  return dir;
}

const FAULTS = [...every(80), 'eio@write:2', 'eio@write:7', 'eio@barrier:3', 'enospc@write:5'];

describe('a stacked journal (journal on virstor/thin) under kills and I/O errors', () => {
  it('journal write of 3 MiB: every layer all-before or all-after', () => {
    const dir = stackDir('write');
    const before = kernelView(dir);
    const after = Buffer.from(before.journaled);
    readFileSync(join(dir, 'r3')).copy(after, WRITE_AT);
    // The chunks the write allocates, known from a run that is not interrupted.
    const restore = snapshotFiles(dir, ['c0.img', 'j.img']);
    ok(dir, [...MAXPHYS, 'journal', 'write', '-o', String(WRITE_AT), '-i', 'r3', 'virstor/thin']);
    const full = kernelView(dir);
    expect(hash(full.journaled)).toBe(hash(after));
    restore();
    const data = readFileSync(join(dir, 'r3'));
    const effect = (): string => effectOf(kernelView(dir).journaled, before.journaled, WRITE_AT, data);
    const prefixes = new Set<string>();
    const counts = faultRuns(
      {
        run: (spec) => geomctl([...MAXPHYS, 'journal', 'write', '-o', String(WRITE_AT), '-i', 'r3', 'virstor/thin'], { cwd: dir, env: { GEOMCTL_FAULT: spec } }),
        restore,
        atFailure(spec) {
          const v = kernelView(dir);
          expect(effectOf(v.journaled, before.journaled, WRITE_AT, data), `${spec}: FreeBSD's journaled provider`).not.toBe('neither');
          expect(v.allocated, `${spec}: chunks`).toBeGreaterThanOrEqual(before.allocated);
          expect(v.allocated, `${spec}: chunks`).toBeLessThanOrEqual(full.allocated);
        },
        next: () => ok(dir, [...MAXPHYS, 'journal', 'sync', 'virstor/thin']),
        signature: effect,
        before: 'before',
        after: 'after',
        other: (sig) => {
          if (!sig.startsWith('prefix ')) return undefined;
          prefixes.add(sig);
          return 'prefix';
        },
        check(spec) {
          expect(kernelView(dir).clean, `${spec}: CLEAN after sync`).toBe(true);
          // geomctl's own check of the layer below, on a sample of the runs (each costs a command).
          if (/:\d*[05]$/.test(spec)) expect(ok(dir, ['virstor', 'check', 'thin']).stdout, spec).toMatch(/0 errors/);
        },
      },
      FAULTS,
    );
    console.log(`${describeCounts('stacked journal write', counts)} (prefixes: ${[...prefixes].join(', ') || 'none'})`);
    // One journal holds the whole write: all or nothing.
    expect(prefixes.size).toBe(0);
    expect(counts.exhausted.write).toBe(true);
    expect(counts.before).toBeGreaterThan(0);
    expect(counts.after).toBeGreaterThan(0);
  }, 300_000);

  it('journal sync of a DIRTY stacked journal: the journaled provider never changes, and ends CLEAN', () => {
    const dir = stackDir('sync');
    ok(dir, [...MAXPHYS, 'journal', 'write', '-o', String(WRITE_AT), '-i', 'r3', 'virstor/thin']);
    const dirty = kernelView(dir);
    expect(dirty.clean).toBe(false);
    const restore = snapshotFiles(dir, ['c0.img', 'j.img']);
    const counts = faultRuns(
      {
        run: (spec) => geomctl([...MAXPHYS, 'journal', 'sync', 'virstor/thin'], { cwd: dir, env: { GEOMCTL_FAULT: spec } }),
        restore,
        atFailure(spec) {
          expect(hash(kernelView(dir).journaled), `${spec}: FreeBSD's journaled provider`).toBe(hash(dirty.journaled));
        },
        next: () => ok(dir, [...MAXPHYS, 'journal', 'sync', 'virstor/thin']),
        signature: () => hash(kernelView(dir).journaled),
        before: hash(dirty.journaled),
        after: hash(dirty.journaled),
        check(spec) {
          expect(kernelView(dir).clean, `${spec}: CLEAN after sync`).toBe(true);
        },
      },
      FAULTS,
    );
    console.log(describeCounts('stacked journal sync', counts));
    expect(counts.exhausted.write).toBe(true);
    expect(counts.runs).toBeGreaterThan(0);
  }, 300_000);
});
