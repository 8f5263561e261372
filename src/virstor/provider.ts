// A virstor device's provider, virstor/<name> (providers.md): the virtual
// disk, chunks allocated on first write, as the live g_virstor does it. Writes
// leave the transaction open; FLUSH (and FUA) commit it — data, then map and
// metadata — so the map on disk never points at a chunk whose allocation did
// not commit (serve.md, "Consistency"), and a write is durable once a flush
// after it was answered.

import { virstorProviderName } from '../geom/device-name.js';
import type { BlockProvider, ExtentRun } from '../provider/block.js';
import type { VirstorDevice } from './device.js';
import { bufferSource, planVirstorWrite, readVirstorInto, readVirstorIntoAsync, writeVirstor, type SkippedChunks } from './io.js';
import { isAllocated } from './map.js';

/** Zero writes go through the allocator this many bytes at a time. */
const ZERO_PIECE = 4 * 1024 * 1024;
/** Read-only: writeVirstor copies out of what it is given. */
const ZEROS = Buffer.alloc(ZERO_PIECE);

export function virstorBlockProvider(dev: VirstorDevice, onWarning: (w: string) => void = () => {}): BlockProvider {
  const size = Number(dev.virsize);
  // The write plan() settled, in force until the next flush().
  let planned: SkippedChunks | undefined;
  const write = (offset: number, data: Buffer, sparse: boolean, fua: boolean | undefined): void => {
    const r = writeVirstor(dev, bufferSource(data), { offset, sparse, commit: fua === true, planned });
    for (const w of r.warnings) onWarning(w);
  };
  return {
    name: virstorProviderName(dev.name),
    mediaSize: size,
    sectorSize: dev.sectorSize,
    writable: dev.writable,
    read: (offset, target) => readVirstorInto(dev, offset, target),
    readAsync: (offset, target) => readVirstorIntoAsync(dev, offset, target),
    write: (offset, data, opts = {}) => write(offset, data, false, opts.fua),
    zero(offset, length, opts = {}) {
      // --sparse semantics: an unallocated chunk stays unallocated; allocated ones get zeros.
      const zeros = ZEROS.subarray(0, Math.min(ZERO_PIECE, length));
      for (let at = offset; at < offset + length; at += zeros.length) {
        write(at, zeros.subarray(0, Math.min(zeros.length, offset + length - at)), true, false);
      }
      if (opts.fua) dev.commit();
    },
    plan(offset, input, opts) {
      planned = planVirstorWrite(dev, offset, input, opts.sparse);
      return { allocates: planned.needed, skips: planned.skipped };
    },
    flush() {
      // The kernel's watermark warnings, once for a planned write: as they stand after all of it.
      const warnings = planned && planned.needed > 0 ? dev.allocator.takeWarnings() : [];
      planned = undefined;
      dev.commit();
      for (const w of warnings) onWarning(w);
    },
    extents(offset, length) {
      const cs = dev.chunkSize;
      const out: ExtentRun[] = [];
      for (let at = offset; at < offset + length; ) {
        const v = Math.floor(at / cs);
        const len = Math.min(offset + length, (v + 1) * cs) - at;
        const hole = !isAllocated(dev.entry(v));
        const last = out[out.length - 1];
        if (last && last.hole === hole) last.length += len;
        else out.push({ length: len, hole });
        at += len;
      }
      return out;
    },
    close() {
      if (dev.writable) dev.commit();
      dev.close();
    },
  };
}
