// `journal read` and `journal export` (journal.md, "read, export"): the
// journaled provider streamed out in chunks — to a sink, or into a sparse
// file where runs of zero sectors stay holes.

import { GeomError } from '../errors.js';
import type { JournalDevice } from './device.js';
import { OutputFile, refuseImageAsOutput } from '../output-file.js';
import { alignedBuffer } from '../aligned.js';

/** Node's read/write loops are fastest with 64-128 KiB buffers (quality.md, "Performance"). */
export const STREAM_CHUNK = 128 * 1024;

/**
 * Calls `sink` with the journaled provider's bytes [offset, offset + length),
 * in order, in chunks of `chunkSize` (a multiple of the sector size). Every
 * whole-sector chunk comes in the same page-aligned buffer (src/aligned.ts),
 * so `sink` must be done with a chunk before it returns; only a partial
 * sector at either end is read apart.
 */
export function streamJournaled(dev: JournalDevice, offset: number, length: number, sink: (data: Buffer, at: number) => void, chunkSize = STREAM_CHUNK): void {
  const ss = dev.sectorSize;
  const buf = alignedBuffer(Math.min(chunkSize, Math.ceil(length / ss) * ss));
  for (let o = offset; o < offset + length; ) {
    // Chunks end on chunk boundaries of the provider, so reads stay aligned after a first partial one.
    const next = Math.min(offset + length, (Math.floor(o / chunkSize) + 1) * chunkSize);
    if (o % ss === 0 && next % ss === 0) {
      const chunk = next - o === buf.length ? buf : buf.subarray(0, next - o);
      dev.readInto(o, chunk);
      sink(chunk, o);
    } else sink(dev.read(o, next - o), o);
    o = next;
  }
}

/** Refuses an output path that is one of the device's own images. */
export function checkNotAnImage(dev: JournalDevice, path: string): void {
  refuseImageAsOutput(path, dev.engine.providers, `journal ${dev.dataPath}.journal`);
}

export interface ExportResult {
  /** The journaled provider's size: the output file's size. */
  bytes: number;
  /** Bytes actually written (the rest are holes). */
  written: number;
}

/**
 * Writes the whole journaled provider to `path` (created or truncated),
 * skipping runs of zero sectors so they stay holes, and sets its size.
 */
export function exportJournaled(dev: JournalDevice, path: string, progress?: (done: number) => void): ExportResult {
  checkNotAnImage(dev, path);
  const out = new OutputFile(path);
  const ss = dev.sectorSize;
  const zero = Buffer.alloc(STREAM_CHUNK);
  const result: ExportResult = { bytes: dev.dataSize, written: 0 };
  const put = (buf: Buffer, at: number): void => {
    out.write(buf, at);
    result.written += buf.length;
  };
  let complete = false;
  try {
    if (!out.isRegularFile()) throw new GeomError('REFUSED', `${path} is not a regular file`, 'export to a file');
    streamJournaled(dev, 0, dev.dataSize, (buf, at) => {
      progress?.(at + buf.length);
      if (buf.compare(zero, 0, buf.length) === 0) return;
      // Write each run of non-zero sectors.
      let run = -1;
      for (let s = 0; s <= buf.length; s += ss) {
        const zeroSector = s === buf.length || buf.compare(zero, 0, Math.min(ss, buf.length - s), s, Math.min(s + ss, buf.length)) === 0;
        if (!zeroSector && run < 0) run = s;
        if (zeroSector && run >= 0) {
          put(buf.subarray(run, s), at + run);
          run = -1;
        }
      }
    });
    out.truncate(dev.dataSize);
    complete = true;
  } finally {
    // A failed export removes its file: a partial one must not pass for a whole one.
    if (complete) out.close();
    else out.discard();
  }
  return result;
}
