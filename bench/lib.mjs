// Shared helpers for the benchmarks: run a command several times, take the
// median wall time, and print geomctl's time as a ratio to a reference measured
// in the same run (quality.md, "Performance": a time alone means little on a
// shared machine).
import { spawn as spawnChild, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** bin/geomctl; GEOMCTL_BENCH_BIN points the benchmarks at another build (e.g. a copy that a rebuild cannot remove mid-run). */
export const BIN = process.env.GEOMCTL_BENCH_BIN ?? join(ROOT, 'bin', 'geomctl');
/** The reference loop of the read benchmarks (quality.md: 128 KiB readSync/writeSync). */
export const NODE_STREAM = join(ROOT, 'bench', 'node-stream.mjs');

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function spawn(argv, { shell = false, env = process.env, cwd, stdout = 'ignore', timeout = 600_000 } = {}) {
  const opts = { stdio: ['ignore', stdout, 'pipe'], env, cwd, timeout, maxBuffer: 64 * MiB };
  return shell ? spawnSync('/bin/sh', ['-c', argv], opts) : spawnSync(argv[0], argv.slice(1), opts);
}

function failed(argv, r) {
  const what = Array.isArray(argv) ? argv.join(' ') : argv;
  return new Error(`${what} failed (status ${r.status}${r.signal ? `, ${r.signal}` : ''}${r.error ? `, ${r.error.message}` : ''}): ${r.stderr}`);
}

/** Runs argv once (stdout to /dev/null) and returns its wall time in seconds. */
export function timeOnce(argv, opts = {}) {
  const start = process.hrtime.bigint();
  const r = spawn(argv, opts);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw failed(argv, r);
  return seconds;
}

/** Runs argv `runs` times (after one warm-up) and returns the median seconds. */
export function timeCommand(argv, { runs = 7, setup, ...opts } = {}) {
  const times = [];
  for (let i = 0; i <= runs; i++) {
    if (setup) setup();
    const seconds = timeOnce(argv, opts);
    if (i > 0) times.push(seconds);
  }
  return median(times);
}

/**
 * Times several commands in alternation — one warm-up round, then `runs`
 * rounds of each in turn — so that a neighbour's load hits all of them alike.
 * `cases` maps a name to { argv, setup?, shell?, env?, cwd? }; returns name -> median seconds.
 */
export function timeInterleaved(cases, opts = {}) {
  const times = timeInterleavedRuns(cases, opts);
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

/** timeInterleaved's rounds: name -> the seconds of every timed run, in order. */
export function timeInterleavedRuns(cases, { runs = 5 } = {}) {
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i <= runs; i++) {
    for (const [name, c] of Object.entries(cases)) {
      const { argv, setup, ...opts } = c;
      if (setup) setup();
      const seconds = timeOnce(argv, opts);
      if (i > 0) times[name].push(seconds);
    }
  }
  return times;
}

/** Runs argv and returns its stdout (a string); throws when it fails. */
export function run(argv, opts = {}) {
  const r = spawn(argv, { ...opts, stdout: 'pipe' });
  if (r.status !== 0) throw failed(argv, r);
  return r.stdout.toString();
}

/** argv for geomctl. */
export function geomctlArgv(...args) {
  return [process.execPath, BIN, ...args];
}

/** Runs geomctl with `args`; returns stdout. */
export function geomctl(args, opts = {}) {
  return run(geomctlArgv(...args), opts);
}

/** Runs geomctl --json with `args` and returns the parsed document. */
export function geomctlJson(args, opts = {}) {
  return JSON.parse(geomctl(['--json', ...args], opts));
}

/**
 * A scratch directory under os.tmpdir(); remove it with cleanup().
 * GEOMCTL_BENCH_KEEP=1 keeps it (and says where) for profiling by hand.
 */
export function scratch(name) {
  const dir = mkdtempSync(join(tmpdir(), `geomctl-bench-${name}-`));
  const cleanup = () => {
    if (process.env.GEOMCTL_BENCH_KEEP) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
  return { dir, path: (file) => join(dir, file), cleanup };
}

/** A sparse file of `size` bytes at `path` (an existing one is emptied first: no blocks). */
export function sparseFile(path, size) {
  writeFileSync(path, '');
  truncateSync(path, size);
  return path;
}

/** `length` bytes of `path` at `offset`. */
export function readAt(path, offset, length) {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/**
 * Puts a journal image back into the state a replay starts from: its saved
 * dirty metadata `sector` at `at` (fsynced), and the data area [0, punch)
 * punched out again so the replay writes into unallocated blocks every time.
 */
export function rewindReplay(img, at, sector, punch) {
  const fd = openSync(img, 'r+');
  try {
    writeSync(fd, sector, 0, sector.length, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  run(['fallocate', '--punch-hole', '--offset', '0', '--length', String(punch), img]);
}

/** Writes `bytes` of random data (incompressible, no zero sectors to skip) to `path`. */
export function randomFile(path, bytes) {
  const fd = openSync(path, 'w');
  const buf = Buffer.allocUnsafe(Math.min(bytes, 8 * MiB));
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(buf.length, bytes - done);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n, done);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Reads `path` once so the page cache holds it (the spec's numbers are "page cache warm"). */
export function warm(path) {
  timeOnce(['cat', path]);
}

/** Prints one result line and returns whether the target was met. */
export function report(name, seconds, refName, refSeconds, target) {
  const ratio = seconds / refSeconds;
  const ok = target === undefined || ratio <= target;
  const verdict = target === undefined ? '' : ok ? ` (target ≤ ${target}×: met)` : ` (target ≤ ${target}×: MISSED)`;
  console.log(`${name}: ${seconds.toFixed(3)} s vs ${refName} ${refSeconds.toFixed(3)} s = ${ratio.toFixed(2)}×${verdict}`);
  return ok;
}

/** Prints a measured value against an absolute limit and returns whether it is within it. */
export function reportLimit(name, value, unit, limit) {
  const ok = value <= limit;
  console.log(`${name}: ${value.toFixed(unit === 's' ? 3 : 0)} ${unit} (limit ${limit} ${unit}: ${ok ? 'met' : 'MISSED'})`);
  return ok;
}

/**
 * Runs argv once and returns its peak resident set size in KiB: GNU time's
 * %M when /usr/bin/time exists, else VmHWM polled from /proc.
 */
export async function peakRssKiB(argv, opts = {}) {
  return existsSync('/usr/bin/time') ? peakRssByTime(argv, opts) : peakRssByPolling(argv, opts);
}

function peakRssByTime(argv, opts) {
  const dir = mkdtempSync(join(tmpdir(), 'geomctl-bench-rss-'));
  try {
    const out = join(dir, 'rss');
    const r = spawn(['/usr/bin/time', '-f', '%M', '-o', out, ...argv], opts);
    if (r.status !== 0) throw failed(argv, r);
    return Number(readFileSync(out, 'utf8').trim().split('\n').pop());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The child's VmHWM (its high-water mark so far), read every 5 ms while it runs: only a peak in its last 5 ms can be missed. */
async function peakRssByPolling(argv, opts) {
  const child = spawnChild(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env, cwd: opts.cwd });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {
      // gone already
    }
  }, 5);
  const status = await new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  clearInterval(timer);
  if (status !== 0) throw new Error(`${argv.join(' ')} failed (status ${status}): ${stderr}`);
  return peak;
}

/**
 * Times geomctl (`subject`: { argv, setup? }) against `dd bs=1M conv=fsync`
 * copying `input` to a new file in `dir` — the write benchmarks' reference —
 * and reports the ratio.
 */
export function versusDd(name, subject, input, dir, target, runs = 5) {
  warm(input);
  const out = join(dir, 'dd.out');
  const dd = { argv: ['dd', `if=${input}`, `of=${out}`, 'bs=1M', 'conv=fsync', 'status=none'], setup: () => rmSync(out, { force: true }) };
  const t = timeInterleaved({ geomctl: subject, dd }, { runs });
  rmSync(out, { force: true });
  return report(name, t.geomctl, 'dd bs=1M conv=fsync', t.dd, target);
}

/** Throws unless `argv` (a geomctl read) writes exactly the bytes of `file` to stdout: a fast wrong answer must fail. */
export function checkSameBytes(argv, file, what) {
  const want = run(['md5sum', file]).split(' ')[0];
  const got = run(`${argv.map((a) => `'${a}'`).join(' ')} | md5sum`, { shell: true }).split(' ')[0];
  if (want !== got) throw new Error(`${what} returned other bytes than were written (md5 ${got}, want ${want})`);
}

/**
 * Times a geomctl read to /dev/null (`argv`) against `cat` and the bare Node
 * loop streaming `flat`, a file of the same bytes — the read benchmarks'
 * references — and reports both ratios; the target applies to cat's
 * (quality.md: ≤ 2.5× `cat`, start-up included), the loop's is for scale.
 */
export function versusStream(name, argv, flat, target, runs = 7) {
  warm(flat);
  const t = timeInterleaved(
    {
      geomctl: { argv },
      node: { argv: [process.execPath, NODE_STREAM, flat] },
      cat: { argv: ['cat', flat] },
    },
    { runs },
  );
  const ok = report(name, t.geomctl, 'cat', t.cat, target);
  report(name, t.geomctl, 'node 128 KiB loop', t.node);
  return ok;
}
