// struct virstor_map_entry (FreeBSD sys/geom/virstor/g_virstor.h): the
// allocation map at offset 0 of component 0, one 8-byte entry per virtual
// chunk, written by the kernel as its in-memory struct — little-endian on the
// machines geomctl assumes (formats.md, "virstor allocation map"). The codec
// is total: range checks against the device belong to the device layer.

import { defineStruct, type ValueOf } from '../geom/struct.js';

/** Entry flag: the virtual chunk is backed by a physical chunk. */
export const VIRSTOR_MAP_ALLOCATED = 1;

/** struct virstor_map_entry. Scans read it through MAP_ENTRY.get, hoisted out of their loops. */
export const MAP_ENTRY = defineStruct('virstor_map_entry', 8, {
  /** Bit 0: VIRSTOR_MAP_ALLOCATED. */
  flags: { kind: 'u16le', offset: 0 },
  /** The component index. */
  providerNo: { kind: 'u16le', offset: 2 },
  /** The chunk index on that component. */
  providerChunk: { kind: 'u32le', offset: 4 },
});

/** The same entries as a big-endian machine writes them (check's diagnosis of a swapped map). */
export const MAP_ENTRY_SWAPPED = MAP_ENTRY.swapped();

export const VIRSTOR_MAP_ENTRY_SIZE = MAP_ENTRY.size;

export type MapEntry = ValueOf<typeof MAP_ENTRY>;

export function isAllocated(e: MapEntry): boolean {
  return (e.flags & VIRSTOR_MAP_ALLOCATED) !== 0;
}

/** Decodes the entry at byte `offset` of `buf`. */
export function decodeMapEntry(buf: Buffer, offset = 0): MapEntry {
  return MAP_ENTRY.decode(buf, offset);
}

/** Encodes `e` into `buf` at byte `offset`. Values must fit their fields (RangeError otherwise). */
export function encodeMapEntry(e: MapEntry, buf: Buffer, offset = 0): void {
  MAP_ENTRY.encode(e, buf, offset);
}

/** Every entry of a block (a whole number of entries; a trailing partial entry is ignored). */
export function decodeMapBlock(buf: Buffer): MapEntry[] {
  const n = Math.floor(buf.length / VIRSTOR_MAP_ENTRY_SIZE);
  const out = new Array<MapEntry>(n);
  for (let i = 0; i < n; i++) out[i] = decodeMapEntry(buf, i * VIRSTOR_MAP_ENTRY_SIZE);
  return out;
}

/** A block holding `entries` in order. */
export function encodeMapBlock(entries: readonly MapEntry[]): Buffer {
  const buf = Buffer.alloc(entries.length * VIRSTOR_MAP_ENTRY_SIZE);
  entries.forEach((e, i) => encodeMapEntry(e, buf, i * VIRSTOR_MAP_ENTRY_SIZE));
  return buf;
}

export interface MapGeometry {
  /** virsize / chunk_size: one entry each (the kernel's sc->chunk_count). */
  virtualChunks: number;
  /** Bytes of map at offset 0 of component 0. */
  mapSize: number;
  /** Chunks of component 0 the map occupies: ceil(mapSize / chunkSize). */
  mapChunks: number;
  /** chunk_reserved of component 0: twice the map (gvirstor label's rule). */
  reserved: number;
  /** Map entries per sector. */
  entriesPerSector: number;
}

/**
 * The map's geometry for a device. A virsize that is not a chunk multiple is
 * truncated, as the kernel does ("Device truncated"). Throws RangeError when
 * the map could not be addressed (beyond 2^53 bytes).
 */
export function mapGeometry(virsize: bigint, chunkSize: number, sectorSize: number): MapGeometry {
  if (chunkSize <= 0) throw new RangeError('chunk size must be positive');
  const virtualChunks = virsize / BigInt(chunkSize);
  const mapSize = virtualChunks * BigInt(VIRSTOR_MAP_ENTRY_SIZE);
  if (mapSize > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`a map of ${mapSize} bytes is beyond what geomctl can address`);
  const chunk = BigInt(chunkSize);
  const mapChunks = Number((mapSize + chunk - 1n) / chunk);
  return {
    virtualChunks: Number(virtualChunks),
    mapSize: Number(mapSize),
    mapChunks,
    reserved: 2 * mapChunks,
    entriesPerSector: Math.floor(sectorSize / VIRSTOR_MAP_ENTRY_SIZE),
  };
}
