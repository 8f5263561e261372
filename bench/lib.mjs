// Shared helpers for the benchmarks: run a command several times, take the
// median wall time, and print geomctl's time as a ratio to a reference measured
// in the same run (quality.md, "Performance": a time alone means little on a
// shared machine).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = join(ROOT, 'bin', 'geomctl');

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Runs argv `runs` times (after one warm-up) and returns the median seconds. */
export function timeCommand(argv, { runs = 7, shell = false, env = process.env, setup } = {}) {
  const times = [];
  for (let i = 0; i <= runs; i++) {
    if (setup) setup();
    const start = process.hrtime.bigint();
    const r = shell
      ? spawnSync('/bin/sh', ['-c', argv], { stdio: ['ignore', 'ignore', 'pipe'], env })
      : spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (r.status !== 0) throw new Error(`${Array.isArray(argv) ? argv.join(' ') : argv} failed: ${r.stderr}`);
    if (i > 0) times.push(seconds);
  }
  return median(times);
}

/** Prints one result line and returns whether the target was met. */
export function report(name, seconds, refName, refSeconds, target) {
  const ratio = seconds / refSeconds;
  const ok = target === undefined || ratio <= target;
  const verdict = target === undefined ? '' : ok ? ` (target ≤ ${target}×: met)` : ` (target ≤ ${target}×: MISSED)`;
  console.log(`${name}: ${seconds.toFixed(3)} s vs ${refName} ${refSeconds.toFixed(3)} s = ${ratio.toFixed(2)}×${verdict}`);
  return ok;
}
