// Image locks without fs-ext (flush-engine.md, "Locks", the fallback): lock
// files holding their owner's pid and start time, checked for liveness.
//
// A lock belongs to the file, not to the path (providers.md, "Crash safety
// across layers"): every path to one image — symlinks, hard links, binds —
// must meet the same lock. So lock files are named by the image's device and
// inode, all in one directory per machine: GEOMCTL_LOCK_DIR, else
// /tmp/geomctl-locks (created world-writable and sticky, like /tmp, so every
// user's geomctl meets every other's). Locks of this kind are seen only on
// this machine, and only by other geomctl processes.
//
// Each holder creates its own entry, exclusively (O_EXCL), named
//   <dev>-<ino>.<shared|exclusive>.<pid>.<starttime>.<boot>.<n>
// — starttime is field 22 of /proc/PID/stat, boot the start of the kernel's
// boot id, n counts this process's entries — and then lists the entries of
// the image. A live entry that conflicts with its own (an exclusive one
// conflicts with every other, shared ones with exclusive ones) makes it
// withdraw its entry and fail (or wait and try again). Two processes that
// both hold conflicting entries would each have listed the directory after
// creating their own entry and before the other's was created: impossible, so
// readers share and a writer excludes. Two that race may both withdraw; the
// one that comes back first wins.
//
// An entry is stale when its process is gone: no such pid, or a pid now
// belonging to a process that started at another time, or a boot ago.
// Stale entries are ignored and removed, so a killed geomctl never blocks the
// next. Every entry has its owner's unique name, so removing a stale one can
// never remove a live lock that took its place.

import fs from 'node:fs';
import nodePath from 'node:path';
import { errnoOf } from '../errors.js';

export type LockMode = 'shared' | 'exclusive';

/** The lock directory of this machine (GEOMCTL_LOCK_DIR overrides it, for tests and unusual systems). */
export function lockDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.GEOMCTL_LOCK_DIR || '/tmp/geomctl-locks';
}

/** The field of /proc/PID/stat that says when the process started (clock ticks since boot); undefined without /proc. */
export function startTimeOf(pid: number | 'self'): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces and ')':
  // the fields after the last ')' start with field 3, so starttime is the 20th.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

let bootId: string | undefined;
/** The first eight hex digits of this boot's id ('0' where the kernel does not say). */
function currentBoot(): string {
  if (bootId === undefined) {
    try {
      bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/[^0-9a-f]/gi, '').slice(0, 8) || '0';
    } catch {
      bootId = '0';
    }
  }
  return bootId;
}

export interface LockEntry {
  /** The entry's file name. */
  name: string;
  mode: LockMode;
  pid: number;
  start: string;
  boot: string;
}

/** Decodes an entry's name; undefined for a name that is not an entry of `key`. */
export function parseEntry(name: string, key: string): LockEntry | undefined {
  if (!name.startsWith(`${key}.`)) return undefined;
  const m = /^(shared|exclusive)\.(\d+)\.(\d+)\.([0-9a-f]+)\.\d+$/i.exec(name.slice(key.length + 1));
  if (!m) return undefined;
  return { name, mode: m[1] as LockMode, pid: Number(m[2]), start: m[3]!, boot: m[4]! };
}

/** Whether the process that made `e` still runs. */
export function isLive(e: LockEntry): boolean {
  const boot = currentBoot();
  if (e.boot !== '0' && boot !== '0' && e.boot !== boot) return false;
  try {
    process.kill(e.pid, 0);
  } catch (err) {
    // EPERM: it exists, under another user.
    if (errnoOf(err) !== 'EPERM') return false;
  }
  if (e.start === '0') return true; // made without /proc: the pid is all there is
  const start = startTimeOf(e.pid);
  return start === undefined || start === e.start;
}

/** Whether an entry of mode `theirs` keeps a lock of mode `mine` out. */
export function conflicts(mine: LockMode, theirs: LockMode): boolean {
  return mine === 'exclusive' || theirs === 'exclusive';
}

/** The live entries of `key` in `dir` (stale ones are removed on the way), except `own`. */
export function liveEntries(dir: string, key: string, own?: string): LockEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
  const live: LockEntry[] = [];
  for (const name of names) {
    if (name === own) continue;
    const e = parseEntry(name, key);
    if (!e) continue;
    if (isLive(e)) {
      live.push(e);
      continue;
    }
    try {
      fs.unlinkSync(nodePath.join(dir, name));
    } catch {
      // another user's stale entry (the sticky bit keeps it), or already gone: ignored either way
    }
  }
  return live;
}

/** Creates the lock directory: world-writable and sticky, whoever comes first. */
function ensureDirectory(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o1777 });
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return;
    throw err;
  }
  // mkdir's mode passes through the umask.
  fs.chmodSync(dir, 0o1777);
}

let entries = 0;
const ownStart = (): string => startTimeOf('self') ?? '0';

/**
 * Creates this process's entry for `key` in `dir` and checks it against the
 * others. Returns the entry's path when the lock is held, or the live
 * entries that conflict with it (the entry is withdrawn then).
 * Throws the errno of a directory or entry that cannot be made.
 */
export function tryLockFile(dir: string, key: string, mode: LockMode): { held: string } | { holders: LockEntry[] } {
  ensureDirectory(dir);
  const name = `${key}.${mode}.${process.pid}.${ownStart()}.${currentBoot()}.${entries++}`;
  const path = nodePath.join(dir, name);
  fs.closeSync(fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644));
  let holders: LockEntry[];
  try {
    holders = liveEntries(dir, key, name).filter((e) => conflicts(mode, e.mode));
  } catch (err) {
    releaseLockFile(path);
    throw err;
  }
  if (holders.length === 0) return { held: path };
  releaseLockFile(path);
  return { holders };
}

/** Removes an entry (releasing its lock); one already gone is released too. */
export function releaseLockFile(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
}
