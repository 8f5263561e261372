// A journal geom's provider, <data provider>.journal, as a layer of a stack
// (providers.md, "Tasting and stacks"): what a virstor whose component is
// data.img.journal consumes. Writes become records of the active journal;
// reads merge the data image with every journal not yet copied.
//
// The journal is the layer's undo log: what a class above writes is replayed
// after a kill only once a journal holding it is finished. So the class's
// metadata (META and VOLUME: a virstor's map sectors and metadata) is held
// back until its commit and then written as one journal of its own, after the
// journal holding the data it names is finished: a kill leaves the class
// above all-before (its metadata journal unfinished) or all-after. After the
// bottom commit the finished journals are copied and the journal marked
// CLEAN, as 'journal write --sync' leaves it.

import { alignedBuffer } from '../util/aligned.js';
import { layerProvider, type Layer } from '../geom/stack-engine.js';
import type { JournalDevice } from './device.js';
import type { JournalWriter } from './writer.js';
import { mergeRanges } from '../util/ranges.js';

/** The held-back metadata: ranges in write order (a later one wins where they overlap). */
interface Held {
  offset: number;
  data: Buffer;
}

/** `as`: the provider's GEOM name (data.img.journal) and the path it was found by (imgs/data.img.journal). */
export function journalLayer(dev: JournalDevice, as: { name: string; path: string }, writable: boolean): Layer {
  let writer: JournalWriter | undefined;
  const held: Held[] = [];
  let journaled = false;
  const journal = (offset: number, data: Buffer): void => {
    // The writer keeps what it is given until the journal is copied.
    const copy = alignedBuffer(data.length);
    data.copy(copy);
    writer ??= dev.writer();
    writer.write(offset, copy);
    journaled = true;
  };
  const finish = (): void => {
    if (writer && journaled) writer.finish();
    journaled = false;
  };
  const layer: Layer = {
    provider: layerProvider({ name: as.name, path: as.path, size: dev.dataSize, sectorSize: dev.sectorSize, writable }, () => layer),
    readInto(offset, target) {
      dev.readInto(offset, target);
      const end = offset + target.length;
      for (const h of held) {
        const s = Math.max(offset, h.offset);
        const e = Math.min(end, h.offset + h.data.length);
        if (s < e) h.data.copy(target, s - offset, s - h.offset, e - h.offset);
      }
    },
    write(offset, data, type) {
      if (type === 'DATA') journal(offset, data);
      else held.push({ offset, data: Buffer.from(data) });
    },
    writeOrdered(offset, data) {
      journal(offset, data);
      finish();
    },
    barrier: finish,
    dataRegions(offset, length) {
      const extra: [number, number][] = held.map((h) => [h.offset, h.offset + h.data.length]);
      const end = offset + length;
      const all: [number, number][] = [...dev.dataRegions(offset, length).map(([s, e]): [number, number] => [s, e])];
      for (const [s, e] of extra) if (s < end && e > offset) all.push([Math.max(s, offset), Math.min(e, end)]);
      return mergeRanges(all);
    },
    prepareCommit() {
      finish();
      if (held.length === 0) return;
      for (const h of held.splice(0)) journal(h.offset, h.data);
      finish();
    },
    afterCommit() {
      writer?.sync();
    },
  };
  return layer;
}
