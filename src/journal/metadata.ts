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
import { sameProviderName } from '../geom/device-name.js';
import { CorruptError, GeomError } from '../errors.js';
import { defineStruct, type ValueOf } from '../geom/struct.js';
import type { Provider } from '../provider/provider.js';
import { tasteProvider } from '../geom/taste.js';
import { minJournalSize } from './format.js';

export const G_JOURNAL_MAGIC = 'GEOM::JOURNAL';
export const G_JOURNAL_VERSION = 0;

export const GJ_TYPE_DATA = 0x01;
export const GJ_TYPE_JOURNAL = 0x02;
export const GJ_TYPE_COMPLETE = GJ_TYPE_DATA | GJ_TYPE_JOURNAL;

export const GJ_FLAG_CLEAN = 0x01n;
export const GJ_FLAG_CHECKSUM = 0x02n;

/**
 * struct g_journal_metadata, little-endian, packed as journal_metadata_encode()
 * writes it. Labels are journal_metadata_dump's (right-aligned to 10
 * columns); JSON names are the stable --json ones. Encoding wraps as the C
 * casts do, and strings are cut as strlcpy cuts them.
 */
export const JOURNAL_METADATA = defineStruct(
  'g_journal_metadata',
  101,
  {
    /** md_magic up to its first NUL. */
    magic: { kind: 'cstring', offset: 0, size: 16, c: 'md_magic', label: 'magic' },
    version: { kind: 'u32le', offset: 16, c: 'md_version', label: 'version' },
    /** md_id: shared by the data and journal providers of one device. */
    id: { kind: 'u32le', offset: 20, c: 'md_id', label: 'id' },
    /** md_type: GJ_TYPE_DATA, GJ_TYPE_JOURNAL or both. */
    type: { kind: 'u8', offset: 24, c: 'md_type', label: 'type' },
    jstart: { kind: 'u64le', offset: 25, c: 'md_jstart', label: 'start' },
    jend: { kind: 'u64le', offset: 33, c: 'md_jend', label: 'end' },
    joffset: { kind: 'u64le', offset: 41, c: 'md_joffset', label: 'joffset' },
    jid: { kind: 'u32le', offset: 49, c: 'md_jid', label: 'jid' },
    flags: { kind: 'u64le', offset: 53, c: 'md_flags', label: 'flags' },
    /** md_provider up to its first NUL (UTF-8): the hardcoded provider name, '' when none. */
    provider: { kind: 'cstring', offset: 61, size: 16, c: 'md_provider', label: 'hcprovider', json: 'hcprovider' },
    provsize: { kind: 'u64le', offset: 77, c: 'md_provsize', label: 'provsize' },
    /** md_hash: the MD5 of every byte before it, as read (decode) or as computed (encode). */
    hash: { kind: 'bytes', offset: 85, size: 16, c: 'md_hash', label: 'MD5 hash', json: 'md5Hash' },
  },
  { overflow: 'wrap' },
);

/** Bytes the encoded metadata occupies (the rest of the sector is zero). */
export const JOURNAL_METADATA_SIZE = JOURNAL_METADATA.size;
/** The MD5 covers every byte before md_hash. */
const HASHED_BYTES = JOURNAL_METADATA.offset.hash;
const DUMP_WIDTH = 10;

export type JournalMetadata = ValueOf<typeof JOURNAL_METADATA>;

/** What encodeJournalMetadata needs: everything but the hash, which it computes. */
export type JournalMetadataFields = Omit<JournalMetadata, 'hash'>;

function md5Of(encoded: Buffer): Buffer {
  return createHash('md5').update(encoded.subarray(0, HASHED_BYTES)).digest();
}

/** journal_metadata_encode: the 101 bytes, MD5 included. Strings are cut as strlcpy cuts them. */
export function encodeJournalMetadata(md: JournalMetadataFields): Buffer {
  const buf = JOURNAL_METADATA.encode({ ...md, hash: Buffer.alloc(0) });
  JOURNAL_METADATA.set.hash(buf, 0, md5Of(buf));
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
  const { get } = JOURNAL_METADATA;
  if (get.magic(buf, 0) !== G_JOURNAL_MAGIC) {
    throw new CorruptError(`no journal metadata on ${imageName}: md_magic is not ${G_JOURNAL_MAGIC}`, "label it with 'geomctl journal label'");
  }
  const version = get.version(buf, 0);
  if (version > G_JOURNAL_VERSION) {
    throw new CorruptError(`journal metadata on ${imageName} has md_version ${version}, newer than this geomctl handles (${G_JOURNAL_VERSION})`);
  }
  if (!md5Of(buf).equals(get.hash(buf, 0))) {
    // The kernel ignores such a provider (g_journal_metadata_read); only relabeling brings it back.
    throw new CorruptError(
      `MD5 hash mismatch for ${imageName}`,
      "FreeBSD ignores it too: relabel it as it was ('geomctl journal label -f' with the same images and -s), which loses any journal not yet copied",
    );
  }
  return JOURNAL_METADATA.decode(buf);
}

/**
 * Exactly what FreeBSD's `gjournal dump` prints for one provider:
 * "Metadata on <name>:", journal_metadata_dump's lines, then a blank line.
 */
export function dumpJournalMetadata(md: JournalMetadata, imageName: string): string {
  // journal_metadata_dump prints the flags as (u_int): the low 32 bits.
  const lines = JOURNAL_METADATA.dump(md, DUMP_WIDTH, { flags: (f) => BigInt.asUintN(32, f).toString(10) });
  return `${[`Metadata on ${imageName}:`, ...lines].join('\n')}\n\n`;
}

/** The --json form of a dump: one lowerCamelCase field per metadata field (u64s via u64Json). */
export function journalMetadataJson(md: JournalMetadata): Record<string, string | number> {
  return JOURNAL_METADATA.json(md);
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
 * (src/geom/taste.ts). Throws NO_METADATA when that is not GEOM::JOURNAL, and
 * decodeJournalMetadata's CorruptErrors (e.g. "MD5 hash mismatch for X").
 */
export function readJournalMetadata(provider: Provider): FoundJournalMetadata {
  const tasted = tasteProvider(provider);
  if (!tasted || tasted.className !== 'JOURNAL') {
    throw new GeomError('NO_METADATA', `Cannot read metadata from ${provider.path}: no ${G_JOURNAL_MAGIC} metadata in its last sector`, "label it with 'geomctl journal label'");
  }
  return { md: decodeJournalMetadata(tasted.sector, provider.path), sectorSize: tasted.sectorSize };
}
