// A virstor geom's provider, virstor/<name>, as a layer of a stack
// (providers.md, "Tasting and stacks"): what a journal labeled on
// virstor/thin consumes. Reads and writes go through the map; a write
// allocates on first touch, as the kernel does, keeping the buffer type of
// the class above for the bytes it puts in the chunk, so the journal's
// metadata stays under the one undo log; an ordered write's allocation is
// durable before it returns (virstor/io.ts, WriteOptions.as).

import { virstorProviderName } from '../geom/device-name.js';
import type { BufferType } from '../engine/types.js';
import { layerProvider, type Layer } from '../geom/stack-engine.js';
import { mergeRanges } from '../util/ranges.js';
import type { VirstorDevice } from './device.js';
import { bufferSource, readVirstorInto, writeVirstor } from './io.js';
import { isAllocated } from './map.js';

export function virstorLayer(dev: VirstorDevice, onWarning: (w: string) => void = () => {}): Layer {
  const name = virstorProviderName(dev.name);
  const write = (offset: number, data: Buffer, as: BufferType | 'ORDERED'): void => {
    const r = writeVirstor(dev, bufferSource(data), { offset, sparse: false, commit: false, as });
    for (const w of r.warnings) onWarning(w);
  };
  const layer: Layer = {
    provider: layerProvider({ name, path: name, size: dev.size, sectorSize: dev.sectorSize, writable: dev.writable }, () => layer),
    readInto: (offset, target) => readVirstorInto(dev, offset, target),
    write: (offset, data, type) => write(offset, data, type),
    writeOrdered: (offset, data) => write(offset, data, 'ORDERED'),
    barrier: () => dev.engine.barrier(dev.components.map((c) => c.index)),
    dataRegions(offset, length) {
      // Allocated chunks, narrowed to where their component may hold data.
      const cs = dev.chunkSize;
      const out: [number, number][] = [];
      for (let at = offset; at < offset + length; ) {
        const v = Math.floor(at / cs);
        const end = Math.min(offset + length, (v + 1) * cs);
        const e = dev.entry(v);
        if (isAllocated(e)) {
          const base = e.providerChunk * cs - v * cs;
          const regions = dev.engine.dataRegions?.(e.providerNo, at + base, end - at) ?? [[at + base, end + base]];
          for (const [s, t] of regions) out.push([s - base, t - base]);
        }
        at = end;
      }
      return mergeRanges(out);
    },
    prepareCommit() {
      dev.map.flush();
      if (dev.scanned) dev.updateMetadata();
    },
    afterCommit: () => dev.map.committed(),
  };
  return layer;
}
