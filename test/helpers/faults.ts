// Process kills and injected I/O errors through the real bin/geomctl
// (flush-engine.md, "Testing it"): GEOMCTL_FAULT makes the N-th write or
// barrier of a command kill it (SIGKILL) or fail with EIO/ENOSPC. The runner
// restores the images, runs the verb under one fault spec, checks that it
// failed cleanly, lets the next command recover what it left (roll back an
// undo log, replay a journal), and classifies the effect as the state before
// the verb, after it, or another state the caller allows (a prefix of whole
// journals). Shared by the journal and virstor fault tests.

import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { CliResult } from './cli.js';

/**
 * GEOMCTL_FAULTS_ALL=1 (set by `npm run fuzz`): tests that sample a long
 * command's writes kill it at every one instead.
 */
export const ALL_FAULTS = process.env.GEOMCTL_FAULTS_ALL === '1';

/** kill@write:1, kill@barrier:1, ..., kill@write:n, kill@barrier:n. */
export function every(n: number): string[] {
  return Array.from({ length: n }, (_v, i) => [`kill@write:${i + 1}`, `kill@barrier:${i + 1}`]).flat();
}

const BLOCK = 64 * 1024;
const ZERO = Buffer.alloc(BLOCK);

/** The non-zero 64 KiB blocks of a file: enough to rebuild it sparse, or to hash it fast. */
function blocksOf(data: Buffer): { offset: number; data: Buffer }[] {
  const out: { offset: number; data: Buffer }[] = [];
  for (let off = 0; off < data.length; off += BLOCK) {
    const b = data.subarray(off, Math.min(off + BLOCK, data.length));
    if (!b.equals(ZERO.subarray(0, b.length))) out.push({ offset: off, data: Buffer.from(b) });
  }
  return out;
}

/**
 * Remembers the files `names` of `dir` (absent ones too) and returns a
 * function that puts them back as they were — sparse, only their non-zero
 * blocks written — and removes every other geomctl undo log in `dir` (name
 * one in `names` to keep a hot log as part of the state).
 */
export function snapshotFiles(dir: string, names: string[]): () => void {
  const saved = names.map((name) => {
    const path = join(dir, name);
    if (!existsSync(path)) return { path, absent: true as const };
    const data = readFileSync(path);
    return { path, absent: false as const, size: data.length, blocks: blocksOf(data) };
  });
  return () => {
    for (const f of saved) {
      if (f.absent) {
        rmSync(f.path, { force: true });
        continue;
      }
      const fd = openSync(f.path, 'w');
      try {
        for (const b of f.blocks) writeSync(fd, b.data, 0, b.data.length, b.offset);
        ftruncateSync(fd, f.size);
      } finally {
        closeSync(fd);
      }
    }
    for (const name of readdirSync(dir)) if (name.endsWith('.geomctl-undo') && !names.includes(name)) rmSync(join(dir, name), { force: true });
  };
}

/** A hash of the files' sizes and non-zero blocks (absent files count as such): their raw state. */
export function filesSignature(dir: string, names: string[]): string {
  const h = createHash('sha256');
  for (const name of names) {
    const path = join(dir, name);
    if (!existsSync(path)) {
      h.update(`${name}:absent;`);
      continue;
    }
    const data = readFileSync(path);
    h.update(`${name}:${data.length};`);
    for (const b of blocksOf(data)) h.update(`${b.offset}:`).update(b.data);
  }
  return h.digest('hex');
}

/** The undo logs left in `dir`. */
export function undoLogs(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.geomctl-undo'));
}

export interface FaultPlan {
  /** Runs the verb under test with GEOMCTL_FAULT set to `spec`. */
  run(spec: string): CliResult;
  /** Puts the images back as they were before the verb (snapshotFiles). */
  restore(): void;
  /**
   * What a user runs next after the failure: it must recover whatever the
   * failed run left (roll back, replay) and succeed — the caller asserts it.
   */
  next(spec: string): void;
  /** The effect the verb is judged by, taken after next(). */
  signature(): string;
  /** The effects before and after the verb, computed by the caller. */
  before: string;
  after: string;
  /** Names an allowed effect other than before and after (e.g. 'prefix'), undefined for none. */
  other?(signature: string): string | undefined;
  /** Runs right after the failed run, before next() (e.g. what FreeBSD would see then). */
  atFailure?(spec: string): void;
  /** More checks after next(), given the effect's class ('before', 'after' or other's name). */
  check?(spec: string, effect: string): void;
}

export interface FaultCounts {
  /** Failed runs checked. */
  runs: number;
  before: number;
  after: number;
  /** Effects named by FaultPlan.other. */
  other: Record<string, number>;
  /** Whether some kill@write / kill@barrier spec outlived the verb (its count was covered). */
  exhausted: { write: boolean; barrier: boolean };
  /** The verb's count of writes and of barriers, known where a spec outlived it. */
  ops: { write?: number; barrier?: number };
}

const SPEC = /^(kill|eio|enospc)@(write|barrier):(\d+)$/;

/**
 * Runs `plan` once per spec. A run that exits 0 went past the verb's last
 * write (or barrier): later specs on the same operation are skipped. Every
 * failed run must fail cleanly — killed, or exit 1 with a last line naming
 * the errno, never a stack trace — and after next() its effect must be before,
 * after, or one plan.other allows. The images are restored at the end.
 */
export function faultRuns(plan: FaultPlan, specs: string[]): FaultCounts {
  const counts: FaultCounts = { runs: 0, before: 0, after: 0, other: {}, exhausted: { write: false, barrier: false }, ops: {} };
  const past: Record<string, number> = {};
  for (const spec of specs) {
    const m = SPEC.exec(spec);
    if (!m) throw new Error(`bad fault spec ${spec}`);
    const [, action, op, nText] = m as unknown as [string, string, 'write' | 'barrier', string];
    const n = Number(nText);
    if (n >= (past[op] ?? Infinity)) continue;
    plan.restore();
    const r = plan.run(spec);
    if (r.status === 0) {
      past[op] = Math.min(past[op] ?? Infinity, n);
      counts.ops[op] = (past[op] as number) - 1;
      if (action === 'kill') counts.exhausted[op] = true;
      continue;
    }
    expect(r.stderr, `${spec}: a stack trace`).not.toMatch(/\n\s+at .*:\d+/);
    if (action === 'kill') {
      expect(r.status, `${spec}: ${r.stderr}`).toBe(128); // SIGKILL
    } else {
      expect(r.status, `${spec}: ${r.stderr}`).toBe(1);
      // The error is the last line (notes, e.g. of a replay, may come before it).
      expect(r.stderr, spec).toMatch(new RegExp(`(^|\\n)geomctl: [^\\n]*${action === 'eio' ? 'EIO' : 'ENOSPC'}[^\\n]*\\n$`));
    }
    plan.atFailure?.(spec);
    plan.next(spec);
    const sig = plan.signature();
    const effect = sig === plan.before ? 'before' : sig === plan.after ? 'after' : plan.other?.(sig);
    expect(effect, `${spec}: the effect is neither before nor after`).toBeDefined();
    if (effect === 'before') counts.before++;
    else if (effect === 'after') counts.after++;
    else if (effect) counts.other[effect] = (counts.other[effect] ?? 0) + 1;
    plan.check?.(spec, effect as string);
    counts.runs++;
  }
  plan.restore();
  return counts;
}

/** "VERB under GEOMCTL_FAULT: N runs, B before, A after[, P prefix]" for the suite's log. */
export function describeCounts(what: string, c: FaultCounts): string {
  const others = Object.entries(c.other).map(([k, v]) => `, ${v} ${k}`).join('');
  return `${what} under GEOMCTL_FAULT: ${c.runs} runs, ${c.before} before, ${c.after} after${others}`;
}
