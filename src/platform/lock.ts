// Image locks (flush-engine.md, "Locks"): exclusive for images opened for
// writing, shared for reading, so two geomctl processes never interleave on
// one image. Two methods, one chosen per process:
//
// - flock(2) on the image's own descriptor, through fs-ext (src/platform/fs-ext.ts):
//   the kernel keeps the lock, drops it with its process, and shares it with
//   other programs and (on NFS) other machines;
// - without fs-ext, lock files keyed by the image's device and inode, with a
//   liveness check (src/platform/lock-files.ts).
//
// Both need no timers, which a synchronous tool could not keep running, and
// both vanish with a killed geomctl. The two also see each other: flock
// holders check for live lock files, and lock-file holders read flock
// holders from /proc/locks, so a geomctl whose fs-ext does not load (another
// Node.js) and one whose fs-ext does never write one image at the same time.
//
// flock belongs to the open file description (and a lock file to its entry):
// a process that locked one image twice would conflict with itself, so
// sessions open each image once.

import fs from 'node:fs';
import { fsExt } from './fs-ext.js';
import { GeomError, IoError, errnoOf } from '../errors.js';
import { conflicts, liveEntries, lockDirectory, releaseLockFile, tryLockFile, type LockMode } from './lock-files.js';
import { splitDev } from '../provider/file.js';
import { sleepSync } from '../util/sleep.js';
import { identityFileName } from '../util/identity.js';

export type { LockMode } from './lock-files.js';

/** Anything with a path and, for real images, the descriptor to lock. */
export interface Lockable {
  readonly path: string;
  readonly fd?: number | undefined;
  /** Runs `release` when the image is closed (a lock file must go with its descriptor, as a flock does). */
  onClose?(release: () => void): void;
}

/** How often a waiting lock is retried. */
const POLL_MS = 50;


export interface FlockHolder {
  pid: number;
  mode: LockMode;
}

/**
 * The flock locks on the file (dev, ino) according to the text of
 * /proc/locks. Lines look like
 *   "3: FLOCK  ADVISORY  WRITE 5394 fe:00:2146755 0 EOF"
 * with the device's major and minor in hex; "->" marks a process still
 * waiting for the lock, not holding it.
 */
export function parseFlockHolders(procLocks: string, dev: number, ino: number): FlockHolder[] {
  const { major, minor } = splitDev(dev);
  const holders: FlockHolder[] = [];
  for (const line of procLocks.split('\n')) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+(READ|WRITE)\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/i.exec(line);
    if (!m) continue;
    if (parseInt(m[3]!, 16) === major && parseInt(m[4]!, 16) === minor && Number(m[5]) === ino) {
      holders.push({ pid: Number(m[2]), mode: m[1]!.toUpperCase() === 'WRITE' ? 'exclusive' : 'shared' });
    }
  }
  return holders;
}

/** The pids holding flock locks on the file (dev, ino), from /proc/locks. */
export function parseLockHolders(procLocks: string, dev: number, ino: number): number[] {
  return parseFlockHolders(procLocks, dev, ino).map((h) => h.pid);
}

/** The flock holders of the file behind `fd` (none where /proc/locks cannot be read). */
function flockHolders(st: fs.Stats): FlockHolder[] {
  try {
    return parseFlockHolders(fs.readFileSync('/proc/locks', 'latin1'), st.dev, st.ino).filter((h) => h.pid > 0);
  } catch {
    return [];
  }
}

/**
 * What a lock holder is, for the message: its command name (/proc/PID/comm:
 * "geomctl", or "flock", "qemu-img", ... for another program) and pid, or
 * "another process" when nothing names it.
 */
export function describeHolder(pid: number | undefined, procRoot = '/proc'): string {
  if (pid === undefined) return 'another process';
  let comm = '';
  try {
    comm = fs.readFileSync(`${procRoot}/${pid}/comm`, 'utf8').replace(/\n$/, '');
  } catch {
    // gone meanwhile, or no /proc
  }
  return comm ? `${comm} (pid ${pid})` : `another process (pid ${pid})`;
}

/** One attempt: undefined when the lock is held now, else the pid holding it (another process first), if known. */
type Attempt = { held: true } | { held: false; holder: number | undefined };

const otherFirst = (pids: number[]): number | undefined => pids.find((pid) => pid !== process.pid) ?? pids[0];

/** flock on the descriptor, then no live lock file may conflict (a geomctl without fs-ext). */
function tryFlock(flock: NonNullable<ReturnType<typeof fsExt>>, p: Lockable, fd: number, mode: LockMode): Attempt {
  try {
    flock.flockSync(fd, mode === 'exclusive' ? 'exnb' : 'shnb');
  } catch (err) {
    const errno = errnoOf(err);
    if (errno !== 'EAGAIN' && errno !== 'EWOULDBLOCK') throw new IoError(p.path, 'lock', undefined, errno);
    return { held: false, holder: otherFirst(flockHolders(fs.fstatSync(fd)).map((h) => h.pid)) };
  }
  let others: number[];
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    others = liveEntries(lockDirectory(), identityFileName(st)).filter((e) => conflicts(mode, e.mode)).map((e) => e.pid);
  } catch {
    others = []; // no lock directory to read: no geomctl without fs-ext has locked through it
  }
  if (others.length === 0) return { held: true };
  flock.flockSync(fd, 'un');
  return { held: false, holder: otherFirst(others) };
}

/** The entries of lock files this process holds, by image: released on close, and at exit at the latest. */
const lockFiles = new Map<Lockable, string>();
process.on('exit', () => {
  for (const path of lockFiles.values()) {
    try {
      releaseLockFile(path);
    } catch {
      // exiting anyway; a stale entry is taken over by the next geomctl
    }
  }
});

/** A lock file, then no flock holder may conflict (a geomctl with fs-ext, or another program). */
function tryLockFileFor(p: Lockable, fd: number, mode: LockMode): Attempt {
  const st = fs.fstatSync(fd, { bigint: true });
  const dir = lockDirectory();
  let r: ReturnType<typeof tryLockFile>;
  try {
    r = tryLockFile(dir, identityFileName(st), mode);
  } catch (err) {
    throw new GeomError('IO', `${p.path}: cannot make its lock file in ${dir} (${errnoOf(err)})`, 'make that directory writable, or set GEOMCTL_LOCK_DIR to one that is (the same for every geomctl on this machine)');
  }
  if (!('held' in r)) return { held: false, holder: otherFirst(r.holders.map((e) => e.pid)) };
  const flocks = flockHolders(fs.fstatSync(fd)).filter((h) => conflicts(mode, h.mode));
  if (flocks.length > 0) {
    releaseLockFile(r.held);
    return { held: false, holder: otherFirst(flocks.map((h) => h.pid)) };
  }
  lockFiles.set(p, r.held);
  p.onClose?.(() => release(p));
  return { held: true };
}

/**
 * Locks an image for this command, waiting up to `waitSeconds` (polling every
 * 50 ms) while another process holds a conflicting lock. Providers without a
 * descriptor (memory images) have nothing to lock. The lock lasts until the
 * image is closed (or unlockImage).
 */
export function lockImage(p: Lockable, mode: LockMode, waitSeconds: number): void {
  const fd = p.fd;
  if (fd === undefined) return;
  const flock = fsExt();
  const deadline = Date.now() + Math.max(0, waitSeconds) * 1000;
  for (;;) {
    const attempt = flock ? tryFlock(flock, p, fd, mode) : tryLockFileFor(p, fd, mode);
    if (attempt.held) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      const hint = waitSeconds > 0
        ? `still locked after waiting ${waitSeconds} s; wait for it to finish or use a longer --wait`
        : 'wait for it to finish or use --wait SECONDS';
      throw new GeomError('LOCKED', `${p.path} is in use by ${describeHolder(attempt.holder)}`, hint);
    }
    sleepSync(Math.min(POLL_MS, left));
  }
}

function release(p: Lockable): void {
  const entry = lockFiles.get(p);
  if (entry === undefined) return;
  lockFiles.delete(p);
  try {
    releaseLockFile(entry);
  } catch (err) {
    throw new IoError(p.path, 'unlock', undefined, errnoOf(err));
  }
}

/** Drops the lock early (closing the image drops it too). */
export function unlockImage(p: Lockable): void {
  if (p.fd === undefined) return;
  const flock = fsExt();
  if (!flock) {
    release(p);
    return;
  }
  try {
    flock.flockSync(p.fd, 'un');
  } catch (err) {
    throw new IoError(p.path, 'unlock', undefined, errnoOf(err));
  }
}

/** How this process locks images, for `geomctl --version -v`. */
export function lockMethod(): string {
  return fsExt() ? 'flock(2) through fs-ext' : `lock files in ${lockDirectory()} (by device and inode)`;
}
