// virstor map (virstor.md, "check, map, export"): the allocated extents of
// the virtual device, coalesced, and their lines in the form of `qemu-img map`.

import { GeomError } from '../errors.js';
import { PLAIN, type TextStyle } from '../util/style.js';
import type { VirstorComponent, VirstorDevice } from './device.js';
import { MAP_ENTRY, VIRSTOR_MAP_ALLOCATED } from './map.js';
import { nonZeroEntries, type MapProgress } from './map-scan.js';

/** One run of virtual chunks mapped to consecutive chunks of one component. */
export interface MapExtent {
  virtualChunk: number;
  chunks: number;
  component: number;
  path: string;
  physicalChunk: number;
  /** Byte offset in the virtual device, length, and byte offset in the component. */
  offset: number;
  length: number;
  physicalOffset: number;
}

/** The allocated extents, coalesced, in virtual order; streamed (the map may be huge). */
export function* mapExtents(dev: VirstorDevice, onProgress?: MapProgress): Generator<MapExtent> {
  const cs = dev.chunkSize;
  let run: MapExtent | undefined;
  const make = (v: number, no: number, chunk: number): MapExtent => {
    const c = dev.components[no] as VirstorComponent;
    return { virtualChunk: v, chunks: 1, component: no, path: c.path, physicalChunk: chunk, offset: v * cs, length: cs, physicalOffset: chunk * cs };
  };
  const { flags, providerNo, providerChunk } = MAP_ENTRY.get;
  for (const [block, p, v] of nonZeroEntries(dev, onProgress)) {
    if ((flags(block, p) & VIRSTOR_MAP_ALLOCATED) === 0) continue;
    const no = providerNo(block, p);
    const chunk = providerChunk(block, p);
    const problem = dev.invalidEntry(v, no, chunk);
    if (problem) throw new GeomError('CORRUPT', `virstor ${dev.name}: invalid ${problem}`, "run 'geomctl virstor check'");
    if (run && run.component === no && run.virtualChunk + run.chunks === v && run.physicalChunk + run.chunks === chunk) {
      run.chunks++;
      run.length += cs;
      continue;
    }
    if (run) yield run;
    run = make(v, no, chunk);
  }
  if (run) yield run;
}

/** qemu-img map's "%#-16" PRIx64 column, with at least one space after it (offsets past 2^56 fill all 16). */
function hexColumn(n: number, index: number, style: TextStyle): string {
  const value = n === 0 ? '0' : `0x${n.toString(16)}`;
  return `${style.column(value, index)}${' '.repeat(Math.max(1, 16 - value.length))}`;
}

export const MAP_HEADER = 'Offset          Length          Mapped to       File';

/**
 * One extent as a line of `qemu-img map` (file = the component image), chunk
 * ranges appended; `style` tells the columns apart on a terminal.
 */
export function formatExtent(e: MapExtent, style: TextStyle = PLAIN): string {
  const last = (first: number): string => (e.chunks === 1 ? `${first}` : `${first}-${first + e.chunks - 1}`);
  const columns = `${hexColumn(e.offset, 0, style)}${hexColumn(e.length, 1, style)}${hexColumn(e.physicalOffset, 2, style)}`;
  return `${columns}${style.column(e.path, 3)} (chunks ${last(e.virtualChunk)} -> component ${e.component} chunks ${last(e.physicalChunk)})`;
}
