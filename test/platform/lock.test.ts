// Image locks between processes: flock through fs-ext, LOCKED naming the
// holder (its command name and pid), --wait, and locks that vanish with a
// killed process; and the same for lock files, the method used where fs-ext
// is missing or does not load (GEOMCTL_NO_NATIVE=1 here), which flock
// holders and lock-file holders see alike.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GeomError } from '../../src/errors.js';
import { describeHolder, lockImage, parseFlockHolders, unlockImage } from '../../src/platform/lock.js';
import { isLive, liveEntries, parseEntry, startTimeOf, tryLockFile } from '../../src/platform/lock-files.js';
import { geomctl, BIN } from '../helpers/cli.js';
import { tool } from '../helpers/tools.js';

const flock = tool('flock');
import { openImage, type FileProvider } from '../../src/provider/file.js';
import { MemoryProvider } from '../sim/memory.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'geomctl-lock-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const open: FileProvider[] = [];
const children: ChildProcess[] = [];
const groups: ChildProcess[] = [];
afterEach(() => {
  for (const g of groups.splice(0)) process.kill(-g.pid!, 'SIGKILL');
  for (const p of open.splice(0)) p.close();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

let imageCount = 0;
function image(): string {
  const p = path.join(dir, `img${imageCount++}.img`);
  fs.writeFileSync(p, Buffer.alloc(4096));
  return p;
}
function openRw(p: string): FileProvider {
  const prov = openImage(p, { write: true });
  open.push(prov);
  return prov;
}

function lockError(fn: () => void): GeomError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GeomError);
    return err as GeomError;
  }
  throw new Error('expected LOCKED');
}

/**
 * Starts a Node process that flocks `file` ('ex' or 'sh') and holds it for
 * `holdMs` (forever when undefined); resolves once the lock is taken.
 */
async function holder(file: string, mode: 'ex' | 'sh', holdMs?: number): Promise<ChildProcess> {
  // Named as geomctl names itself (bin/geomctl sets process.title).
  const script = `
    process.title = 'geomctl';
    const fsExt = require('fs-ext');
    const fd = require('fs').openSync(process.argv[1], 'r');
    fsExt.flockSync(fd, process.argv[2]);
    process.stdout.write('locked\\n');
    const hold = Number(process.argv[3]);
    setTimeout(() => process.exit(0), hold >= 0 ? hold : 2 ** 31 - 1);
  `;
  const child = spawn(process.execPath, ['-e', script, file, mode, String(holdMs ?? -1)], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    child.on('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
  });
  return child;
}

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.on('exit', () => resolve())));

describe('parseFlockHolders', () => {
  const text = [
    '1: POSIX  ADVISORY  WRITE 100 fe:00:77 0 EOF',
    '2: FLOCK  ADVISORY  WRITE 200 fe:00:77 0 EOF',
    '2: -> FLOCK  ADVISORY  WRITE 300 fe:00:77 0 EOF',
    '3: FLOCK  ADVISORY  READ  400 fe:00:78 0 EOF',
    '4: FLOCK  ADVISORY  READ  500 08:11:77 0 EOF',
    '5: FLOCK  ADVISORY  READ  600 fe:00:77 0 EOF',
    '',
  ].join('\n');

  it('finds the FLOCK holders of one device and inode and their modes, not waiters, POSIX locks or other files', () => {
    expect(parseFlockHolders(text, 0xfe00, 77)).toEqual([{ pid: 200, mode: 'exclusive' }, { pid: 600, mode: 'shared' }]);
    expect(parseFlockHolders(text, (8 << 8) | 0x11, 77)).toEqual([{ pid: 500, mode: 'shared' }]);
    expect(parseFlockHolders(text, 0xfe00, 79)).toEqual([]);
  });
});

describe('lockImage within one process', () => {
  it('shared locks coexist; an exclusive one conflicts (flock is per open file description)', () => {
    const p = image();
    const a = openRw(p);
    const b = openRw(p);
    lockImage(a, 'shared', 0);
    lockImage(b, 'shared', 0);
    const err = lockError(() => lockImage(openRw(p), 'exclusive', 0));
    expect(err.code).toBe('LOCKED');
    // Only this process holds it: the message names our own pid (a double open).
    expect(err.message).toBe(`${p} is in use by ${fs.readFileSync('/proc/self/comm', 'utf8').trim()} (pid ${process.pid})`);
    expect(err.hint).toBe('wait for it to finish or use --wait SECONDS');
  });

  it('unlockImage and close release the lock', () => {
    const p = image();
    const a = openRw(p);
    lockImage(a, 'exclusive', 0);
    unlockImage(a);
    const b = openRw(p);
    lockImage(b, 'exclusive', 0);
    b.close();
    lockImage(openRw(p), 'exclusive', 0);
  });

  it('memory images have nothing to lock', () => {
    const m = new MemoryProvider('m.img', Buffer.alloc(512));
    lockImage(m, 'exclusive', 0);
    lockImage(m, 'exclusive', 0);
    unlockImage(m);
  });
});

describe('lockImage against another process', () => {
  it('fails at once with LOCKED naming the holder\'s pid, for exclusive and shared requests', async () => {
    const p = image();
    const child = await holder(p, 'ex');
    for (const mode of ['exclusive', 'shared'] as const) {
      const started = Date.now();
      const err = lockError(() => lockImage(openRw(p), mode, 0));
      expect(Date.now() - started).toBeLessThan(1000);
      expect(err.code).toBe('LOCKED');
      expect(err.exitStatus).toBe(1);
      expect(err.message).toBe(`${p} is in use by geomctl (pid ${child.pid})`);
      expect(err.line).toBe(`${p} is in use by geomctl (pid ${child.pid}); wait for it to finish or use --wait SECONDS`);
    }
  });

  it('a shared holder lets readers in and keeps writers out', async () => {
    const p = image();
    const child = await holder(p, 'sh');
    const reader = openImage(p, { write: false });
    open.push(reader);
    lockImage(reader, 'shared', 0);
    expect(lockError(() => lockImage(openRw(p), 'exclusive', 0)).message).toBe(`${p} is in use by geomctl (pid ${child.pid})`);
  });

  it('--wait gets the lock once the holder finishes', async () => {
    const p = image();
    const child = await holder(p, 'ex', 400);
    const started = Date.now();
    lockImage(openRw(p), 'exclusive', 10);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThan(100);
    expect(waited).toBeLessThan(5000);
    await exited(child);
  });

  it('--wait gives up after the given time', async () => {
    const p = image();
    const child = await holder(p, 'ex');
    const started = Date.now();
    const err = lockError(() => lockImage(openRw(p), 'exclusive', 0.3));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(err.message).toBe(`${p} is in use by geomctl (pid ${child.pid})`);
    expect(err.hint).toBe('still locked after waiting 0.3 s; wait for it to finish or use a longer --wait');
  });

  it('the lock vanishes when its holder is killed with SIGKILL', async () => {
    const p = image();
    const child = await holder(p, 'ex');
    expect(lockError(() => lockImage(openRw(p), 'exclusive', 0)).code).toBe('LOCKED');
    child.kill('SIGKILL');
    await exited(child);
    expect(child.signalCode).toBe('SIGKILL');
    lockImage(openRw(p), 'exclusive', 0);
  });
});

/** Resolves once `pid` holds a flock on `file` (per /proc/locks). */
async function flockHeldBy(file: string, pid: number): Promise<void> {
  const st = fs.statSync(file);
  for (let i = 0; i < 200; i++) {
    if (parseFlockHolders(fs.readFileSync('/proc/locks', 'latin1'), st.dev, st.ino).some((h) => h.pid === pid)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${pid} never locked ${file}`);
}

/**
 * flock(1) from util-linux holding `file` exclusively while it runs `sleep`:
 * another program, not geomctl. In a process group of its own, killed whole
 * after the test (the sleep shares the lock).
 */
async function flockProgram(file: string): Promise<ChildProcess> {
  const child = spawn(flock!, ['-x', file, 'sleep', '30'], { stdio: 'ignore', detached: true });
  groups.push(child);
  await flockHeldBy(file, child.pid!);
  return child;
}

describe('the holder named as what it is (/proc/PID/comm)', () => {
  it('names another program by its command name, or says "another process"', () => {
    expect(describeHolder(process.pid)).toBe(`${fs.readFileSync('/proc/self/comm', 'utf8').trim()} (pid ${process.pid})`);
    expect(describeHolder(process.pid, path.join(dir, 'no-proc'))).toBe(`another process (pid ${process.pid})`);
    expect(describeHolder(undefined)).toBe('another process');
  });

  it.skipIf(!flock)('an image flocked by flock(1) is "in use by flock (pid N)", with fs-ext and without', async () => {
    const s = image();
    const child = await flockProgram(s);
    const before = fs.readFileSync(s);
    for (const env of [{}, { GEOMCTL_NO_NATIVE: '1', GEOMCTL_LOCK_DIR: path.join(dir, 'locks') }]) {
      const r = geomctl(['dump', s], { env });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`geomctl: ${s} is in use by flock (pid ${child.pid}); wait for it to finish or use --wait SECONDS\n`);
    }
    expect(fs.readFileSync(s).equals(before)).toBe(true);
  });
});

describe('lock files (src/platform/lock-files.ts)', () => {
  let lockDir: string;
  let n = 0;
  beforeAll(() => {
    lockDir = path.join(dir, 'unit-locks');
  });
  const key = () => `1-${1000 + n++}`;
  const ourStart = () => startTimeOf('self')!;
  const boot = () => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/-/g, '').slice(0, 8);

  it('names entries by device and inode, mode, pid, start time and boot; other names are not entries', () => {
    expect(parseEntry('8-12.shared.77.1234.abcdef01.0', '8-12')).toEqual({ name: '8-12.shared.77.1234.abcdef01.0', mode: 'shared', pid: 77, start: '1234', boot: 'abcdef01' });
    expect(parseEntry('8-123.shared.77.1234.abcdef01.0', '8-12')).toBeUndefined();
    expect(parseEntry('8-12.weird.77.1234.abcdef01.0', '8-12')).toBeUndefined();
  });

  it('an entry is live while its process runs: same pid, same start time, same boot', async () => {
    const me = { name: 'x', mode: 'shared' as const, pid: process.pid, start: ourStart(), boot: boot() };
    expect(isLive(me)).toBe(true);
    expect(isLive({ ...me, start: String(Number(me.start) + 1) })).toBe(false); // a pid reused
    expect(isLive({ ...me, boot: boot() === '00000000' ? '11111111' : '00000000' })).toBe(false); // a boot ago
    const gone = spawn('true');
    await exited(gone);
    expect(isLive({ ...me, pid: gone.pid! })).toBe(false);
  });

  it('readers share; a writer excludes readers and writers', () => {
    const k = key();
    const r1 = tryLockFile(lockDir, k, 'shared');
    const r2 = tryLockFile(lockDir, k, 'shared');
    expect('held' in r1 && 'held' in r2).toBe(true);
    const w = tryLockFile(lockDir, k, 'exclusive');
    expect('holders' in w && w.holders.map((e) => e.mode)).toEqual(['shared', 'shared']);
    for (const r of [r1, r2]) if ('held' in r) fs.unlinkSync(r.held);
    const w2 = tryLockFile(lockDir, k, 'exclusive');
    expect('held' in w2).toBe(true);
    for (const mode of ['shared', 'exclusive'] as const) {
      const refused = tryLockFile(lockDir, k, mode);
      expect('holders' in refused && refused.holders.map((e) => e.pid)).toEqual([process.pid]);
    }
    // The refused ones withdrew their entries: only the writer's is left.
    expect(liveEntries(lockDir, k).length).toBe(1);
  });

  it('another live process\'s entry keeps a writer out; once it is gone its entry is taken over and removed', async () => {
    const k = key();
    const other = spawn('sleep', ['30']);
    children.push(other);
    await new Promise((r) => setTimeout(r, 50));
    const name = `${k}.shared.${other.pid}.${startTimeOf(other.pid!)}.${boot()}.0`;
    fs.writeFileSync(path.join(lockDir, name), '');
    const refused = tryLockFile(lockDir, k, 'exclusive');
    expect('holders' in refused && refused.holders.map((e) => e.pid)).toEqual([other.pid]);
    expect('held' in tryLockFile(lockDir, k, 'shared')).toBe(true);
    other.kill('SIGKILL');
    await exited(other);
    const taken = tryLockFile(lockDir, k, 'exclusive');
    expect('holders' in taken && taken.holders.map((e) => e.pid)).toEqual([process.pid]); // only our shared one is left
    expect(fs.existsSync(path.join(lockDir, name))).toBe(false);
  });

  it('the lock directory is made world-writable and sticky, like /tmp', () => {
    expect(fs.statSync(lockDir).mode & 0o7777).toBe(0o1777);
  });
});

describe('geomctl without fs-ext: lock files, across processes', () => {
  let lockDir: string;
  let img: string;
  const noNative = () => ({ GEOMCTL_NO_NATIVE: '1', GEOMCTL_LOCK_DIR: lockDir });
  beforeAll(() => {
    lockDir = path.join(dir, 'cli-locks');
    img = path.join(dir, 'journaled.img');
    fs.closeSync(fs.openSync(img, 'w'));
    fs.truncateSync(img, 256 << 20);
    expect(geomctl(['journal', 'label', '-s', '100M', img], { env: noNative() }).status).toBe(0);
  });
  const entries = () => (fs.existsSync(lockDir) ? fs.readdirSync(lockDir) : []);

  /** A `journal write` that holds its exclusive lock while it waits for stdin. */
  async function writer(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
    const child = spawn(process.execPath, [BIN, 'journal', 'write', img], { env: { ...process.env, ...env }, stdio: ['pipe', 'ignore', 'inherit'] });
    children.push(child);
    for (let i = 0; i < 400 && !entries().some((e) => e.includes(`.exclusive.${child.pid}.`)); i++) await new Promise((r) => setTimeout(r, 25));
    expect(entries().some((e) => e.includes(`.exclusive.${child.pid}.`))).toBe(true);
    return child;
  }

  it('a writer keeps out writers and readers by every path to the image, and geomctl with fs-ext too', async () => {
    const link = path.join(dir, 'hardlink.img');
    const symlink = path.join(dir, 'symlink.img');
    fs.linkSync(img, link);
    fs.symlinkSync(img, symlink);
    const holding = await writer(noNative());
    const before = fs.readFileSync(img);
    const attempts: [string[], NodeJS.ProcessEnv][] = [
      [['journal', 'write', '-i', '/dev/null', img], noNative()],
      [['journal', 'write', '-i', '/dev/null', link], noNative()],
      [['journal', 'read', symlink], noNative()],
      [['journal', 'write', '-i', '/dev/null', img], { GEOMCTL_LOCK_DIR: lockDir }], // with fs-ext: flock, and a look at the lock files
    ];
    for (const [args, env] of attempts) {
      const r = geomctl(args, { env });
      expect(r.stderr).toBe(`geomctl: ${args.at(-1)} is in use by geomctl (pid ${holding.pid}); wait for it to finish or use --wait SECONDS\n`);
      expect(r.status).toBe(1);
    }
    expect(fs.readFileSync(img).equals(before)).toBe(true);
    holding.stdin!.end(Buffer.alloc(4096, 7));
    await exited(holding);
    expect(holding.exitCode).toBe(0);
    expect(entries()).toEqual([]);
    expect(geomctl(['journal', 'read', link], { env: noNative() }).stdoutBuffer.subarray(0, 4096).equals(Buffer.alloc(4096, 7))).toBe(true);
  });

  it('an image flocked by geomctl with fs-ext keeps out geomctl without it', async () => {
    const holding = spawn(process.execPath, [BIN, 'journal', 'write', img], { stdio: ['pipe', 'ignore', 'inherit'] });
    children.push(holding);
    await flockHeldBy(img, holding.pid!);
    const r = geomctl(['journal', 'write', '-i', '/dev/null', img], { env: noNative() });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`is in use by geomctl (pid ${holding.pid})`);
    holding.stdin!.end();
    await exited(holding);
  });

  it('--version -v says which lock and hole methods are in use', () => {
    const native = geomctl(['--version', '-v']);
    expect(native.status).toBe(0);
    expect(native.stdout).toMatch(/^native: fs-ext \d+\.\d+\.\d+$/m);
    expect(native.stdout).toContain('locks: flock(2) through fs-ext\n');
    expect(native.stdout).toContain('holes: lseek(2) SEEK_DATA/SEEK_HOLE through fs-ext\n');
    const without = geomctl(['--verbose', '--version'], { env: noNative() });
    expect(without.stdout).toContain('native: none; turned off by GEOMCTL_NO_NATIVE=1\n');
    expect(without.stdout).toContain(`locks: lock files in ${lockDir} (by device and inode)\n`);
    expect(without.stdout).toContain('holes: found by reading the images\n');
  });

  it('a lock directory that cannot be made: one line naming it and what to do, image untouched', () => {
    const notDir = path.join(dir, 'a-file');
    fs.writeFileSync(notDir, '');
    const before = fs.readFileSync(img);
    const r = geomctl(['journal', 'write', '-i', '/dev/null', img], { env: { GEOMCTL_NO_NATIVE: '1', GEOMCTL_LOCK_DIR: path.join(notDir, 'locks') } });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`geomctl: ${img}: cannot make its lock file in ${notDir}/locks (ENOTDIR); make that directory writable, or set GEOMCTL_LOCK_DIR to one that is (the same for every geomctl on this machine)\n`);
    expect(fs.readFileSync(img).equals(before)).toBe(true);
  });

  it('the lock file of a killed geomctl is stale: the next one takes it over', async () => {
    const holding = await writer(noNative());
    holding.kill('SIGKILL');
    await exited(holding);
    expect(entries().length).toBe(1);
    const r = geomctl(['journal', 'write', '-i', '/dev/null', img], { env: noNative() });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(entries()).toEqual([]);
  });
});
