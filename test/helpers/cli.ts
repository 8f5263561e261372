// Black-box harness: runs the built bin/geomctl (npm test builds first) and
// returns what a user would see. Also small helpers for scratch images.

import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, cpSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const BIN = resolve(__dirname, '../../bin/geomctl');

let worldReadableBin: string | undefined;

/**
 * bin/geomctl for a run as another user (root's tests run the permission
 * cases as nobody): the checkout may lie under a directory only its owner
 * enters (a clone in `mktemp -d`), so that user gets a copy of bin/ and
 * dist/ in a world-readable scratch directory — without node_modules, so
 * it also runs geomctl's fallbacks for a missing fs-ext.
 */
export function binFor(uid: number | undefined): string {
  if (uid === undefined || uid === process.getuid?.()) return BIN;
  if (!worldReadableBin) {
    const dir = mkdtempSync(join(tmpdir(), 'geomctl-bin-'));
    cpSync(resolve(BIN, '..'), join(dir, 'bin'), { recursive: true });
    cpSync(resolve(BIN, '../../dist'), join(dir, 'dist'), { recursive: true });
    chmodTree(dir);
    worldReadableBin = join(dir, 'bin', 'geomctl');
  }
  return worldReadableBin;
}

/** Makes `path` and everything below it readable (and directories enterable) by every user. */
function chmodTree(path: string): void {
  const st = statSync(path);
  chmodSync(path, st.isDirectory() ? 0o755 : 0o644);
  if (st.isDirectory()) for (const name of readdirSync(path)) chmodTree(join(path, name));
}

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
  stdoutBuffer: Buffer;
}

export function geomctl(args: string[], opts: SpawnSyncOptions & { input?: string | Buffer } = {}): CliResult {
  const r = spawnSync(process.execPath, [binFor(opts.uid), ...args], {
    encoding: 'buffer',
    maxBuffer: 1 << 30,
    ...opts,
    env: { ...process.env, NO_COLOR: '1', GEOMCTL_DEBUG: '', ...(opts.env ?? {}) },
  });
  const stdoutBuffer = r.stdout as unknown as Buffer;
  return {
    status: r.status ?? (r.signal ? 128 : -1),
    stdout: stdoutBuffer.toString('utf8'),
    stderr: (r.stderr as unknown as Buffer).toString('utf8'),
    stdoutBuffer,
  };
}

/** A fresh scratch directory; remove it with cleanup(). */
export function scratch(prefix = 'geomctl-test-'): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A sparse image of `size` bytes (truncate), optionally with some bytes written at offset 0. */
export function sparseImage(path: string, size: number, head?: Buffer): string {
  writeFileSync(path, head ?? Buffer.alloc(0));
  truncateSync(path, size);
  return path;
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Flips one byte of a file in place; a negative `offset` counts from its end (-512 + 90: inside a metadata sector's MD5). */
export function flipByte(path: string, offset: number): void {
  const at = offset < 0 ? statSync(path).size + offset : offset;
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = (b[0] ?? 0) ^ 0xff;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}
