// src/io/transfer.ts over an in-memory BlockProvider: read hands every byte
// of any range (partial sectors at either end) in order, in pieces aligned
// to the piece size; export keeps the provider's holes and zero sectors as
// holes, reads no hole, reports progress, and leaves no file when it fails;
// write puts a file at an offset in requests, completes a last partial
// sector with the provider's bytes, and refills a lent buffer only after
// the provider settled it.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockProvider, ExtentRun, Lending, WriteOpts } from '../../src/provider/block.js';
import { exportToFile, readRange, readToFile, writeFromFile, type Sink } from '../../src/io/transfer.js';

const SS = 512;

type TestProvider = BlockProvider & { reads: [number, number][]; writes: [number, number, WriteOpts][]; failAt?: number };

/** A provider over a buffer; `holes` are ranges it reports as holes (and that must read as zeros). */
function memoryProvider(bytes: Buffer, holes: [number, number][] = [], lending?: Lending): TestProvider {
  const reads: [number, number][] = [];
  const writes: [number, number, WriteOpts][] = [];
  const p: TestProvider = {
    name: 'mem',
    mediaSize: bytes.length,
    sectorSize: SS,
    writable: true,
    reads,
    writes,
    ...(lending ? { lending } : {}),
    read(offset, target) {
      if (offset % SS !== 0 || target.length % SS !== 0) throw new Error(`unaligned read of ${target.length} at ${offset}`);
      if (p.failAt !== undefined && offset <= p.failAt && p.failAt < offset + target.length) throw new Error('EIO from the provider');
      reads.push([offset, target.length]);
      bytes.copy(target, 0, offset, offset + target.length);
    },
    write(offset, data, opts = {}) {
      if (offset % SS !== 0 || data.length % SS !== 0) throw new Error(`unaligned write of ${data.length} at ${offset}`);
      writes.push([offset, data.length, opts]);
      data.copy(bytes, offset);
    },
    zero: () => {},
    flush: () => {},
    extents(offset, length) {
      const out: ExtentRun[] = [];
      const push = (len: number, hole: boolean): void => {
        if (len > 0) out.push({ length: len, hole });
      };
      let at = offset;
      for (const [s, e] of holes) {
        const hs = Math.max(s, offset);
        const he = Math.min(e, offset + length);
        if (he <= hs) continue;
        push(hs - at, false);
        push(he - hs, true);
        at = he;
      }
      push(offset + length - at, false);
      return out;
    },
    close: () => {},
  };
  return p;
}

function pattern(length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + 3) % 251;
  return b;
}

function collect(pieceSize: number): { sink: Sink; pieces: [number, number][]; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const pieces: [number, number][] = [];
  return {
    sink: {
      pieceSize,
      write(data, at) {
        pieces.push([at, data.length]);
        parts.push(Buffer.from(data));
      },
    },
    pieces,
    bytes: () => Buffer.concat(parts),
  };
}

describe('readRange', () => {
  it('hands every byte of ranges with partial sectors at either end, in order', () => {
    const bytes = pattern(64 * SS);
    const p = memoryProvider(bytes);
    for (const [offset, length] of [
      [0, bytes.length],
      [1, 10],
      [SS - 1, 2],
      [700, 5 * SS + 13],
      [3 * SS, 0],
      [bytes.length - 3, 3],
    ] as const) {
      const c = collect(4 * SS);
      readRange(p, offset, length, c.sink);
      expect(c.bytes().equals(bytes.subarray(offset, offset + length))).toBe(true);
      // Contiguous pieces, each starting where the last ended.
      let at = 0;
      for (const [o, l] of c.pieces) {
        expect(o).toBe(at);
        at += l;
      }
      expect(at).toBe(length);
    }
  });

  it('ends every piece on a multiple of the piece size, so later reads are whole and aligned', () => {
    const p = memoryProvider(pattern(64 * SS));
    const c = collect(4 * SS);
    readRange(p, 100, 20 * SS, c.sink);
    const ends = c.pieces.map(([o, l]) => 100 + o + l);
    expect(ends.slice(0, -1).every((e) => e % (4 * SS) === 0)).toBe(true);
    // One piece size per read after the first: no read larger than a piece.
    expect(p.reads.every(([, l]) => l <= 4 * SS)).toBe(true);
  });

  it('reports progress as bytes done of the range', () => {
    const p = memoryProvider(pattern(16 * SS));
    const seen: number[] = [];
    readRange(p, SS, 8 * SS, collect(2 * SS).sink, (d) => seen.push(d));
    expect(seen).toEqual([2 * SS - SS, 3 * SS, 5 * SS, 7 * SS, 8 * SS]);
  });

  it('refuses a range past the end of the provider before reading anything', () => {
    const p = memoryProvider(pattern(8 * SS));
    expect(() => readRange(p, 4 * SS, 5 * SS, collect(SS).sink)).toThrow(/not inside its 4096 bytes/);
    expect(p.reads).toEqual([]);
  });

  it('passes a failing read up, after the pieces before it', () => {
    const p = memoryProvider(pattern(16 * SS));
    p.failAt = 9 * SS;
    const c = collect(4 * SS);
    expect(() => readRange(p, 0, 16 * SS, c.sink)).toThrow(/EIO from the provider/);
    expect(c.pieces.map(([o]) => o)).toEqual([0, 4 * SS]);
  });
});

describe('files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'geomctl-transfer-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('readToFile writes the range, and a failure leaves no file', () => {
    const bytes = pattern(32 * SS);
    const p = memoryProvider(bytes);
    const out = join(dir, 'out.bin');
    readToFile(p, 300, 10 * SS, out);
    expect(readFileSync(out).equals(bytes.subarray(300, 300 + 10 * SS))).toBe(true);
    p.failAt = 20 * SS;
    expect(() => readToFile(p, 0, 32 * SS, out)).toThrow(/EIO/);
    expect(existsSync(out)).toBe(false);
  });

  it('exportToFile keeps holes sparse, reads no hole, and counts what it wrote', () => {
    const M = 1024 * 1024;
    const bytes = Buffer.alloc(8 * M);
    pattern(M).copy(bytes, 0);
    pattern(SS).copy(bytes, 5 * M + 3 * SS);
    // [1M, 5M) and [6M, 8M) are holes; [5M, 6M) holds one non-zero sector among zeros.
    const p = memoryProvider(bytes, [
      [M, 5 * M],
      [6 * M, 8 * M],
    ]);
    const out = join(dir, 'export.img');
    const seen: number[] = [];
    const r = exportToFile(p, out, (d) => seen.push(d));
    expect(r).toEqual({ bytes: 8 * M, written: M + SS, allocated: 2 * M });
    expect(readFileSync(out).equals(bytes)).toBe(true);
    expect(p.reads.every(([o, l]) => o + l <= M || (o >= 5 * M && o + l <= 6 * M))).toBe(true);
    expect(seen[seen.length - 1]).toBe(8 * M);
    expect(seen.every((d, i) => i === 0 || d >= (seen[i - 1] as number))).toBe(true);
    // Allocated: the first MiB and the one sector's block, not the zeros around it.
    expect(statSync(out).blocks * 512).toBeLessThan(2 * M);
  });

  it('exportToFile refuses what is not a regular file, and a failure leaves no file', () => {
    const p = memoryProvider(pattern(8 * SS));
    expect(() => exportToFile(p, '/dev/null')).toThrow(/is not a regular file/);
    const out = join(dir, 'export.img');
    writeFileSync(out, 'old');
    p.failAt = 4 * SS;
    expect(() => exportToFile(p, out)).toThrow(/EIO/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('writeFromFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'geomctl-transfer-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs writeFromFile with `input` as the file. */
  function write(p: BlockProvider, input: Buffer, offset: number, onProgress?: (done: number) => void): number {
    const path = join(dir, 'in.bin');
    writeFileSync(path, input);
    const fd = openSync(path, 'r');
    try {
      return writeFromFile(p, fd, path, offset, onProgress);
    } finally {
      closeSync(fd);
    }
  }

  it('writes the input at the offset, completing a last partial sector with the provider\'s bytes', () => {
    const bytes = pattern(64 * SS);
    const want = Buffer.from(bytes);
    const p = memoryProvider(bytes);
    const input = Buffer.alloc(5 * SS + 100, 0xab);
    input.copy(want, 4 * SS);
    const seen: number[] = [];
    expect(write(p, input, 4 * SS, (d) => seen.push(d))).toBe(input.length);
    expect(bytes.equals(want)).toBe(true);
    expect(p.writes.map(([o, l]) => [o, l])).toEqual([[4 * SS, 6 * SS]]);
    expect(seen).toEqual([input.length]);
  });

  it('lends requests of the provider\'s size from an arena it refills only after settle()', () => {
    const bytes = Buffer.alloc(64 * SS);
    const events: string[] = [];
    const lending: Lending = { request: 2 * SS, bytes: 6 * SS, settle: () => events.push('settle') };
    const p = memoryProvider(bytes, [], lending);
    const input = pattern(13 * SS);
    const origWrite = p.write.bind(p);
    p.write = (offset, data, opts) => {
      events.push(`write ${offset / SS}+${data.length / SS}${opts?.lent ? ' lent' : ''}`);
      origWrite(offset, data, opts);
    };
    write(p, input, 0);
    expect(bytes.subarray(0, input.length).equals(input)).toBe(true);
    // Three requests fill the arena; the fourth waits for settle(); the end settles too.
    expect(events).toEqual(['write 0+2 lent', 'write 2+2 lent', 'write 4+2 lent', 'settle', 'write 6+2 lent', 'write 8+2 lent', 'write 10+2 lent', 'settle', 'write 12+1 lent', 'settle']);
  });

  it('refuses an offset that is not a sector multiple, and an input past the end, before writing it', () => {
    const p = memoryProvider(Buffer.alloc(8 * SS));
    expect(() => write(p, Buffer.alloc(SS), 100)).toThrow(/not a multiple of the 512-byte sectors/);
    expect(() => write(p, Buffer.alloc(5 * SS), 4 * SS)).toThrow(/writing 2560 bytes at 2048 passes the end of mem \(4096 bytes\)/);
    expect(p.writes).toEqual([]);
  });
});
