// struct virstor_map_entry (FreeBSD sys/geom/virstor/g_virstor.h): the
// allocation map at offset 0 of component 0, one 8-byte entry per virtual
// chunk, written by the kernel as its in-memory struct — little-endian on the
// machines geomctl assumes (formats.md, "virstor allocation map"). The codec
// is total: range checks against the device belong to the device layer.

/** Entry flag: the virtual chunk is backed by a physical chunk. */
export const VIRSTOR_MAP_ALLOCATED = 1;
export const VIRSTOR_MAP_ENTRY_SIZE = 8;

export interface MapEntry {
  /** u16 at 0; bit 0 VIRSTOR_MAP_ALLOCATED. */
  flags: number;
  /** u16 at 2: the component index. */
  providerNo: number;
  /** u32 at 4: the chunk index on that component. */
  providerChunk: number;
}

/** Field table: [key, offset, size]. */
const MAP_FIELDS = [
  ['flags', 0, 2],
  ['providerNo', 2, 2],
  ['providerChunk', 4, 4],
] as const satisfies ReadonlyArray<readonly [keyof MapEntry, number, 2 | 4]>;

export function isAllocated(e: MapEntry): boolean {
  return (e.flags & VIRSTOR_MAP_ALLOCATED) !== 0;
}

/** Decodes the entry at byte `offset` of `buf`. */
export function decodeMapEntry(buf: Buffer, offset = 0): MapEntry {
  const e = { flags: 0, providerNo: 0, providerChunk: 0 };
  for (const [key, off, size] of MAP_FIELDS) {
    e[key] = size === 2 ? buf.readUInt16LE(offset + off) : buf.readUInt32LE(offset + off);
  }
  return e;
}

/** Encodes `e` into `buf` at byte `offset`. Values must fit their fields (RangeError otherwise). */
export function encodeMapEntry(e: MapEntry, buf: Buffer, offset = 0): void {
  for (const [key, off, size] of MAP_FIELDS) {
    if (size === 2) buf.writeUInt16LE(e[key], offset + off);
    else buf.writeUInt32LE(e[key], offset + off);
  }
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
