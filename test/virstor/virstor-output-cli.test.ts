// virstor read -O and export -O that fail leave no file behind (cli.md: a
// command that fails leaves things as they were): neither an empty one nor
// the part written before the failure, which would pass for a result. A
// range refused up front leaves an existing -O file untouched. And a read
// whose stdout reader goes away is not a failure.

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, geomctl, scratch, sparseImage } from '../helpers/cli.js';

const M = 1024 * 1024;
const s = scratch('geomctl-virstor-output-');
afterAll(() => s.cleanup());

function run(args: string[]) {
  return geomctl(['-d', s.dir, ...args], { cwd: s.dir });
}

/** Sets map entry `v` of the device whose map is at offset 0 of `image`. */
function setEntry(image: string, v: number, providerNo: number, providerChunk: number): void {
  const e = Buffer.alloc(8);
  e.writeUInt16LE(1, 0);
  e.writeUInt16LE(providerNo, 2);
  e.writeUInt32LE(providerChunk, 4);
  const fd = openSync(s.path(image), 'r+');
  try {
    writeSync(fd, e, 0, 8, v * 8);
  } finally {
    closeSync(fd);
  }
}

describe('a failing virstor read or export leaves no -O file', () => {
  const data = Buffer.alloc(3 * M);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;

  beforeAll(() => {
    sparseImage(s.path('c0.img'), 16 * M);
    sparseImage(s.path('c1.img'), 8 * M);
    writeFileSync(s.path('in.bin'), data);
    for (const args of [
      ['virstor', 'label', '-m', '1M', '-s', '64M', 'vo', 'c0.img', 'c1.img'],
      ['virstor', 'write', '-i', 'in.bin', 'vo'],
    ]) {
      const r = run(args);
      expect(r.status, r.stderr).toBe(0);
    }
  });

  it('the control: a read and an export of the sound device produce their files', () => {
    let r = run(['virstor', 'read', '-l', '3M', '-O', 'ok.bin', 'vo']);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(s.path('ok.bin')).equals(data)).toBe(true);
    r = run(['virstor', 'export', '-O', 'ok.raw', 'vo']);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(s.path('ok.raw')).subarray(0, 3 * M).equals(data)).toBe(true);
  });

  it('a range past the end is refused before the -O file is touched', () => {
    let r = run(['virstor', 'read', '-o', '63M', '-l', '2M', '-O', 'new.bin', 'vo']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/past the end of virstor vo/);
    expect(existsSync(s.path('new.bin'))).toBe(false);
    writeFileSync(s.path('old.bin'), 'keep me');
    r = run(['virstor', 'read', '-o', '64M', '-l', '512', '-O', 'old.bin', 'vo']);
    expect(r.status).toBe(1);
    expect(readFileSync(s.path('old.bin'), 'utf8')).toBe('keep me');
  });

  it('a map entry found invalid half-way removes what was written so far', () => {
    // Chunks 0 and 1 read fine; chunk 2's entry names component 9 of 2 (the read finds it when it gets there).
    setEntry('c0.img', 2, 9, 0);
    for (const args of [
      ['virstor', 'read', '-l', '3M', '-O', 'part.bin', 'vo'],
      ['virstor', 'export', '-O', 'part.raw', 'vo'],
    ]) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/^geomctl: virstor vo: invalid map entry 2 points to component 9, but the device has 2/);
    }
    expect(existsSync(s.path('part.bin'))).toBe(false);
    expect(existsSync(s.path('part.raw'))).toBe(false);
    // The same read to stdout has already sent the first chunks: that much is the reader's to judge.
    const out = run(['virstor', 'read', '-l', '3M', 'vo']);
    expect(out.status).toBe(1);
    expect(out.stdoutBuffer.equals(data.subarray(0, 2 * M))).toBe(true);
  });
});

describe('a reader that goes away is not an error', () => {
  // `geomctl ... read | head`: the pipe closes under the read (EPIPE). Like a
  // stream write, that ends the command quietly with status 0.
  it('virstor read and journal read into a pipe closed early: exit 0, nothing on stderr', () => {
    sparseImage(s.path('p0.img'), 64 * M);
    sparseImage(s.path('pd.img'), 32 * M);
    sparseImage(s.path('pj.img'), 16 * M);
    expect(run(['virstor', 'label', '-m', '1M', 'pv', 'p0.img']).status).toBe(0);
    expect(run(['--maxphys', '128k', 'journal', 'label', 'pd.img', 'pj.img']).status).toBe(0);
    for (const read of [`virstor read -l 32M pv`, `journal read pd.img pj.img`]) {
      const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" -d . ${read} | head -c 100 > /dev/null`], { cwd: s.dir, encoding: 'utf8' });
      expect({ read, status: r.status, stderr: r.stderr }).toEqual({ read, status: 0, stderr: '' });
    }
  });
});
