// struct g_virstor_metadata (FreeBSD sys/geom/virstor/g_virstor_md.h), laid
// out as virstor_metadata_encode() in g_virstor_md.c writes it: 92 bytes,
// little-endian, version 1, at the start of a component's last sector
// (formats.md, "virstor metadata"). There is no checksum, so every field is
// validated on read. One field table below drives encode, decode, validation
// and the JSON form; dump follows the order of gvirstor(8)'s
// virstor_metadata_dump() (sbin/geom/class/virstor/geom_virstor.c).

import { CorruptError } from '../errors.js';
import { u64Json } from '../json.js';

export const VIRSTOR_MAGIC = 'GEOM::VIRSTOR';
export const VIRSTOR_VERSION = 1;
export const VIRSTOR_METADATA_SIZE = 92;
/** Component flags (g_virstor_md.h): holds allocated chunks / is being filled now. */
export const VIRSTOR_PROVIDER_ALLOCATED = 1;
export const VIRSTOR_PROVIDER_CURRENT = 2;
/** md_name is char[16] and keeps its NUL: 15 bytes of name (the same for label's hardcoded names). */
export const VIRSTOR_NAME_MAX = 15;

export interface VirstorMetadata {
  magic: string;
  version: number;
  /** md_name: the device name. */
  name: string;
  /** md_virsize: bytes; may exceed 2^53 (e.g. -s 16P), hence bigint. */
  virsize: bigint;
  chunkSize: number;
  id: number;
  /** md_count: number of components. */
  count: number;
  /** Hardcoded provider name, '' when not hardcoded. */
  provider: string;
  /** This component's index. */
  no: number;
  provsize: bigint;
  chunkCount: number;
  chunkNext: number;
  chunkReserved: number;
  flags: number;
}

type StringKey = 'magic' | 'name' | 'provider';
type IntKey = 'version' | 'chunkSize' | 'id' | 'count' | 'no' | 'chunkCount' | 'chunkNext' | 'chunkReserved' | 'flags';
type BigKey = 'virsize' | 'provsize';

/** A validation rule: returns what is wrong with the field, or undefined. */
type Check = (md: VirstorMetadata, sectorSize: number) => string | undefined;

type Field = { c: string; offset: number; check?: Check } & (
  | { kind: 'string'; key: StringKey; size: 16; /** strlcpy'd by label; the kernel's strncpy may fill all 16 */ nulRequired: boolean }
  | { kind: 'u16' | 'u32'; key: IntKey; size: 2 | 4 }
  | { kind: 'u64'; key: BigKey; size: 8 }
);

const KNOWN_FLAGS = VIRSTOR_PROVIDER_ALLOCATED | VIRSTOR_PROVIDER_CURRENT;

/** The layout, in byte order (formats.md's table). */
const VIRSTOR_FIELDS: readonly Field[] = [
  { c: 'md_magic', key: 'magic', kind: 'string', offset: 0, size: 16, nulRequired: true,
    check: (md) => (md.magic === VIRSTOR_MAGIC ? undefined : `md_magic is not ${VIRSTOR_MAGIC}`) },
  { c: 'md_version', key: 'version', kind: 'u32', offset: 16, size: 4,
    check: (md) => (md.version === VIRSTOR_VERSION ? undefined : `md_version is ${md.version}, geomctl reads version ${VIRSTOR_VERSION}`) },
  { c: 'md_name', key: 'name', kind: 'string', offset: 20, size: 16, nulRequired: true,
    check: (md) => (md.name === '' ? 'md_name is empty' : undefined) },
  { c: 'md_virsize', key: 'virsize', kind: 'u64', offset: 36, size: 8,
    // The kernel's "Nonsensical metadata" test (create_virstor_geom).
    check: (md) => (md.chunkSize > 0 && md.virsize < BigInt(md.chunkSize) ? `md_virsize ${md.virsize} is smaller than md_chunk_size ${md.chunkSize} (nonsensical metadata)` : undefined) },
  { c: 'md_chunk_size', key: 'chunkSize', kind: 'u32', offset: 44, size: 4,
    check: (md, sectorSize) => {
      if (md.chunkSize === 0) return 'md_chunk_size is 0 (nonsensical metadata)';
      // Chunks are addressed in whole sectors; gvirstor label makes them maxphys multiples.
      if (md.chunkSize % sectorSize !== 0) return `md_chunk_size ${md.chunkSize} is not a multiple of the sector size ${sectorSize}`;
      return undefined;
    } },
  { c: 'md_id', key: 'id', kind: 'u32', offset: 48, size: 4 },
  { c: 'md_count', key: 'count', kind: 'u16', offset: 52, size: 2,
    check: (md) => (md.count === 0 ? 'md_count is 0 (nonsensical metadata)' : undefined) },
  { c: 'provider', key: 'provider', kind: 'string', offset: 54, size: 16, nulRequired: false },
  { c: 'no', key: 'no', kind: 'u16', offset: 70, size: 2,
    check: (md) => (md.count > 0 && md.no >= md.count ? `no ${md.no} is not below md_count ${md.count}` : undefined) },
  { c: 'provsize', key: 'provsize', kind: 'u64', offset: 72, size: 8,
    check: (md) => (md.provsize === 0n ? 'provsize is 0' : undefined) },
  { c: 'chunk_count', key: 'chunkCount', kind: 'u32', offset: 80, size: 4,
    // Label and the kernel's add both derive it from the provider size, so it never exceeds it.
    check: (md) =>
      BigInt(md.chunkCount) * BigInt(md.chunkSize) > md.provsize
        ? `chunk_count ${md.chunkCount} of ${md.chunkSize} bytes exceeds provsize ${md.provsize}`
        : undefined },
  // chunk_next and chunk_reserved may legitimately exceed chunk_count: FreeBSD's
  // label reserves the map's chunks on a component 0 that may be too small to
  // hold them. The device-level check reports that; the codec accepts it.
  { c: 'chunk_next', key: 'chunkNext', kind: 'u32', offset: 84, size: 4 },
  { c: 'chunk_reserved', key: 'chunkReserved', kind: 'u16', offset: 88, size: 2 },
  { c: 'flags', key: 'flags', kind: 'u16', offset: 90, size: 2,
    check: (md) => ((md.flags & ~KNOWN_FLAGS) !== 0 ? `flags 0x${md.flags.toString(16)} has unknown bits` : undefined) },
];

const utf8 = new TextDecoder('utf-8', { fatal: true });

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
  if (target.length < VIRSTOR_METADATA_SIZE) throw new RangeError('virstor metadata needs 92 bytes');
  for (const f of VIRSTOR_FIELDS) {
    switch (f.kind) {
      case 'string': {
        const bytes = Buffer.from(md[f.key], 'utf8');
        const max = f.nulRequired ? f.size - 1 : f.size;
        if (bytes.length > max) throw new RangeError(`${f.c} '${md[f.key]}' is longer than ${max} bytes`);
        target.fill(0, f.offset, f.offset + f.size);
        bytes.copy(target, f.offset);
        break;
      }
      case 'u16':
        target.writeUInt16LE(md[f.key], f.offset);
        break;
      case 'u32':
        target.writeUInt32LE(md[f.key], f.offset);
        break;
      case 'u64':
        target.writeBigUInt64LE(md[f.key], f.offset);
        break;
    }
  }
  return target;
}

/**
 * The fields as stored: never throws for 92 bytes or more. A string field that
 * cannot be read is recorded in `problems` (checked in table order, so a wrong
 * magic is reported before anything else).
 */
function readFields(buf: Buffer, problems: Map<string, string>): VirstorMetadata {
  const md = newVirstorMetadata({
    name: '', virsize: 0n, chunkSize: 0, id: 0, count: 0, provider: '', no: 0,
    provsize: 0n, chunkCount: 0, chunkNext: 0, chunkReserved: 0, flags: 0,
  });
  for (const f of VIRSTOR_FIELDS) {
    switch (f.kind) {
      case 'string': {
        const raw = buf.subarray(f.offset, f.offset + f.size);
        const nul = raw.indexOf(0);
        if (nul < 0 && f.nulRequired) problems.set(f.c, `${f.c} is not NUL-terminated`);
        // C string semantics: whatever follows the NUL is not part of the value.
        const bytes = nul < 0 ? raw : raw.subarray(0, nul);
        try {
          md[f.key] = utf8.decode(bytes);
        } catch {
          problems.set(f.c, `${f.c} is not valid UTF-8`);
        }
        break;
      }
      case 'u16':
        md[f.key] = buf.readUInt16LE(f.offset);
        break;
      case 'u32':
        md[f.key] = buf.readUInt32LE(f.offset);
        break;
      case 'u64':
        md[f.key] = buf.readBigUInt64LE(f.offset);
        break;
    }
  }
  return md;
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
  const problems = new Map<string, string>();
  const md = readFields(sector, problems);
  for (const f of VIRSTOR_FIELDS) {
    const problem = problems.get(f.c) ?? f.check?.(md, sectorSize);
    if (problem) fail(problem);
  }
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
  for (const [label, value] of DUMP_LINES) lines.push(`${label.padStart(DUMP_LABEL_WIDTH)}: ${value(md)}`);
  return `${lines.join('\n')}\n\n`;
}

/** The JSON form: the field table's keys; 64-bit values as numbers when exact, else decimal strings. */
export function virstorMetadataJson(md: VirstorMetadata): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const f of VIRSTOR_FIELDS) {
    out[f.key] = f.kind === 'u64' ? u64Json(md[f.key]) : md[f.key];
  }
  return out;
}
