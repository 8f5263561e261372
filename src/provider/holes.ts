// Finding the data of a sparse image without reading its holes: lseek(2)'s
// SEEK_DATA and SEEK_HOLE (Linux 3.1+, FreeBSD, Solaris), which image files
// on ext4, xfs, btrfs and tmpfs answer from their extent maps — and from the
// page cache, so bytes written but not yet flushed count as data. A 1 PiB
// virstor device has a 2 GiB map that is almost all hole; reading only its
// data is what makes opening it cheap (virstor.md, "open").
//
// Where the answer is unsure the whole rest of the range counts as data:
// that is always exact, only slower. File systems without their own support
// get the kernel's generic lseek, which reports the whole file as data, and
// so do block devices.
//
// Without lseek (the native module fs-ext missing, src/platform/fs-ext.ts) the holes
// are found by reading: blocks of zeros count as holes. Every caller treats a
// hole as zeros it need not read or write, so zeros are as good as a hole —
// only the whole range is read once to find them.

import { errnoOf } from '../errors.js';
import type { Provider } from './provider.js';
import { isZero } from '../util/zero.js';

/** lseek whence values (Linux, FreeBSD and Solaris agree). */
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** lseek(fd, offset, whence) on one descriptor: returns the new offset, throws an Error with an errno `code`. */
export type Seek = (offset: number, whence: typeof SEEK_DATA | typeof SEEK_HOLE) => number;

/**
 * The data of [offset, offset + length) as ascending [start, end) ranges,
 * found with `seek`. ENXIO from SEEK_DATA means no data after the offset;
 * any other failure (EINVAL where the whence is unknown) or an answer that
 * makes no sense ends the walk with the rest of the range as data.
 */
export function* seekDataRegions(seek: Seek, offset: number, length: number): Generator<readonly [number, number]> {
  const end = offset + length;
  let pos = offset;
  while (pos < end) {
    let data: number;
    try {
      data = seek(pos, SEEK_DATA);
    } catch (err) {
      if (errnoOf(err) !== 'ENXIO') yield [pos, end];
      return;
    }
    if (data >= end) return;
    if (data < pos) {
      yield [pos, end];
      return;
    }
    let hole: number;
    try {
      hole = seek(data, SEEK_HOLE);
    } catch {
      hole = end;
    }
    // A hole at or before the data it follows makes no sense: trust nothing more.
    if (hole <= data) hole = end;
    yield [data, Math.min(hole, end)];
    pos = hole;
  }
}

/** The unit of holes found by reading: a page, as file systems allocate. */
const ZERO_BLOCK = 4096;
/** How much is read at once while looking for data. */
const SCAN_CHUNK = 1 << 20;

/**
 * The data of [offset, offset + length) as ascending [start, end) ranges,
 * found by reading it with `read` (which fills the buffer from the offset):
 * every 4 KiB block (from 0, clipped to the range) that holds a byte other
 * than zero is data.
 */
export function* readDataRegions(read: (offset: number, target: Buffer) => void, offset: number, length: number): Generator<readonly [number, number]> {
  const end = offset + length;
  const buf = Buffer.allocUnsafe(SCAN_CHUNK);
  let run: [number, number] | undefined;
  for (let at = offset; at < end; ) {
    // Chunks end on block boundaries, so blocks never straddle two reads.
    const stop = Math.min(end, (Math.floor(at / ZERO_BLOCK) * ZERO_BLOCK) + SCAN_CHUNK);
    const chunk = buf.subarray(0, stop - at);
    read(at, chunk);
    for (let b = at; b < stop; ) {
      const next = Math.min(stop, (Math.floor(b / ZERO_BLOCK) + 1) * ZERO_BLOCK);
      const block = chunk.subarray(b - at, next - at);
      if (!isZero(block)) {
        if (run && run[1] === b) run[1] = next;
        else {
          if (run) yield run;
          run = [b, next];
        }
      }
      b = next;
    }
    at = stop;
  }
  if (run) yield run;
}

/**
 * The ranges of [offset, offset + length) that must be read to see all of its
 * data, widened to multiples of `align` (from 0, clipped to the range) and
 * merged: the whole range when the provider cannot tell.
 */
export function* alignedDataRegions(p: Provider, offset: number, length: number, align: number): Generator<readonly [number, number]> {
  const end = offset + length;
  if (!p.dataRegions) {
    if (length > 0) yield [offset, end];
    return;
  }
  let run: [number, number] | undefined;
  for (const [a, b] of p.dataRegions(offset, length)) {
    const start = Math.max(offset, Math.floor(a / align) * align);
    const stop = Math.min(end, Math.ceil(b / align) * align);
    if (stop <= start) continue;
    if (run && start <= run[1]) {
      run[1] = Math.max(run[1], stop);
      continue;
    }
    if (run) yield run;
    run = [start, stop];
  }
  if (run) yield run;
}
