// virstor export (virstor.md, "check, map, export"): the virtual device as a
// sparse flat file.

import { alignedBuffer } from '../aligned.js';
import { OutputFile, refuseImageAsOutput } from '../output-file.js';
import { isZero } from '../util/zero.js';
import type { VirstorDevice } from './device.js';
import { mapExtents } from './extents.js';

export interface ExportResult {
  bytes: number;
  allocatedChunks: number;
}

/** Export writes in blocks of this size and leaves all-zero blocks as holes. */
const EXPORT_BLOCK = 1 << 20;

/**
 * A sparse flat file of the device's virtual size: allocated chunks copied,
 * everything else (unallocated chunks, zero blocks) left as holes. A failure
 * removes the file: a partial export must not pass for a whole one.
 */
export function exportVirstor(dev: VirstorDevice, outPath: string, onProgress?: (done: number, total: number) => void): ExportResult {
  refuseImageAsOutput(outPath, dev.engine.providers, `virstor ${dev.name}`);
  const size = dev.size;
  const out = new OutputFile(outPath);
  let allocatedChunks = 0;
  const buf = alignedBuffer(EXPORT_BLOCK);
  let complete = false;
  try {
    out.truncate(size);
    for (const e of mapExtents(dev)) {
      allocatedChunks += e.chunks;
      for (let done = 0; done < e.length; done += EXPORT_BLOCK) {
        const n = Math.min(EXPORT_BLOCK, e.length - done);
        const data = buf.subarray(0, n);
        dev.engine.readInto(e.component, e.physicalOffset + done, data);
        if (!isZero(data)) out.write(data, e.offset + done);
        onProgress?.(e.offset + done + n, size);
      }
    }
    out.sync();
    complete = true;
  } finally {
    if (complete) out.close();
    else out.discard();
  }
  return { bytes: size, allocatedChunks };
}
