// Image locks between processes: flock through fs-ext, LOCKED with the
// holder's pid, --wait, and locks that vanish with a killed process.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GeomError } from '../src/errors.js';
import { lockImage, parseLockHolders, unlockImage } from '../src/lock.js';
import { openImage, type FileProvider } from '../src/provider/file.js';
import { MemoryProvider } from '../src/provider/memory.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'geomctl-lock-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const open: FileProvider[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
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
  const script = `
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

describe('parseLockHolders', () => {
  const text = [
    '1: POSIX  ADVISORY  WRITE 100 fe:00:77 0 EOF',
    '2: FLOCK  ADVISORY  WRITE 200 fe:00:77 0 EOF',
    '2: -> FLOCK  ADVISORY  WRITE 300 fe:00:77 0 EOF',
    '3: FLOCK  ADVISORY  READ  400 fe:00:78 0 EOF',
    '4: FLOCK  ADVISORY  READ  500 08:11:77 0 EOF',
    '5: FLOCK  ADVISORY  READ  600 fe:00:77 0 EOF',
    '',
  ].join('\n');

  it('finds the FLOCK holders of one device and inode, not waiters, POSIX locks or other files', () => {
    expect(parseLockHolders(text, 0xfe00, 77)).toEqual([200, 600]);
    expect(parseLockHolders(text, (8 << 8) | 0x11, 77)).toEqual([500]);
    expect(parseLockHolders(text, 0xfe00, 79)).toEqual([]);
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
    expect(err.message).toBe(`${p} is in use by geomctl (pid ${process.pid})`);
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
