// Image locks (flush-engine.md, "Locks"): flock(2) on the image's own file
// descriptor, through fs-ext. Exclusive for images opened for writing,
// shared for reading, so two geomctl processes never interleave on one image.
// flock locks die with their process (a killed geomctl never blocks the next)
// and need no timers, which a synchronous tool could not keep running.
//
// flock belongs to the open file description: a process that opened one
// image twice would conflict with itself, so sessions open each image once.

import fs from 'node:fs';
import { fsExt } from './fs-ext.js';
import { GeomError, IoError, errnoOf } from './errors.js';
import { splitDev } from './provider/file.js';

export type LockMode = 'shared' | 'exclusive';

/** Anything with a path and, for real images, the descriptor to lock. */
export interface Lockable {
  readonly path: string;
  readonly fd?: number | undefined;
}

/** How often a waiting lock is retried. */
const POLL_MS = 50;

/** A synchronous sleep: Atomics.wait on a word nobody ever notifies. */
const sleepWord = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleepWord, 0, 0, ms);
}

/**
 * The pids holding flock locks on the file (dev, ino) according to the text
 * of /proc/locks. Lines look like
 *   "3: FLOCK  ADVISORY  WRITE 5394 fe:00:2146755 0 EOF"
 * with the device's major and minor in hex; "->" marks a process still
 * waiting for the lock, not holding it.
 */
export function parseLockHolders(procLocks: string, dev: number, ino: number): number[] {
  const { major, minor } = splitDev(dev);
  const pids: number[] = [];
  for (const line of procLocks.split('\n')) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/i.exec(line);
    if (!m) continue;
    if (parseInt(m[2]!, 16) === major && parseInt(m[3]!, 16) === minor && Number(m[4]) === ino) pids.push(Number(m[1]));
  }
  return pids;
}

/** Who holds the lock we could not get: another process first, else ourselves (a double open). */
function holderOf(fd: number): number | undefined {
  try {
    const st = fs.fstatSync(fd);
    const pids = parseLockHolders(fs.readFileSync('/proc/locks', 'latin1'), st.dev, st.ino).filter((pid) => pid > 0);
    return pids.find((pid) => pid !== process.pid) ?? pids[0];
  } catch {
    return undefined; // no /proc: say "another process"
  }
}

/**
 * Locks an image for this command, waiting up to `waitSeconds` (polling every
 * 50 ms) while another process holds a conflicting lock. Providers without a
 * descriptor (memory images) have nothing to lock. The lock lasts until the
 * descriptor is closed (or unlockImage).
 */
export function lockImage(p: Lockable, mode: LockMode, waitSeconds: number): void {
  const fd = p.fd;
  if (fd === undefined) return;
  const deadline = Date.now() + Math.max(0, waitSeconds) * 1000;
  for (;;) {
    try {
      fsExt().flockSync(fd, mode === 'exclusive' ? 'exnb' : 'shnb');
      return;
    } catch (err) {
      const errno = errnoOf(err);
      if (errno !== 'EAGAIN' && errno !== 'EWOULDBLOCK') throw new IoError(p.path, 'lock', undefined, errno);
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    sleepSync(Math.min(POLL_MS, left));
  }
  const pid = holderOf(fd);
  const who = pid === undefined ? 'another process' : `geomctl (pid ${pid})`;
  const hint = waitSeconds > 0
    ? `still locked after waiting ${waitSeconds} s; wait for it to finish or use a longer --wait`
    : 'wait for it to finish or use --wait SECONDS';
  throw new GeomError('LOCKED', `${p.path} is in use by ${who}`, hint);
}

/** Drops the lock early (closing the descriptor drops it too). */
export function unlockImage(p: Lockable): void {
  if (p.fd === undefined) return;
  try {
    fsExt().flockSync(p.fd, 'un');
  } catch (err) {
    throw new IoError(p.path, 'unlock', undefined, errnoOf(err));
  }
}
