// Streaming a virstor map (virstor.md, "open"): never whole in memory — 1 PiB
// of 4 MiB chunks is a 2 GiB map — and only the parts of a sparse image that
// hold data are read. Open's scan validates every entry (the kernel's
// "Invalid entry") and recomputes each component's chunk_next as
// max(chunk_reserved, 1 + highest allocated chunk), as the kernel's
// in-memory state would be; check, map and export stream the entries again.

import { CorruptError } from '../errors.js';
import type { Engine } from '../engine/types.js';
import type { Provider } from '../provider/provider.js';
import { alignedDataRegions } from '../provider/holes.js';
import { alignedBuffer } from '../util/aligned.js';
import { isZero } from '../util/zero.js';
import type { VirstorComponent, VirstorDevice } from './device.js';
import type { MapView } from './mapview.js';
import { MAP_ENTRY, VIRSTOR_MAP_ALLOCATED, VIRSTOR_MAP_ENTRY_SIZE, type MapGeometry } from './map.js';
import { VIRSTOR_PROVIDER_ALLOCATED, VIRSTOR_PROVIDER_CURRENT } from './metadata.js';

/** Map bytes read per engine call while scanning. */
const SCAN_BLOCK = 1 << 20;
/** The map's data regions are widened to this: fewer, larger reads; an isolated 4 KiB of entries costs one. */
const REGION_ALIGN = 64 * 1024;
/** Zero runs are skipped this many bytes at a time (isZero: a native compare). */
const ZERO_STRIDE = 64 * 1024;


/** A problem found in the map while opening leniently. */
export interface MapProblem {
  virtualChunk: number;
  message: string;
}
/** Progress of a pass over the map: bytes done out of total (open's scan, virstor check and map show it). */
export type MapProgress = (done: number, total: number) => void;

/** What a map stream reads: the device's engine (image 0 holds the map), its geometry and its map view. */
export interface MapSource {
  readonly engine: Engine;
  readonly geometry: MapGeometry;
  readonly map: MapView;
}

/**
 * The map streamed in blocks through the engine: [first virtual chunk,
 * bytes], in map order. The buffer is reused: it is valid until the next
 * block. `onProgress` gets the map bytes passed (read or skipped) and the
 * map's size.
 *
 * Blocks that lie in holes of component 0's image are skipped: a hole reads
 * as zeros, which are unallocated entries, so skipping it is exact as long
 * as the image holds the map. It does whenever no map change waits in the
 * engine's cache — at open (a fresh engine: recovery rolled back before it
 * was made, so nothing in it is dirty) and after a commit, which is when
 * the verbs stream the map. A map changed since then is read whole through
 * the engine, whose dirty buffers win over the disk.
 */
export function* mapBlocks(dev: MapSource, onProgress?: MapProgress): Generator<[number, Buffer]> {
  const { mapSize } = dev.geometry;
  const regions: Iterable<readonly [number, number]> = dev.map.uncommitted
    ? [[0, mapSize]]
    : alignedDataRegions(dev.engine.providers[0] as Provider, 0, mapSize, REGION_ALIGN);
  const buf = alignedBuffer(Math.min(SCAN_BLOCK, mapSize));
  let done = 0;
  for (const [start, end] of regions) {
    for (let off = start; off < end; off += SCAN_BLOCK) {
      const block = buf.subarray(0, Math.min(SCAN_BLOCK, end - off));
      dev.engine.readInto(0, off, block);
      yield [off / VIRSTOR_MAP_ENTRY_SIZE, block];
      done = off + block.length;
      onProgress?.(done, mapSize);
    }
  }
  if (done < mapSize) onProgress?.(mapSize, mapSize);
}

/**
 * Every map entry that is not all zeros, as [block, byte offset in it,
 * virtual chunk], skipping zero runs with a native compare (a thin device's
 * map is mostly zeros). The block is reused: decode before the next one.
 */
export function* nonZeroEntries(dev: MapSource, onProgress?: MapProgress): Generator<[Buffer, number, number]> {
  for (const [firstChunk, block] of mapBlocks(dev, onProgress)) {
    for (let off = 0; off < block.length; off += ZERO_STRIDE) {
      const end = Math.min(off + ZERO_STRIDE, block.length);
      if (isZero(block.subarray(off, end))) continue;
      for (let p = off; p < end; p += VIRSTOR_MAP_ENTRY_SIZE) {
        if (block.readUInt32LE(p) === 0 && block.readUInt32LE(p + 4) === 0) continue;
        yield [block, p, firstChunk + p / VIRSTOR_MAP_ENTRY_SIZE];
      }
    }
  }
}

/**
 * Open's pass over the map: every entry in range (the kernel's "Invalid
 * entry"), per component allocated count and highest chunk, then chunk_next
 * and ALLOCATED recomputed (virstor.md, "open"). An entry out of range
 * throws, or with `lenient` is returned as a problem.
 */
export function scanMap(dev: VirstorDevice, lenient: boolean, onProgress: MapProgress | undefined): MapProblem[] {
  const problems: MapProblem[] = [];
  const comps = dev.components;
  const { flags: flagsOf, providerNo, providerChunk } = MAP_ENTRY.get;
  for (const [block, p, v] of nonZeroEntries(dev, onProgress)) {
    const flags = flagsOf(block, p);
    const no = providerNo(block, p);
    const chunk = providerChunk(block, p);
    const message = dev.invalidEntry(v, no, chunk);
    if (message) {
      if (!lenient) throw new CorruptError(`virstor ${dev.name}: invalid ${message}`, "run 'geomctl virstor check'");
      problems.push({ virtualChunk: v, message });
      continue;
    }
    if ((flags & VIRSTOR_MAP_ALLOCATED) === 0) continue;
    const c = comps[no] as VirstorComponent;
    c.allocated++;
    if (chunk > c.highest) c.highest = chunk;
  }
  // The flags the kernel would have written had it closed the device: a
  // component holding chunks is ALLOCATED, and CURRENT marks the last one
  // that does (component 0 holds the map) — a crash leaves both stale.
  let last = 0;
  for (const c of comps) {
    c.chunkNext = Math.max(c.chunkReserved, c.highest + 1);
    if (c.allocated > 0) {
      c.flags |= VIRSTOR_PROVIDER_ALLOCATED;
      last = c.index;
    }
  }
  for (const c of comps) c.flags = c.index === last ? c.flags | VIRSTOR_PROVIDER_CURRENT : c.flags & ~VIRSTOR_PROVIDER_CURRENT;
  return problems;
}
