// gjournal's on-disk metadata: struct g_journal_metadata of FreeBSD's
// sys/geom/journal/g_journal.h (journal_metadata_encode/_decode/_dump),
// version 0, 101 bytes at the start of a provider's last sector
// (formats.md, "gjournal metadata"). One field table below defines the layout;
// encode, decode, validation, the `gjournal dump` text and the JSON form are
// all derived from it.
//
// Representation: the five u64 fields (jstart, jend, joffset, flags,
// provsize) are bigints, so that whatever sits on disk decodes, dumps and
// re-encodes exactly, even values beyond 2^53. Callers convert with Number()
// after validateJournalMetadata() has checked that the geometry fits the image
// (and so is far below 2^53). The u32/u8 fields are numbers.

import { createHash } from 'node:crypto';
import { CorruptError, GeomError } from '../errors.js';
import { u64Json } from '../json.js';
import type { Provider } from '../provider/provider.js';
import { tasteProvider } from '../taste.js';
import { minJournalSize } from './format.js';

export const G_JOURNAL_MAGIC = 'GEOM::JOURNAL';
export const G_JOURNAL_VERSION = 0;
/** Bytes the encoded metadata occupies (the rest of the sector is zero). */
export const JOURNAL_METADATA_SIZE = 101;
/** The MD5 covers bytes [0, 85). */
const HASHED_BYTES = 85;

export const GJ_TYPE_DATA = 0x01;
export const GJ_TYPE_JOURNAL = 0x02;
export const GJ_TYPE_COMPLETE = GJ_TYPE_DATA | GJ_TYPE_JOURNAL;

export const GJ_FLAG_CLEAN = 0x01n;
export const GJ_FLAG_CHECKSUM = 0x02n;

export interface JournalMetadata {
  /** md_magic up to its first NUL. */
  magic: string;
  version: number;
  /** md_id: shared by the data and journal providers of one device. */
  id: number;
  /** md_type: GJ_TYPE_DATA, GJ_TYPE_JOURNAL or both. */
  type: number;
  jstart: bigint;
  jend: bigint;
  joffset: bigint;
  jid: number;
  flags: bigint;
  /** md_provider up to its first NUL (UTF-8): the hardcoded provider name, '' when none. */
  provider: string;
  provsize: bigint;
  /** md_hash: 16 bytes, as read (decode) or as computed (encode). */
  hash: Buffer;
}

/** What encodeJournalMetadata needs: everything but the hash, which it computes. */
export type JournalMetadataFields = Omit<JournalMetadata, 'hash'>;

type StringKey = 'magic' | 'provider';
type U32Key = 'version' | 'id' | 'jid';
type U64Key = 'jstart' | 'jend' | 'joffset' | 'flags' | 'provsize';

interface FieldBase {
  /** The C member, used in error messages. */
  cName: string;
  offset: number;
  size: number;
  /** The label journal_metadata_dump prints (right-aligned to 10 columns). */
  dumpLabel: string;
  /** The stable --json field name. */
  json: string;
}

type Field =
  | (FieldBase & { kind: 'cstring'; key: StringKey })
  | (FieldBase & { kind: 'u32'; key: U32Key })
  | (FieldBase & { kind: 'u8'; key: 'type' })
  | (FieldBase & { kind: 'u64'; key: U64Key; dumpBits?: 32 })
  | (FieldBase & { kind: 'hash'; key: 'hash' });

/** struct g_journal_metadata, little-endian, packed as journal_metadata_encode() writes it. */
export const JOURNAL_METADATA_FIELDS: readonly Field[] = [
  { key: 'magic', cName: 'md_magic', offset: 0, size: 16, kind: 'cstring', dumpLabel: 'magic', json: 'magic' },
  { key: 'version', cName: 'md_version', offset: 16, size: 4, kind: 'u32', dumpLabel: 'version', json: 'version' },
  { key: 'id', cName: 'md_id', offset: 20, size: 4, kind: 'u32', dumpLabel: 'id', json: 'id' },
  { key: 'type', cName: 'md_type', offset: 24, size: 1, kind: 'u8', dumpLabel: 'type', json: 'type' },
  { key: 'jstart', cName: 'md_jstart', offset: 25, size: 8, kind: 'u64', dumpLabel: 'start', json: 'jstart' },
  { key: 'jend', cName: 'md_jend', offset: 33, size: 8, kind: 'u64', dumpLabel: 'end', json: 'jend' },
  { key: 'joffset', cName: 'md_joffset', offset: 41, size: 8, kind: 'u64', dumpLabel: 'joffset', json: 'joffset' },
  { key: 'jid', cName: 'md_jid', offset: 49, size: 4, kind: 'u32', dumpLabel: 'jid', json: 'jid' },
  // journal_metadata_dump prints the flags as (u_int): the low 32 bits.
  { key: 'flags', cName: 'md_flags', offset: 53, size: 8, kind: 'u64', dumpLabel: 'flags', json: 'flags', dumpBits: 32 },
  { key: 'provider', cName: 'md_provider', offset: 61, size: 16, kind: 'cstring', dumpLabel: 'hcprovider', json: 'hcprovider' },
  { key: 'provsize', cName: 'md_provsize', offset: 77, size: 8, kind: 'u64', dumpLabel: 'provsize', json: 'provsize' },
  { key: 'hash', cName: 'md_hash', offset: 85, size: 16, kind: 'hash', dumpLabel: 'MD5 hash', json: 'md5Hash' },
];

function md5Of(encoded: Buffer): Buffer {
  return createHash('md5').update(encoded.subarray(0, HASHED_BYTES)).digest();
}

/** strlcpy into a fixed field: at most size-1 bytes, NUL-terminated, the rest zero. */
function writeCString(buf: Buffer, value: string, offset: number, size: number): void {
  const bytes = Buffer.from(value, 'utf8').subarray(0, size - 1);
  bytes.copy(buf, offset);
}

function readCString(buf: Buffer, offset: number, size: number): string {
  const raw = buf.subarray(offset, offset + size);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? size : nul).toString('utf8');
}

/** journal_metadata_encode: the 101 bytes, MD5 included. Strings are cut as strlcpy cuts them. */
export function encodeJournalMetadata(md: JournalMetadataFields): Buffer {
  const buf = Buffer.alloc(JOURNAL_METADATA_SIZE);
  for (const f of JOURNAL_METADATA_FIELDS) {
    switch (f.kind) {
      case 'cstring':
        writeCString(buf, md[f.key], f.offset, f.size);
        break;
      case 'u32':
        buf.writeUInt32LE(md[f.key] >>> 0, f.offset);
        break;
      case 'u8':
        buf.writeUInt8(md[f.key] & 0xff, f.offset);
        break;
      case 'u64':
        buf.writeBigUInt64LE(BigInt.asUintN(64, md[f.key]), f.offset);
        break;
      case 'hash':
        md5Of(buf).copy(buf, f.offset);
        break;
    }
  }
  return buf;
}

/** The whole metadata sector: the encoded metadata, zeros after it. */
export function encodeJournalMetadataSector(md: JournalMetadataFields, sectorSize: number): Buffer {
  const sector = Buffer.alloc(sectorSize);
  encodeJournalMetadata(md).copy(sector);
  return sector;
}

/**
 * journal_metadata_decode plus the kernel's checks in g_journal_metadata_read:
 * magic, version (0 only), MD5. Total: any other input — short, garbage,
 * another class's sector — is a CorruptError naming the image and the field.
 */
export function decodeJournalMetadata(buf: Buffer, imageName: string): JournalMetadata {
  if (buf.length < JOURNAL_METADATA_SIZE) {
    throw new CorruptError(`journal metadata on ${imageName} is truncated: ${buf.length} bytes, ${JOURNAL_METADATA_SIZE} needed`);
  }
  if (!buf.subarray(0, G_JOURNAL_MAGIC.length + 1).equals(Buffer.from(`${G_JOURNAL_MAGIC}\0`, 'latin1'))) {
    throw new CorruptError(`no journal metadata on ${imageName}: md_magic is not ${G_JOURNAL_MAGIC}`, "label it with 'geomctl journal label'");
  }
  const version = buf.readUInt32LE(16);
  if (version > G_JOURNAL_VERSION) {
    throw new CorruptError(`journal metadata on ${imageName} has md_version ${version}, newer than this geomctl handles (${G_JOURNAL_VERSION})`);
  }
  if (!md5Of(buf).equals(buf.subarray(85, 101))) {
    // The kernel ignores such a provider (g_journal_metadata_read); only relabeling brings it back.
    throw new CorruptError(
      `MD5 hash mismatch for ${imageName}`,
      "FreeBSD ignores it too: relabel it as it was ('geomctl journal label -f' with the same images and -s), which loses any journal not yet copied",
    );
  }
  return decodeFields(buf);
}

function decodeFields(buf: Buffer): JournalMetadata {
  const md: JournalMetadata = {
    magic: '', version: 0, id: 0, type: 0, jstart: 0n, jend: 0n, joffset: 0n, jid: 0, flags: 0n, provider: '', provsize: 0n, hash: Buffer.alloc(16),
  };
  for (const f of JOURNAL_METADATA_FIELDS) {
    switch (f.kind) {
      case 'cstring':
        md[f.key] = readCString(buf, f.offset, f.size);
        break;
      case 'u32':
        md[f.key] = buf.readUInt32LE(f.offset);
        break;
      case 'u8':
        md[f.key] = buf.readUInt8(f.offset);
        break;
      case 'u64':
        md[f.key] = buf.readBigUInt64LE(f.offset);
        break;
      case 'hash':
        md[f.key] = Buffer.from(buf.subarray(f.offset, f.offset + f.size));
        break;
    }
  }
  return md;
}

function dumpValue(f: Field, md: JournalMetadata): string {
  switch (f.kind) {
    case 'cstring':
      return md[f.key];
    case 'u32':
      return String(md[f.key]);
    case 'u8':
      return String(md[f.key]);
    case 'u64':
      return (f.dumpBits ? BigInt.asUintN(f.dumpBits, md[f.key]) : md[f.key]).toString(10);
    case 'hash':
      return md[f.key].toString('hex');
  }
}

/**
 * Exactly what FreeBSD's `gjournal dump` prints for one provider:
 * "Metadata on <name>:", journal_metadata_dump's lines, then a blank line.
 */
export function dumpJournalMetadata(md: JournalMetadata, imageName: string): string {
  const lines = [`Metadata on ${imageName}:`];
  for (const f of JOURNAL_METADATA_FIELDS) lines.push(`${f.dumpLabel.padStart(10)}: ${dumpValue(f, md)}`);
  return `${lines.join('\n')}\n\n`;
}

function jsonValue(f: Field, md: JournalMetadata): string | number {
  switch (f.kind) {
    case 'cstring':
      return md[f.key];
    case 'u32':
      return md[f.key];
    case 'u8':
      return md[f.key];
    case 'u64':
      return u64Json(md[f.key]);
    case 'hash':
      return md[f.key].toString('hex');
  }
}

/** The --json form of a dump: one lowerCamelCase field per metadata field (u64s via u64Json). */
export function journalMetadataJson(md: JournalMetadata): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const f of JOURNAL_METADATA_FIELDS) out[f.json] = jsonValue(f, md);
  return out;
}

export function isClean(md: JournalMetadata): boolean {
  return (md.flags & GJ_FLAG_CLEAN) !== 0n;
}

export function hasChecksum(md: JournalMetadata): boolean {
  return (md.flags & GJ_FLAG_CHECKSUM) !== 0n;
}

/** What validateJournalMetadata checks a metadata against: the image it was read from. */
export interface JournalImage {
  /** The path as the user gave it (used in messages). */
  path: string;
  /** The provider name: the image's base name. */
  name: string;
  size: number;
  /** The sector size the metadata was found at. */
  sectorSize: number;
}

export interface ValidateOptions {
  /** -H: accept a hardcoded provider name that differs from the image's base name. */
  ignoreHardcoded?: boolean;
  /** When given, also require a journal space large enough for this maxphys (minJournalSize). */
  maxphys?: number;
}

function field(cName: string, image: JournalImage, what: string, hint?: string): CorruptError {
  return new CorruptError(`journal metadata on ${image.path}: ${cName} ${what}`, hint);
}

/** The kernel's g_compare_names: equal, ignoring a leading "/dev/" on either side. */
function sameProviderName(a: string, b: string): boolean {
  const strip = (s: string): string => (s.startsWith('/dev/') ? s.slice(5) : s);
  return strip(a) === strip(b);
}

/**
 * Validates one image's decoded metadata against that image (journal.md, "open"
 * step 1, the checks one image can answer alone): md_type, md_provsize (as the
 * kernel's taste does), the hardcoded name, and the part of the geometry this
 * image holds. Cross-image checks (same id, types adding up to DATA|JOURNAL,
 * equal sector sizes) belong to whoever pairs the images.
 */
export function validateJournalMetadata(md: JournalMetadata, image: JournalImage, opts: ValidateOptions = {}): void {
  if (md.type < GJ_TYPE_DATA || md.type > GJ_TYPE_COMPLETE) {
    throw field('md_type', image, `is ${md.type}; expected 1 (data), 2 (journal) or 3 (both)`);
  }
  if (md.provsize !== 0n && md.provsize !== BigInt(image.size)) {
    throw new GeomError('MISMATCH', `${image.path}: md_provsize ${md.provsize} does not match the image size ${image.size}, so FreeBSD would ignore it`, 'restore the image to the size it was labeled with');
  }
  if (md.provider !== '' && !opts.ignoreHardcoded && !sameProviderName(md.provider, image.name)) {
    throw new GeomError('MISMATCH', `${image.path}: hardcoded provider name '${md.provider}' (md_provider) differs from the image name '${image.name}'`, 'use -H (--ignore-hardcoded) to accept it');
  }
  const ss = BigInt(image.sectorSize);
  if (md.jstart >= md.jend) throw field('md_jstart', image, `${md.jstart} is not below md_jend ${md.jend}`);
  if (md.jstart % ss !== 0n) throw field('md_jstart', image, `${md.jstart} is not a multiple of the sector size ${image.sectorSize}`);
  if (md.jend % ss !== 0n) throw field('md_jend', image, `${md.jend} is not a multiple of the sector size ${image.sectorSize}`);
  if (md.type & GJ_TYPE_JOURNAL && md.jend > BigInt(image.size) - ss) {
    throw field('md_jend', image, `${md.jend} runs past the image's last sector (${BigInt(image.size) - ss})`);
  }
  if (md.type === GJ_TYPE_COMPLETE && md.jstart === 0n) {
    throw field('md_jstart', image, 'is 0: the data area in front of the journal is empty');
  }
  if (opts.maxphys !== undefined) {
    const need = minJournalSize(image.sectorSize, opts.maxphys);
    if (md.jend - md.jstart < BigInt(need)) {
      throw field('md_jend', image, `leaves a journal of ${md.jend - md.jstart} bytes, smaller than the ${need} bytes maxphys ${opts.maxphys} needs`);
    }
  }
}

/** A journal image's metadata as found by tasting: decoded, with the sector size it was found at. */
export interface FoundJournalMetadata {
  md: JournalMetadata;
  sectorSize: number;
}

/**
 * Reads the journal metadata of an image the way the kernel's taste does: the
 * last sector, at the first sector size (512 … 65536) where a GEOM magic sits
 * (src/taste.ts). Throws NO_METADATA when that is not GEOM::JOURNAL, and
 * decodeJournalMetadata's CorruptErrors (e.g. "MD5 hash mismatch for X").
 */
export function readJournalMetadata(provider: Provider): FoundJournalMetadata {
  const tasted = tasteProvider(provider);
  if (!tasted || tasted.className !== 'JOURNAL') {
    throw new GeomError('NO_METADATA', `Cannot read metadata from ${provider.path}: no ${G_JOURNAL_MAGIC} metadata in its last sector`, "label it with 'geomctl journal label'");
  }
  return { md: decodeJournalMetadata(tasted.sector, provider.path), sectorSize: tasted.sectorSize };
}
