// `journal read` and `virstor read` hand their bytes out in pieces sized for
// where they go (src/io/output-file.ts pieceSizeFor): 1 MiB to a file or a
// device such as /dev/null — an eighth of the system calls of 128 KiB — and
// 128 KiB to a pipe or a socket, which larger writes measured slower.
// Whatever the piece size, the bytes are the same: stdout a file, stdout a
// pipe and -O give exactly the device's bytes, for ranges that start and end
// off piece boundaries, cross chunks and journal ranges, and partial sectors.

import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILE_PIECE, PIPE_PIECE, pieceSizeFor } from '../../src/io/output-file.js';
import { BIN, geomctl, scratch, sparseImage } from '../helpers/cli.js';

const M = 1024 * 1024;
const s = scratch('geomctl-read-pieces-');
afterAll(() => s.cleanup());

/** Deterministic, incompressible-enough bytes. */
function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function ok(args: string[]): void {
  const r = geomctl(['-d', s.dir, ...args], { cwd: s.dir });
  expect(r.stderr.replace(/^geomctl: warning: .*\n/gm, '')).not.toMatch(/^geomctl:/m);
  expect(r.status).toBe(0);
}

/** geomctl's stdout when it is a regular file (1 MiB pieces). */
function readToFile(args: string[]): Buffer {
  const out = s.path('stdout.bin');
  const fd = openSync(out, 'w');
  try {
    const r = spawnSync(process.execPath, [BIN, '-d', s.dir, ...args], { cwd: s.dir, stdio: ['ignore', fd, 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    expect(r.status).toBe(0);
  } finally {
    closeSync(fd);
  }
  return readFileSync(out);
}

/** geomctl's stdout through a pipe (128 KiB pieces). */
function readToPipe(args: string[]): Buffer {
  const r = geomctl(['-d', s.dir, ...args], { cwd: s.dir });
  expect(r.status).toBe(0);
  return r.stdoutBuffer;
}

function readToO(args: string[]): Buffer {
  ok([...args, '-O', s.path('o.bin'), '-f']);
  return readFileSync(s.path('o.bin'));
}

/** Ranges [offset, length] that start and end on and off 1 MiB and 128 KiB boundaries, some with partial sectors. */
const RANGES: [number, number][] = [
  [0, 6 * M],
  [M - 512, 2 * M + 1024],
  [128 * 1024 + 512, 3 * M - 512],
  [777, 2 * M + 333],
  [5 * M + 1, M - 2],
];

describe('pieceSizeFor', () => {
  it('1 MiB for a regular file and for /dev/null, 128 KiB for a pipe and for a closed descriptor', () => {
    expect(FILE_PIECE).toBe(M);
    expect(PIPE_PIECE).toBe(128 * 1024);
    const file = openSync(s.path('piece.bin'), 'w');
    const nul = openSync('/dev/null', 'w');
    try {
      expect(pieceSizeFor(file)).toBe(FILE_PIECE);
      expect(pieceSizeFor(nul)).toBe(FILE_PIECE);
    } finally {
      closeSync(file);
      closeSync(nul);
    }
    expect(spawnSync('mkfifo', [s.path('fifo')]).status).toBe(0);
    // O_RDWR: a FIFO opened for both ends does not wait for a reader (Linux).
    const fifo = openSync(s.path('fifo'), 'r+');
    try {
      expect(pieceSizeFor(fifo)).toBe(PIPE_PIECE);
    } finally {
      closeSync(fifo);
    }
    expect(pieceSizeFor(987_654)).toBe(PIPE_PIECE);
  });
});

describe('read gives the same bytes in every piece size', { timeout: 120_000 }, () => {
  const journalData = pattern(6 * M, 7);
  const virstorData = Buffer.alloc(12 * M);

  beforeAll(() => {
    // A journal whose first half went to the data area and whose second half
    // (over a stretch of the first) sits in a finished, un-copied journal.
    const img = sparseImage(s.path('j.img'), 6 * M + 120 * M + 512);
    ok(['journal', 'label', '-s', '120M', img]);
    writeFileSync(s.path('a.bin'), journalData.subarray(0, 4 * M));
    writeFileSync(s.path('b.bin'), journalData.subarray(3 * M - 4096, 6 * M));
    ok(['journal', 'write', '--sync', '-i', s.path('a.bin'), img]);
    ok(['journal', 'write', '-o', String(3 * M - 4096), '-i', s.path('b.bin'), img]);
    // A virstor device with 1 MiB chunks: written chunks, unwritten ones between, over two components.
    sparseImage(s.path('c0.img'), 8 * M);
    sparseImage(s.path('c1.img'), 8 * M);
    ok(['virstor', 'label', '-m', '1M', '-s', '64M', 'rp', s.path('c0.img'), s.path('c1.img')]);
    pattern(5 * M + 512, 11).copy(virstorData, 0);
    pattern(5 * M, 13).copy(virstorData, 7 * M);
    writeFileSync(s.path('v0.bin'), virstorData.subarray(0, 5 * M + 512));
    writeFileSync(s.path('v1.bin'), virstorData.subarray(7 * M, 12 * M));
    ok(['virstor', 'write', '-i', s.path('v0.bin'), 'rp']);
    ok(['virstor', 'write', '-o', String(7 * M), '-i', s.path('v1.bin'), 'rp']);
  });

  for (const [offset, length] of RANGES) {
    it(`journal read -o ${offset} -l ${length}`, () => {
      const args = ['journal', 'read', '-o', String(offset), '-l', String(length), s.path('j.img')];
      const want = journalData.subarray(offset, offset + length);
      expect(readToFile(args).equals(want)).toBe(true);
      expect(readToPipe(args).equals(want)).toBe(true);
      expect(readToO(args).equals(want)).toBe(true);
    });

    it(`virstor read -o ${offset} -l ${length}`, () => {
      const args = ['virstor', 'read', '-o', String(offset), '-l', String(length), 'rp'];
      const want = virstorData.subarray(offset, offset + length);
      expect(readToFile(args).equals(want)).toBe(true);
      expect(readToPipe(args).equals(want)).toBe(true);
      expect(readToO(args).equals(want)).toBe(true);
    });
  }

  it('the whole devices, to a file', () => {
    expect(readToFile(['journal', 'read', s.path('j.img')]).equals(journalData)).toBe(true);
    expect(readToFile(['virstor', 'read', '-l', '12M', 'rp']).equals(virstorData)).toBe(true);
  });
});
