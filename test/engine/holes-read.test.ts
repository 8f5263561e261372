// Holes found by reading (src/provider/holes.ts, readDataRegions): without
// the native module fs-ext there is no SEEK_DATA, and blocks of zeros count as
// holes — exact for every caller, which treats a hole as zeros.

import { describe, expect, it } from 'vitest';
import { readDataRegions } from '../../src/provider/holes.js';

const K = 1024;
const M = 1024 * K;

function reader(image: Buffer) {
  const reads: [number, number][] = [];
  const read = (offset: number, target: Buffer) => {
    reads.push([offset, target.length]);
    image.copy(target, 0, offset, offset + target.length);
  };
  return { read, reads };
}

const all = (it: Iterable<readonly [number, number]>) => [...it].map(([a, b]) => [a, b]);

describe('readDataRegions', () => {
  const image = Buffer.alloc(4 * M);
  image[5] = 1; // block 0
  image[4 * K] = 1; // block 1: joins block 0
  image[3 * M - 1] = 7; // the last block of the third MiB
  image[3 * M] = 7; // the first of the fourth: one run across the read boundary

  it('finds the 4 KiB blocks that hold a byte other than zero, merged into runs', () => {
    const { read, reads } = reader(image);
    expect(all(readDataRegions(read, 0, 4 * M))).toEqual([[0, 8 * K], [3 * M - 4 * K, 3 * M + 4 * K]]);
    // Read once, in 1 MiB pieces.
    expect(reads).toEqual([[0, M], [M, M], [2 * M, M], [3 * M, M]]);
  });

  it('clips blocks to a range that starts and ends inside them', () => {
    const { read } = reader(image);
    expect(all(readDataRegions(read, 2 * K, 4 * K))).toEqual([[4 * K, 6 * K]]); // byte 5 lies before the range
    expect(all(readDataRegions(read, 2, 4 * K))).toEqual([[2, 4 * K + 2]]);
    expect(all(readDataRegions(read, 8 * K, 2 * M))).toEqual([]);
    expect(all(readDataRegions(read, 3 * M - 100, 200))).toEqual([[3 * M - 100, 3 * M + 100]]);
  });

  it('an empty range reads nothing', () => {
    const { read, reads } = reader(image);
    expect(all(readDataRegions(read, 0, 0))).toEqual([]);
    expect(reads).toEqual([]);
  });
});
