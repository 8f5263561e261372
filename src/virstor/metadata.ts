// struct g_virstor_metadata (FreeBSD sys/geom/virstor/g_virstor_md.h), laid
// out as virstor_metadata_encode() in g_virstor_md.c writes it: 92 bytes,
// little-endian, version 1, at the start of a component's last sector
// (formats.md, "virstor metadata"). There is no checksum, so every field is
// validated on read. One field table below drives encode, decode, validation
// and the JSON form; dump follows the order of gvirstor(8)'s
// virstor_metadata_dump() (sbin/geom/class/virstor/geom_virstor.c).

import { CorruptError } from '../errors.js';
import { defineStruct, dumpLine, type ValueOf } from '../geom/struct.js';

export const VIRSTOR_MAGIC = 'GEOM::VIRSTOR';
export const VIRSTOR_VERSION = 1;
/** Component flags (g_virstor_md.h): holds allocated chunks / is being filled now. */
export const VIRSTOR_PROVIDER_ALLOCATED = 1;
export const VIRSTOR_PROVIDER_CURRENT = 2;
/** md_name is char[16] and keeps its NUL: 15 bytes of name (the same for label's hardcoded names). */
export const VIRSTOR_NAME_MAX = 15;

/**
 * The layout, in byte order (formats.md's table). Strings must be UTF-8;
 * md_magic and md_name keep their NUL (label strlcpy's them), the hardcoded
 * provider name may fill all 16 bytes (the kernel's strncpy).
 */
export const VIRSTOR_METADATA = defineStruct('g_virstor_metadata', 92, {
  magic: { kind: 'cstring', offset: 0, size: 16, c: 'md_magic', strictUtf8: true },
  version: { kind: 'u32le', offset: 16, c: 'md_version' },
  /** md_name: the device name. */
  name: { kind: 'cstring', offset: 20, size: 16, c: 'md_name', strictUtf8: true },
  /** md_virsize: bytes; may exceed 2^53 (e.g. -s 16P), hence bigint. */
  virsize: { kind: 'u64le', offset: 36, c: 'md_virsize' },
  chunkSize: { kind: 'u32le', offset: 44, c: 'md_chunk_size' },
  id: { kind: 'u32le', offset: 48, c: 'md_id' },
  /** md_count: number of components. */
  count: { kind: 'u16le', offset: 52, c: 'md_count' },
  /** Hardcoded provider name, '' when not hardcoded. */
  provider: { kind: 'cstring', offset: 54, size: 16, c: 'provider', nul: 'optional', strictUtf8: true },
  /** This component's index. */
  no: { kind: 'u16le', offset: 70, c: 'no' },
  provsize: { kind: 'u64le', offset: 72, c: 'provsize' },
  chunkCount: { kind: 'u32le', offset: 80, c: 'chunk_count' },
  chunkNext: { kind: 'u32le', offset: 84, c: 'chunk_next' },
  chunkReserved: { kind: 'u16le', offset: 88, c: 'chunk_reserved' },
  flags: { kind: 'u16le', offset: 90, c: 'flags' },
});

export const VIRSTOR_METADATA_SIZE = VIRSTOR_METADATA.size;

export type VirstorMetadata = ValueOf<typeof VIRSTOR_METADATA>;

const KNOWN_FLAGS = VIRSTOR_PROVIDER_ALLOCATED | VIRSTOR_PROVIDER_CURRENT;

/**
 * What decode checks beyond the strings' bytes, field by field in byte order
 * (so a wrong magic is reported first), given the sector size read at.
 */
const validateVirstorMetadata = VIRSTOR_METADATA.validator<number>({
  magic: (md) => (md.magic === VIRSTOR_MAGIC ? undefined : `md_magic is not ${VIRSTOR_MAGIC}`),
  version: (md) => (md.version === VIRSTOR_VERSION ? undefined : `md_version is ${md.version}, geomctl reads version ${VIRSTOR_VERSION}`),
  name: (md) => (md.name === '' ? 'md_name is empty' : undefined),
  // The kernel's "Nonsensical metadata" test (create_virstor_geom).
  virsize: (md) => (md.chunkSize > 0 && md.virsize < BigInt(md.chunkSize) ? `md_virsize ${md.virsize} is smaller than md_chunk_size ${md.chunkSize} (nonsensical metadata)` : undefined),
  chunkSize: (md, sectorSize) => {
    if (md.chunkSize === 0) return 'md_chunk_size is 0 (nonsensical metadata)';
    // Chunks are addressed in whole sectors; gvirstor label makes them maxphys multiples.
    if (md.chunkSize % sectorSize !== 0) return `md_chunk_size ${md.chunkSize} is not a multiple of the sector size ${sectorSize}`;
    return undefined;
  },
  count: (md) => (md.count === 0 ? 'md_count is 0 (nonsensical metadata)' : undefined),
  no: (md) => (md.count > 0 && md.no >= md.count ? `no ${md.no} is not below md_count ${md.count}` : undefined),
  provsize: (md) => (md.provsize === 0n ? 'provsize is 0' : undefined),
  // Label and the kernel's add both derive it from the provider size, so it never exceeds it.
  chunkCount: (md) =>
    BigInt(md.chunkCount) * BigInt(md.chunkSize) > md.provsize ? `chunk_count ${md.chunkCount} of ${md.chunkSize} bytes exceeds provsize ${md.provsize}` : undefined,
  // chunk_next and chunk_reserved may legitimately exceed chunk_count: FreeBSD's
  // label reserves the map's chunks on a component 0 that may be too small to
  // hold them. The device-level check reports that; the codec accepts it.
  flags: (md) => ((md.flags & ~KNOWN_FLAGS) !== 0 ? `flags 0x${md.flags.toString(16)} has unknown bits` : undefined),
});

/** Metadata for a new component: magic and version filled in. */
export function newVirstorMetadata(fields: Omit<VirstorMetadata, 'magic' | 'version'>): VirstorMetadata {
  return { magic: VIRSTOR_MAGIC, version: VIRSTOR_VERSION, ...fields };
}

/**
 * Encodes into `target` (at least 92 bytes; the rest is left as is — callers
 * pass a zeroed sector) or a new 92-byte buffer. Throws RangeError for a value
 * that does not fit its field: callers validate first, so that is a bug.
 */
export function encodeVirstorMetadata(md: VirstorMetadata, target: Buffer = Buffer.alloc(VIRSTOR_METADATA_SIZE)): Buffer {
  return VIRSTOR_METADATA.encode(md, target);
}

/**
 * Decodes and validates the metadata at the start of `sector`, a component's
 * whole last sector (its length is the sector size; a bare 92-byte buffer is
 * checked against 512-byte sectors). Throws CorruptError naming the image and
 * the field: "c1.img: virstor metadata: md_name is not NUL-terminated".
 */
export function decodeVirstorMetadata(sector: Buffer, image: string): VirstorMetadata {
  const fail = (problem: string): never => {
    throw new CorruptError(`${image}: virstor metadata: ${problem}`);
  };
  if (sector.length < VIRSTOR_METADATA_SIZE) fail(`the sector holds ${sector.length} bytes, fewer than the ${VIRSTOR_METADATA_SIZE} of the metadata`);
  const sectorSize = sector.length >= 512 ? sector.length : 512;
  const md = VIRSTOR_METADATA.decode(sector);
  const problem = validateVirstorMetadata(md, sectorSize, sector);
  if (problem) fail(problem);
  return md;
}

/** printf's %u of a value C holds in an unsigned int: gvirstor dump casts to 32 bits. */
function u32(n: bigint | number): string {
  return (BigInt(n) & 0xffffffffn).toString();
}

const MB = 1024n * 1024n;

/** virstor_metadata_dump's lines, in its order, with its right-aligned labels and casts. */
const DUMP_LINES: ReadonlyArray<readonly [string, (md: VirstorMetadata) => string]> = [
  ['Magic string', (md) => md.magic],
  ['Metadata version', (md) => u32(md.version)],
  ['Device name', (md) => md.name],
  ['Device ID', (md) => u32(md.id)],
  ['Provider index', (md) => u32(md.no)],
  ['Active providers', (md) => u32(md.count)],
  ['Hardcoded provider', (md) => (md.provider !== '' ? md.provider : '(not hardcoded)')],
  // (unsigned int)(md_virsize / (1024 * 1024)): FreeBSD truncates to 32 bits.
  ['Virtual size', (md) => `${u32(md.virsize / MB)} MB`],
  ['Chunk size', (md) => `${Math.floor(md.chunkSize / 1024)} kB`],
  ['Chunks on provider', (md) => u32(md.chunkCount)],
  // uint32_t subtraction: wraps when chunk_next > chunk_count, as on FreeBSD.
  ['Chunks free', (md) => u32((md.chunkCount - md.chunkNext) >>> 0)],
  ['Reserved chunks', (md) => u32(md.chunkReserved)],
];

const DUMP_LABEL_WIDTH = 22;

/** Exactly what `gvirstor dump` prints for one image, trailing blank line included. */
export function dumpVirstorMetadata(md: VirstorMetadata, image: string): string {
  const lines = [`Metadata on ${image}:`];
  for (const [label, value] of DUMP_LINES) lines.push(dumpLine(label, value(md), DUMP_LABEL_WIDTH));
  return `${lines.join('\n')}\n\n`;
}

/** The JSON form: the field table's keys; 64-bit values as numbers when exact, else decimal strings. */
export function virstorMetadataJson(md: VirstorMetadata): Record<string, string | number> {
  return VIRSTOR_METADATA.json(md);
}
