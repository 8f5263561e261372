// Shared machinery of the black-box CLI fuzzers (quality.md, "Reliability",
// bad input): run the built bin/geomctl with a time limit, keep small sparse
// images as in-memory snapshots (non-zero 64 KiB blocks only, so a 100 MiB
// one-image journal costs what its data costs), corrupt images at byte
// offsets, crash commands on purpose (GEOMCTL_FAULT) to leave undo logs, and
// judge one command's outcome against the bars every case must meet:
//
// - it ends (20 s; a hang is a failure) with exit status 0, 1 or 2, and 2
//   whenever a size option is not expand_number(3) syntax;
// - stderr holds no stack frame ("    at ") and no "internal error". On
//   failure every line starts with "geomctl: ": any number of
//   "geomctl: warning: ..." lines, then the error — exactly one line, or at
//   most one per named image or device for the verbs that go on past a failed
//   one (dump, clear, taste, list, status, virstor stop: cli.md's "Not fully
//   done"). Informational notes are not expected on failure: a command that
//   fails on its arguments fails before it does anything worth a note. On
//   success stderr may also carry unprefixed notes (e.g. "one.img: replayed
//   1 journal (...)"), and gvirstor label's FreeBSD notes are allowed always;
// - read-only verbs leave every image (and undo log) byte-identical, even
//   when -O names an image; no verb changes an image's size or kind, creates a
//   file other than the outputs it was asked for, or deletes a file;
// - no verb leaves a new undo log (`*.geomctl-undo`): these commands are not
//   crashed, so a log left behind is a transaction a failed command did not
//   roll back (or a successful one did not commit). Logs a case left on
//   purpose may stay, or be rolled back and deleted by a write verb;
// - a usage error (2) changes nothing, and neither does a failed write, add,
//   remove or label of virstor (all or nothing, "fails before writing
//   anything") — except that a write verb first rolls back a crashed
//   transaction it finds;
// - with --json, a successful verb prints nothing or one JSON object with a
//   "command" string (`read` to stdout excepted: its stdout is the data).

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { encodeHeader, encodeRecord } from '../../src/engine/undo-format.js';
import { BIN, binFor } from '../helpers/cli.js';

/** Cases per property: small in `npm test`, 2000 in `npm run fuzz`. */
export const FUZZ_RUNS = Number(process.env.GEOMCTL_FUZZ_RUNS ?? 25);
/**
 * GEOMCTL_FUZZ_ALL=1: run every case and fail at the end with all the problems
 * found, grouped (for a bug hunt); otherwise stop at the first failing case
 * without shrinking (each case spawns processes: shrinking would take minutes).
 */
export const FUZZ_ALL = process.env.GEOMCTL_FUZZ_ALL === '1';
/** GEOMCTL_FUZZ_LOG=FILE: append every command, its exit status and stderr to FILE (to see which paths the cases reach). */
const FUZZ_LOG = process.env.GEOMCTL_FUZZ_LOG;
/** A command that runs longer than this hangs. */
export const TIMEOUT_MS = 20_000;
export const SECTOR = 512;

const BLOCK = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
/** Linux's /dev/full: every write fails with ENOSPC. */
export const HAS_DEV_FULL = existsSync('/dev/full');
/** root reads chmod 000 files: unreadable-file cases then run geomctl as nobody. */
const NOBODY = 65534;

// ---------------------------------------------------------------------------
// Running the CLI

export interface Run {
  args: string[];
  status: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  cwd: string;
  input?: Buffer;
  /** Run as an unprivileged user (root only): chmod 000 then means unreadable. */
  unprivileged?: boolean;
  /** Extra environment, e.g. GEOMCTL_FAULT to crash a command on purpose. */
  env?: Record<string, string>;
  /** stdout to /dev/full (every write fails with ENOSPC) instead of a pipe. */
  stdoutFull?: boolean;
}

export function runGeomctl(args: string[], opts: RunOptions): Run {
  const started = Date.now();
  const full = opts.stdoutFull && HAS_DEV_FULL ? openSync('/dev/full', 'w') : undefined;
  const asNobody = opts.unprivileged && IS_ROOT;
  const r = spawnSync(process.execPath, [asNobody ? binFor(NOBODY) : BIN, ...args], {
    cwd: opts.cwd,
    stdio: ['pipe', full ?? 'pipe', 'pipe'],
    input: opts.input ?? Buffer.alloc(0),
    timeout: TIMEOUT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: 1 << 30,
    env: { ...process.env, NO_COLOR: '1', GEOMCTL_DEBUG: '', GEOMCTL_FAULT: '', GEOMCTL_PATH: '', ...opts.env },
    ...(asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  if (full !== undefined) closeSync(full);
  const error = r.error as NodeJS.ErrnoException | undefined;
  return {
    args,
    status: r.status,
    signal: r.signal,
    timedOut: error?.code === 'ETIMEDOUT',
    stdout: (r.stdout as Buffer | null) ?? Buffer.alloc(0),
    stderr: ((r.stderr as Buffer | null) ?? Buffer.alloc(0)).toString('utf8'),
    ms: Date.now() - started,
  };
}

/** Bytes under `dir`, recursively (what a spool or undo file costs). */
export function bytesUnder(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const st = lstatSync(join(dir, name));
    total += st.isDirectory() ? bytesUnder(join(dir, name)) : st.size;
  }
  return total;
}

export interface Watched {
  status: number | null;
  signal: string | null;
  timedOut: boolean;
  /** The most `watch` held while the command ran. */
  peak: number;
  /** Killed because `watch` grew past the limit. */
  overLimit: boolean;
  stderr: string;
}

/**
 * Runs geomctl with `stdin` (a file descriptor, e.g. /dev/zero for an endless
 * input, or 'pipe' to keep it open) and its TMPDIR set to `watch`, polling
 * how much `watch` holds: past `limit` bytes the command is killed (it would
 * fill the disk). `during(child)` may act on the running process once
 * `when(watch)` holds (e.g. interrupt it once it spools).
 */
export function runWatched(
  args: string[],
  opts: { cwd: string; watch: string; limit: number; stdin: number | 'pipe'; when?: () => boolean; during?: (pid: number) => void },
): Promise<Watched> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      stdio: [opts.stdin, 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', GEOMCTL_DEBUG: '', GEOMCTL_FAULT: '', GEOMCTL_PATH: '', TMPDIR: opts.watch },
    });
    let stderr = '';
    let peak = 0;
    let overLimit = false;
    let timedOut = false;
    let acted = false;
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const poll = setInterval(() => {
      peak = Math.max(peak, bytesUnder(opts.watch));
      if (peak > opts.limit && !overLimit) {
        overLimit = true;
        child.kill('SIGKILL');
      }
      if (!acted && opts.during && child.pid !== undefined && (opts.when?.() ?? true)) {
        acted = true;
        opts.during(child.pid);
      }
    }, 25);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.on('close', (status, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      peak = Math.max(peak, bytesUnder(opts.watch));
      resolve({ status, signal, timedOut, peak, overLimit, stderr });
    });
  });
}

// ---------------------------------------------------------------------------
// Sparse snapshots of image files

/** What a path holds: a file's bytes as non-zero 64 KiB blocks, or another kind. */
export type Entry =
  | { kind: 'file'; size: number; blocks: Map<number, Buffer> }
  | { kind: 'unreadable'; size: number }
  | { kind: 'dir' | 'fifo' | 'symlink' | 'other' | 'missing' };

export function capture(path: string): Entry {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return { kind: 'missing' };
  }
  if (st.isDirectory()) return { kind: 'dir' };
  if (st.isFIFO()) return { kind: 'fifo' };
  if (st.isSymbolicLink()) return { kind: 'symlink' };
  if (!st.isFile()) return { kind: 'other' };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { kind: 'unreadable', size: st.size };
  }
  const blocks = new Map<number, Buffer>();
  const buf = Buffer.alloc(16 * BLOCK);
  try {
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      for (let at = 0; at < n; at += BLOCK) {
        const piece = buf.subarray(at, Math.min(at + BLOCK, n));
        if (!piece.equals(ZERO_BLOCK.subarray(0, piece.length))) blocks.set(pos + at, Buffer.from(piece));
      }
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return { kind: 'file', size: st.size, blocks };
}

export function sameEntry(a: Entry, b: Entry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'file' && b.kind === 'file') {
    if (a.size !== b.size || a.blocks.size !== b.blocks.size) return false;
    for (const [at, block] of a.blocks) if (!b.blocks.get(at)?.equals(block)) return false;
    return true;
  }
  if (a.kind === 'unreadable' && b.kind === 'unreadable') return a.size === b.size;
  return true;
}

/** A short fingerprint of an entry, for messages. */
export function describeEntry(e: Entry): string {
  if (e.kind === 'file') {
    const h = createHash('sha256');
    for (const at of [...e.blocks.keys()].sort((x, y) => x - y)) h.update(`${at}:`).update(e.blocks.get(at) as Buffer);
    return `file ${e.size} bytes sha256/sparse ${h.digest('hex').slice(0, 12)}`;
  }
  if (e.kind === 'unreadable') return `unreadable ${e.size} bytes`;
  return e.kind;
}

/** Writes a captured file back as a sparse file. */
export function restore(path: string, e: Entry & { kind: 'file' }): void {
  writeFileSync(path, Buffer.alloc(0));
  truncateSync(path, e.size);
  const fd = openSync(path, 'r+');
  try {
    for (const [at, block] of e.blocks) writeSync(fd, block, 0, block.length, at);
  } finally {
    closeSync(fd);
  }
}

/** Reads `length` bytes at `offset` of a captured file (holes read as zeros). */
export function bytesAt(e: Entry & { kind: 'file' }, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let at = Math.floor(offset / BLOCK) * BLOCK; at < offset + length; at += BLOCK) {
    const block = e.blocks.get(at);
    if (!block) continue;
    const from = Math.max(offset, at);
    const to = Math.min(offset + length, at + block.length);
    if (to > from) block.copy(out, from - offset, from - at, to - at);
  }
  return out;
}

/** Offsets of the sectors in [from, to) of a captured file that start with `magic`. */
export function sectorsStartingWith(e: Entry & { kind: 'file' }, magic: Buffer, from: number, to: number): number[] {
  const found: number[] = [];
  for (const at of [...e.blocks.keys()].sort((x, y) => x - y)) {
    const block = e.blocks.get(at) as Buffer;
    for (let s = 0; s < block.length; s += SECTOR) {
      const off = at + s;
      if (off >= from && off < to && block.subarray(s, s + magic.length).equals(magic)) found.push(off);
    }
  }
  return found;
}

// ---------------------------------------------------------------------------
// Patching images in place

export function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

export function writeAt(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Writes `value` as a little-endian unsigned integer of `size` bytes, wrapping as C would. */
export function uintBytes(value: bigint, size: number): Buffer {
  const b = Buffer.alloc(size);
  let v = BigInt.asUintN(size * 8, value);
  for (let i = 0; i < size; i++) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

export function readUint(buf: Buffer, offset: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[offset + i] as number);
  return v;
}

/**
 * A number to put in a field: an anchor the property resolves from the image
 * (its size, jstart, a record's own value, ...) plus a small delta, or an
 * absolute value. Negative results wrap as the field's unsigned type does, so
 * "0 - 1" becomes the field's maximum.
 */
export interface Num {
  base: string;
  delta: bigint;
}

export function numArb(bases: readonly string[]): fc.Arbitrary<Num> {
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        base: fc.constantFrom(...bases),
        delta: fc.oneof(
          fc.constant(0n),
          fc.constantFrom(1n, -1n, 512n, -512n, 4096n, -4096n, 1n << 20n, -(1n << 20n), 1n << 32n),
          fc.bigInt({ min: -(1n << 24n), max: 1n << 24n }),
        ),
      }),
    },
    { weight: 1, arbitrary: fc.record({ base: fc.constant('abs'), delta: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }) },
  );
}

export function resolveNum(n: Num, anchors: Record<string, bigint>): bigint {
  if (n.base === 'abs') return n.delta;
  const base = anchors[n.base];
  if (base === undefined) throw new Error(`fuzz: no anchor ${n.base}`);
  return base + n.delta;
}

/** 16 bytes for a NUL-terminated name field: a name, or bytes with no NUL at all. */
export const nameFieldArb = fc.oneof(
  fc.constantFrom('', 'other.img', 'GEOM::JOURNAL', 'GEOM::VIRSTOR', 'x'),
  fc.constant('<no NUL>'),
  fc.string({ minLength: 1, maxLength: 15 }),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => `<bytes ${Buffer.from(a).toString('hex')}>`),
);

export function nameFieldBytes(spec: string, self: string): Buffer {
  const b = Buffer.alloc(16);
  if (spec === '<self>') Buffer.from(self, 'utf8').subarray(0, 15).copy(b);
  else if (spec === '<no NUL>') b.fill('ABCDEFGHIJKLMNOP');
  else if (spec.startsWith('<bytes ')) Buffer.from(spec.slice(7, -1), 'hex').copy(b);
  else Buffer.from(spec, 'utf8').subarray(0, 16).copy(b);
  return b;
}

// ---------------------------------------------------------------------------
// Size options

/** expand_number(3) syntax as cli.md defines it; anything else must be a usage error (2). */
export function isSizeSyntax(text: string): boolean {
  return /^(0x[0-9a-f]+|[0-9]+)([kmgtpe])?b?$/i.test(text.trim());
}

/** `arb` in `percent`% of the cases, null (option not given) otherwise. */
export function sometimes<T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: percent, arbitrary: arb }, { weight: 100 - percent, arbitrary: fc.constant(null) });
}

/** Values for -o, -l, -s, -m, --maxphys, --cache-limit: sane, absurd and malformed. */
export function sizeArb(sane: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...sane) },
    { weight: 1, arbitrary: fc.nat({ max: 1 << 16 }).map((n) => String(n * 512)) },
    { weight: 1, arbitrary: fc.nat().map(String) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 72n) - 1n }).map(String) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '-1',
        '-512',
        '',
        'abc',
        '1.5M',
        '1e3',
        '0x',
        '0x200',
        '0xFFFFFFFFFFFFFFFF',
        '18446744073709551615',
        '18446744073709551616',
        '9007199254740993',
        '9223372036854775807',
        '16E',
        '8E',
        '15E',
        '1P',
        '4G',
        '513',
        '511',
        '1',
        '7k',
        '4kb',
        ' 512',
        '512 ',
        '+512',
        '1M1',
      ),
    },
  );
}

// ---------------------------------------------------------------------------
// Scratch directories

/** Makes `dir` usable by the unprivileged user the unreadable cases run as. */
export function openUp(dir: string): void {
  if (!IS_ROOT) return;
  chmodSync(dir, 0o777);
  for (const name of readdirSync(dir)) {
    const st = lstatSync(join(dir, name));
    if (st.isFile()) chmodSync(join(dir, name), 0o666);
    else if (st.isDirectory()) chmodSync(join(dir, name), 0o777);
  }
}

/** Replaces `path` by a directory, a FIFO, nothing, an empty file or an unreadable file. */
export type Replacement = 'dir' | 'fifo' | 'missing' | 'empty' | 'unreadable' | 'devnull';

export function replace(path: string, how: Replacement): void {
  rmSync(path, { recursive: true, force: true });
  switch (how) {
    case 'dir':
      mkdirSync(path);
      writeFileSync(join(path, 'inner.img'), Buffer.alloc(SECTOR));
      break;
    case 'fifo': {
      const r = spawnSync('mkfifo', [path]);
      if (r.status !== 0) throw new Error(`mkfifo ${path} failed`);
      break;
    }
    case 'missing':
      break;
    case 'empty':
      writeFileSync(path, Buffer.alloc(0));
      break;
    case 'unreadable':
      writeFileSync(path, Buffer.alloc(4 * SECTOR, 0x55));
      chmodSync(path, 0o000);
      break;
    case 'devnull':
      // A symbolic link to a character device: not an image either.
      symlinkSync('/dev/null', path);
      break;
  }
}

// ---------------------------------------------------------------------------
// Crashed transactions: hot undo logs, intact or damaged

/** How a crash's undo log is left: as the crash left it, or damaged. */
export type UndoDamage =
  | { how: 'none' }
  | { how: 'flip'; at: number; bytes: Uint8Array }
  | { how: 'truncate'; at: number }
  | { how: 'append'; bytes: Uint8Array }
  | { how: 'empty' };

export const undoDamageArb: fc.Arbitrary<UndoDamage> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ how: 'none' as const }) },
  { weight: 3, arbitrary: fc.record({ how: fc.constant('flip' as const), at: fc.nat({ max: 1 << 16 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ how: fc.constant('truncate' as const), at: fc.nat({ max: 1 << 16 }) }) },
  { weight: 1, arbitrary: fc.record({ how: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 600 }) }) },
  { weight: 1, arbitrary: fc.constant({ how: 'empty' as const }) },
);

/**
 * An undo log for `image` that passes every CRC but lies: the image size it
 * records (the real one times `sizeFactor`) and one record at `at` of
 * `length` bytes, maybe past the image's end. Recovery may restore bytes
 * inside the image (that is what logs are for), never write outside it.
 */
export interface Forgery {
  sizeFactor: number;
  at: { base: 'start' | 'end'; delta: number };
  length: number;
  fill: number;
}

export const forgeryArb: fc.Arbitrary<Forgery> = fc.record({
  sizeFactor: fc.constantFrom(1, 1, 2, 4),
  at: fc.record({ base: fc.constantFrom<'start' | 'end'>('start', 'end'), delta: fc.integer({ min: -8, max: 8 }).map((k) => k * SECTOR) }),
  length: fc.constantFrom(1, SECTOR, 4096, 65536),
  fill: fc.nat({ max: 255 }),
});

export function forgeUndoLog(dir: string, image: string, f: Forgery): string[] {
  const path = join(dir, image);
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return [];
  }
  if (!st.isFile()) return [];
  const nonce = Buffer.from('fuzzlog!', 'latin1');
  const size = st.size * f.sizeFactor;
  const header = encodeHeader(nonce, [{ path: image, abs: path, size, dev: st.dev, ino: st.ino }]);
  const offset = Math.max(0, (f.at.base === 'start' ? 0 : st.size) + f.at.delta);
  const record = encodeRecord(nonce, 0, offset, f.length, Buffer.alloc(f.length, f.fill));
  const log = `${image}.geomctl-undo`;
  writeFileSync(join(dir, log), Buffer.concat([header, record]));
  return [log];
}

/** GEOMCTL_FAULT values that kill a command part way (flush-engine.md's test hook). */
export const faultArb: fc.Arbitrary<string> = fc.tuple(fc.constantFrom('write', 'barrier'), fc.integer({ min: 1, max: 6 })).map(([op, k]) => `kill@${op}:${k}`);

/**
 * Runs `args` in `dir` with GEOMCTL_FAULT=`fault` (it may also finish: then
 * there is no log), damages the undo logs it left as `damage` says, and
 * returns their names.
 */
export function crash(dir: string, args: string[], fault: string, damage: UndoDamage): string[] {
  runGeomctl(args, { cwd: dir, env: { GEOMCTL_FAULT: fault } });
  const logs = readdirSync(dir).filter((f) => f.endsWith('.geomctl-undo'));
  for (const log of logs) {
    const path = join(dir, log);
    const size = lstatSync(path).size;
    switch (damage.how) {
      case 'none':
        break;
      case 'flip':
        if (size > 0) writeAt(path, damage.at % size, Buffer.from(damage.bytes).subarray(0, size - (damage.at % size)));
        break;
      case 'truncate':
        truncateSync(path, damage.at % (size + 1));
        break;
      case 'append':
        writeAt(path, size, Buffer.from(damage.bytes));
        break;
      case 'empty':
        truncateSync(path, 0);
        break;
    }
  }
  return logs;
}

// ---------------------------------------------------------------------------
// Judging one command

export interface Step {
  /** argv after the binary. */
  args: string[];
  /** Verbs that must not change any image. */
  readOnly: boolean;
  /** Files the verb was asked to write (relative to the run directory). */
  outputs: string[];
  /** How many error lines a failure may print (one per image for dump/clear/taste). */
  maxErrorLines: number;
  input?: Buffer;
  /** The images (and other files) whose bytes a read-only verb must keep. */
  images: string[];
  /** When it fails (exit 1), the images must be byte-identical ("fails before writing anything"). */
  atomicOnFailure?: boolean;
  /** stdout is data (read without -O): not checked as JSON. */
  stdoutIsData?: boolean;
  unprivileged?: boolean;
  /** Unprefixed stderr lines FreeBSD's tool prints too (gvirstor label's resizing notes), allowed even on failure. */
  notes?: RegExp;
  /** stdout goes to /dev/full. */
  stdoutFull?: boolean;
}

export interface Judged {
  run: Run;
  problems: string[];
  /** The images as the command left them: the next step's "before". */
  after: Map<string, Entry>;
}

function listDir(dir: string): Map<string, { kind: string; size: number }> {
  const out = new Map<string, { kind: string; size: number }>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isFIFO() ? 'fifo' : st.isSymbolicLink() ? 'symlink' : 'other';
      out.set(r, { kind, size: st.isFile() ? st.size : 0 });
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

function sizeArgsBad(args: string[]): boolean {
  const sizeOptions = new Set(['-o', '--offset', '-l', '--length', '-s', '--jsize', '--virsize', '-m', '--chunksize', '--maxphys', '--cache-limit', '--sectorsize']);
  for (let i = 0; i + 1 < args.length; i++) {
    if (sizeOptions.has(args[i] as string) && !isSizeSyntax(args[i + 1] as string)) return true;
  }
  return false;
}

/** Runs one step and checks it; `known` holds the images' current contents when the caller has them. */
export function judge(dir: string, step: Step, known?: Map<string, Entry>): Judged {
  const before = listDir(dir);
  const images = new Map<string, Entry>();
  for (const name of step.images) images.set(name, known?.get(name) ?? capture(join(dir, name)));
  const run = runGeomctl(step.args, {
    cwd: dir,
    ...(step.input ? { input: step.input } : {}),
    ...(step.unprivileged ? { unprivileged: true } : {}),
    ...(step.stdoutFull ? { stdoutFull: true } : {}),
  });
  const problems: string[] = [];
  const p = (msg: string) => problems.push(msg);

  if (run.timedOut) p(`hang: still running after ${TIMEOUT_MS / 1000} s (killed)`);
  else if (run.status === null) p(`killed by ${run.signal}`);
  else if (![0, 1, 2].includes(run.status)) p(`exit status ${run.status}`);
  if (!run.timedOut && sizeArgsBad(step.args) && run.status !== 2) p(`a malformed size option must be a usage error (2), got ${run.status}`);

  const lines = run.stderr.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (run.stderr.includes('    at ')) p('stack trace on stderr');
  if (/internal error/i.test(run.stderr)) p('internal error on stderr');
  if (run.status !== null && run.status !== 0 && !run.timedOut) {
    const isNote = (l: string) => step.notes?.test(l) === true;
    for (const line of lines) if (!line.startsWith('geomctl: ') && !isNote(line)) p(`stderr line without 'geomctl: ' in a failure: ${JSON.stringify(line)}`);
    // The line saying a crashed transaction was rolled back comes first, and is no error.
    const isWarning = (l: string) => l.startsWith('geomctl: warning: ') || l.startsWith('geomctl: rolled back an unfinished transaction ') || isNote(l);
    const errors = lines.filter((l) => !isWarning(l));
    if (errors.length === 0) p('failed without an error message');
    if (errors.length > step.maxErrorLines) p(`${errors.length} error lines (at most ${step.maxErrorLines})`);
    if (lines.length > 0 && isWarning(lines[lines.length - 1] as string)) p('a warning after the error');
  }

  // Undo logs that were there before (a crash the case injected on purpose)
  // may stay, and a write verb may roll them back and delete them; a new one
  // means this command left a transaction open.
  const isUndo = (name: string) => name.endsWith('.geomctl-undo');
  const after = listDir(dir);
  for (const [name, st] of after) {
    if (isUndo(name) && !before.has(name)) p(`undo log ${name} left behind (exit ${run.status})`);
    else if (!before.has(name) && !step.outputs.includes(name)) p(`stray file ${name} (${st.kind}, ${st.size} bytes)`);
  }
  for (const [name, st] of before) {
    if (step.outputs.includes(name)) continue;
    const now = after.get(name);
    const mayRollBack = isUndo(name) && !step.readOnly;
    if (!now && mayRollBack) continue;
    if (!now) p(`${name} disappeared`);
    else if (mayRollBack) continue;
    else if (now.kind !== st.kind) p(`${name} changed from ${st.kind} to ${now.kind}`);
    else if (now.size !== st.size) p(`${name} changed size: ${st.size} -> ${now.size}`);
  }
  // A write verb that finds a crashed transaction rolls it back before
  // anything else (flush-engine.md, "Recovery"): whatever fails after that,
  // usage errors found late included, the bytes have moved.
  const hadUndo = [...before.keys()].some(isUndo);
  const rolledBack = hadUndo && !step.readOnly;
  const mustKeepBytes = step.readOnly || (!rolledBack && (run.status === 2 || (run.status === 1 && step.atomicOnFailure === true)));
  const now = new Map<string, Entry>();
  for (const name of step.images) now.set(name, capture(join(dir, name)));
  if (mustKeepBytes) {
    for (const [name, was] of images) {
      const is = now.get(name) as Entry;
      if (!sameEntry(was, is)) {
        const why = step.readOnly ? 'a read-only verb' : run.status === 2 ? 'a usage error' : 'a failed all-or-nothing verb';
        p(`${why} changed ${name}: ${describeEntry(was)} -> ${describeEntry(is)}`);
      }
    }
  }
  if (step.args.includes('--json') && run.status === 0 && !step.stdoutIsData) {
    const text = run.stdout.toString('utf8').trim();
    if (text !== '') {
      try {
        const doc = JSON.parse(text) as unknown;
        if (typeof doc !== 'object' || doc === null || typeof (doc as { command?: unknown }).command !== 'string') p('--json document without a "command" string');
      } catch {
        p('--json output is not one JSON document');
      }
    }
  }
  return { run, problems, after: now };
}

// ---------------------------------------------------------------------------
// Bookkeeping

/** Counts outcomes and collects problems (with a reproduction) across cases. */
export class Tally {
  cases = 0;
  commands = 0;
  readonly exits = new Map<string, number>();
  readonly verbs = new Map<string, number>();
  readonly failures: { signature: string; detail: string }[] = [];
  slowest = 0;

  record(verb: string, j: Judged): void {
    this.commands++;
    const key = j.run.timedOut ? 'hang' : String(j.run.status ?? j.run.signal);
    this.exits.set(key, (this.exits.get(key) ?? 0) + 1);
    this.verbs.set(verb, (this.verbs.get(verb) ?? 0) + 1);
    this.slowest = Math.max(this.slowest, j.run.ms);
  }

  summary(label: string): string {
    const exits = [...this.exits].sort().map(([k, v]) => `${k}: ${v}`).join(', ');
    const verbs = [...this.verbs].sort().map(([k, v]) => `${k} ${v}`).join(', ');
    return `${label} fuzz cases: ${this.cases}, commands: ${this.commands}, exit codes: {${exits}}, slowest: ${this.slowest} ms\n  verbs: ${verbs}`;
  }

  /** Groups the collected problems by kind, one reproduction each. */
  report(): string {
    const groups = new Map<string, { n: number; detail: string }>();
    for (const f of this.failures) {
      const g = groups.get(f.signature);
      if (g) g.n++;
      else groups.set(f.signature, { n: 1, detail: f.detail });
    }
    return [...groups].map(([sig, g]) => `${g.n}× ${sig}\n${g.detail}`).join('\n\n');
  }
}

/** A problem's kind without the numbers and names that vary between cases. */
export function signature(verb: string, problem: string): string {
  return `${verb}: ${problem.replace(/[0-9a-f]{12,}/g, 'H').replace(/\d+/g, 'N').replace(/"[^"]*"/g, '"…"').slice(0, 160)}`;
}

export function formatRun(j: Judged, recipe: string): string {
  const out = j.run.stdout.toString('utf8');
  return [
    `recipe: ${recipe}`,
    `command: geomctl ${j.run.args.map((a) => (/^[\w./:=@+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`,
    `exit: ${j.run.timedOut ? 'hang' : (j.run.status ?? j.run.signal)} in ${j.run.ms} ms`,
    `stderr: ${j.run.stderr.trimEnd().split('\n').slice(0, 12).join('\n        ')}`,
    `stdout: ${out.length > 600 ? `${out.slice(0, 600)}…` : out.trimEnd()}`,
    `problems: ${j.problems.join('; ')}`,
  ].join('\n');
}

/** Deterministic bytes that are never all zero (inputs and template data). */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = Math.imul(seed, 2654435761) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A template-building command: it must succeed. */
export function mustRun(dir: string, args: string[]): void {
  const r = runGeomctl(args, { cwd: dir });
  if (r.status !== 0) throw new Error(`template: geomctl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}

/** A sparse file of `size` bytes, all zeros. */
export function emptyImage(path: string, size: number): void {
  writeFileSync(path, Buffer.alloc(0));
  truncateSync(path, size);
}

/**
 * Runs a case's steps in order on the same directory (each step sees what the
 * one before left), judging each. A problem throws with the reproduction —
 * or, under GEOMCTL_FUZZ_ALL=1, is recorded in the tally and the case goes on.
 */
export function runSteps(tally: Tally, label: string, dir: string, recipe: string, steps: { step: Step; name: string }[]): void {
  let known: Map<string, Entry> | undefined;
  for (const { step, name } of steps) {
    const j = judge(dir, step, known);
    known = j.after;
    if (FUZZ_LOG) appendFileSync(FUZZ_LOG, `${formatRun(j, recipe)}\n\n`);
    tally.record(name, j);
    if (j.problems.length === 0) continue;
    const detail = formatRun(j, recipe);
    if (!FUZZ_ALL) throw new Error(`${label} fuzz case failed:\n${detail}`);
    for (const problem of j.problems) tally.failures.push({ signature: signature(name, problem), detail });
  }
}

/** JSON for a recipe: bigints as "123n", byte arrays as hex. */
export function showRecipe(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
}

// ---------------------------------------------------------------------------
// What both classes' fuzzers share: the options every verb takes, read's
// destination, applying a case's corruptions, the property and its report.

/** cli.md's global options plus each verb's -v, drawn alike for both classes. */
export interface CommonOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  ignoreHardcoded: boolean;
  cacheLimit: string | null;
  wait: string | null;
  dirs: string[];
}

/** Spread into a verb case's fc.record. */
export const commonOptionArbs: { [K in keyof CommonOptions]: fc.Arbitrary<CommonOptions[K]> } = {
  json: fc.boolean(),
  quiet: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 7, arbitrary: fc.constant(false) }),
  verbose: fc.boolean(),
  ignoreHardcoded: fc.boolean(),
  cacheLimit: sometimes(sizeArb(['0', '1', '4k', '64k', '1M', '256M']), 15),
  wait: sometimes(fc.constantFrom('0', '1', '-1', 'abc', '99999999999', '0.5', ''), 5),
  dirs: fc.constantFrom<string[]>([], [], [], ['.'], ['sub'], ['nodir'], ['.', '.']),
};

/** The global options of `v` as argv (the verb's -v is not one of them). */
export function globalArgs(v: CommonOptions): string[] {
  const args: string[] = [];
  if (v.json) args.push('--json');
  if (v.quiet) args.push('-q');
  if (v.ignoreHardcoded) args.push('-H');
  if (v.cacheLimit !== null) args.push('--cache-limit', v.cacheLimit);
  if (v.wait !== null) args.push('--wait', v.wait);
  for (const d of v.dirs) args.push('-d', d);
  return args;
}

/** Where `read` sends its bytes: -O `output`, or stdout (to /dev/full when `stdoutFull`). */
export function readDestination(output: string | null, stdoutFull: boolean): { args: string[]; outputs: string[]; stdoutIsData: boolean; stdoutFull: boolean } {
  if (output !== null) return { args: ['-O', output], outputs: [output], stdoutIsData: false, stdoutFull: false };
  return { args: [], outputs: [], stdoutIsData: true, stdoutFull };
}

/**
 * Applies a case's corruptions in order. Returns the extra files they made
 * and whether a case must run unprivileged (the directory is then opened up
 * for that user).
 */
export function corruptAll<C>(dir: string, corruptions: readonly C[], apply: (c: C) => { extra: string[]; unprivileged: boolean }): { extra: string[]; unprivileged: boolean } {
  const extra: string[] = [];
  let unprivileged = false;
  for (const c of corruptions) {
    const r = apply(c);
    extra.push(...r.extra);
    unprivileged ||= r.unprivileged;
  }
  if (unprivileged) openUp(dir);
  return { extra, unprivileged };
}

/** Runs the black-box property for each template, then reports the tally (and fails on any problem). */
export function fuzzTemplates<C>(label: string, tally: Tally, caseArb: fc.Arbitrary<C>, templates: { title: string; run: (c: C) => void }[]): void {
  const budget = Math.max(120_000, FUZZ_RUNS * 20_000);
  for (const t of templates) {
    it(t.title, () => fc.assert(fc.property(caseArb, t.run), { numRuns: FUZZ_RUNS, endOnFailure: true }), budget);
  }
  it('reports what it ran', () => {
    console.log(tally.summary(label));
    if (FUZZ_ALL && tally.failures.length > 0) console.log(tally.report());
    expect(tally.failures).toEqual([]);
  });
}

/** Judges one pinned-down command in a fresh directory; the problems, each with its reproduction. */
export function problemsIn(dir: string, step: Step): string[] {
  const j = judge(dir, step);
  return j.problems.map((p) => `${p} [geomctl ${step.args.join(' ')}: exit ${j.run.status}; ${j.run.stderr.trim()}]`);
}
