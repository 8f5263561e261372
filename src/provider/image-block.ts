// An image file (FreeBSD's DISK class) as a BlockProvider: its bytes through
// the flush engine, so that even a plain image is written in order and made
// durable by barriers like every other geomctl write (flush-engine.md).

import type { Engine } from '../engine/types.js';
import type { BlockProvider, ExtentRun } from './block.js';

/** Zeros are written this many bytes at a time. */
const ZERO_PIECE = 1024 * 1024;

export function imageBlockProvider(engine: Engine, close: () => void): BlockProvider {
  const image = engine.providers[0];
  if (!image) throw new RangeError('imageBlockProvider needs an engine over one image');
  const readAsync = engine.readIntoAsync?.bind(engine);
  const durable = (fua: boolean | undefined): void => {
    if (fua) engine.commit();
  };
  return {
    name: image.name,
    mediaSize: image.size,
    sectorSize: image.mediaSectorSize,
    writable: image.writable,
    read: (offset, target) => engine.readInto(0, offset, target),
    ...(readAsync ? { readAsync: (offset: number, target: Buffer) => readAsync(0, offset, target) } : {}),
    write(offset, data, opts = {}) {
      engine.write(0, offset, data, 'DATA');
      durable(opts.fua);
    },
    zero(offset, length, opts = {}) {
      const zeros = Buffer.alloc(Math.min(ZERO_PIECE, length));
      for (let at = offset; at < offset + length; at += zeros.length) {
        engine.write(0, at, zeros.subarray(0, Math.min(zeros.length, offset + length - at)), 'DATA');
      }
      durable(opts.fua);
    },
    flush: () => engine.commit(),
    // The engine's regions count its unwritten cache blocks: no commit needed to see them.
    extents: (offset, length) => regionsToRuns(engine.dataRegions?.(0, offset, length) ?? [[offset, offset + length]], offset, length),
    close() {
      if (image.writable) engine.commit();
      close();
    },
  };
}

/** Data regions (ascending, disjoint, inside the range) as alternating runs covering [offset, offset + length). */
export function regionsToRuns(regions: Iterable<readonly [number, number]>, offset: number, length: number): ExtentRun[] {
  const out: ExtentRun[] = [];
  let at = offset;
  const push = (len: number, hole: boolean): void => {
    if (len <= 0) return;
    const last = out[out.length - 1];
    if (last && last.hole === hole) last.length += len;
    else out.push({ length: len, hole });
  };
  for (const [s, e] of regions) {
    push(s - at, true);
    push(e - Math.max(s, at), false);
    at = Math.max(at, e);
  }
  push(offset + length - at, true);
  return out;
}
