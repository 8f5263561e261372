// The journal space's on-disk structures: struct g_journal_header and struct
// g_journal_record_header (with struct g_journal_entry) of FreeBSD's
// sys/geom/journal/g_journal.h, as g_journal.c's g_journal_header_encode/
// _decode and g_journal_record_header_encode/_decode lay them out
// (formats.md, "gjournal journal space"), plus GJ_VALIDATE_OFFSET.
//
// Decoders here are total: a sector that is not a header or not a record
// yields undefined or a reason string, never an exception. Encoders produce a
// whole sector with every byte the format leaves unused set to zero.
// Entry values are numbers: offsets past 2^53 cannot belong to an image
// geomctl handles, so such an entry makes its sector "not a record".

import { defineStruct } from '../geom/struct.js';

/** GJ_HEADER_MAGIC with its NUL: jh_magic is sizeof("GJHDR") = 6 bytes. */
const HEADER_MAGIC = Buffer.from('GJHDR\0', 'latin1');
/** GJ_RECORD_HEADER_MAGIC with its NUL: jrh_magic is sizeof("GJRHDR") = 7 bytes. */
const RECORD_MAGIC = Buffer.from('GJRHDR\0', 'latin1');

/** GJ_RECORD_HEADER_NENTRIES: a record header describes at most 20 entries. */
export const GJ_RECORD_MAX_ENTRIES = 20;

/** struct g_journal_entry: where a piece of data sits in the journal and where it belongs. */
export const JOURNAL_ENTRY = defineStruct('g_journal_entry', 24, {
  joffset: { kind: 'u53le', offset: 0, c: 'je_joffset' },
  offset: { kind: 'u53le', offset: 8, c: 'je_offset' },
  length: { kind: 'u53le', offset: 16, c: 'je_length' },
});

/** struct g_journal_header as g_journal_header_encode lays it out. */
export const JOURNAL_HEADER = defineStruct(
  'g_journal_header',
  14,
  {
    magic: { kind: 'bytes', offset: 0, size: HEADER_MAGIC.length, c: 'jh_magic' },
    journalId: { kind: 'u32le', offset: 6, c: 'jh_journal_id' },
    nextId: { kind: 'u32le', offset: 10, c: 'jh_journal_next_id' },
  },
  { overflow: 'wrap' },
);

/** jrh_sum: the first 8 bytes of an MD5. */
const SUM_BYTES = 8;

/** What jrh_sum holds of the MD5 of a record's data. */
export function recordSum(md5: Buffer): Buffer {
  return md5.subarray(0, SUM_BYTES);
}

/**
 * struct g_journal_record_header as g_journal_record_header_encode lays it
 * out: it skips 8 bytes after the id, so bytes 11..15 are padding, and the
 * entries follow jrh_sum.
 */
export const RECORD_HEADER = defineStruct(
  'g_journal_record_header',
  25 + GJ_RECORD_MAX_ENTRIES * JOURNAL_ENTRY.size,
  {
    magic: { kind: 'bytes', offset: 0, size: RECORD_MAGIC.length, c: 'jrh_magic' },
    journalId: { kind: 'u32le', offset: 7, c: 'jrh_journal_id' },
    nentries: { kind: 'u16le', offset: 15, c: 'jrh_nentries' },
    sum: { kind: 'bytes', offset: 17, size: SUM_BYTES, c: 'jrh_sum' },
    entries: { kind: 'bytes', offset: 25, size: GJ_RECORD_MAX_ENTRIES * JOURNAL_ENTRY.size, c: 'jrh_entries' },
  },
  { overflow: 'wrap' },
);

export interface JournalHeader {
  /** jh_journal_id */
  journalId: number;
  /** jh_journal_next_id: the id of the journal that will follow this one. */
  nextId: number;
}

export interface JournalEntry {
  /** je_joffset: where the entry's data sits on the journal provider. */
  joffset: number;
  /** je_offset: where the data belongs on the data provider. */
  offset: number;
  /** je_length, bytes. */
  length: number;
}

export interface RecordHeader {
  /** jrh_journal_id */
  journalId: number;
  /** jrh_sum: the first 8 bytes of the MD5 of the record's data (meaningful with CHECKSUM). */
  sum: Buffer;
  entries: JournalEntry[];
}

/** g_journal_header_encode into a zeroed sector. */
export function encodeJournalHeader(h: JournalHeader, sectorSize: number): Buffer {
  return JOURNAL_HEADER.encode({ magic: HEADER_MAGIC, journalId: h.journalId, nextId: h.nextId }, Buffer.alloc(sectorSize));
}

/** g_journal_header_decode: the header, or undefined when the magic is not "GJHDR\0". */
export function decodeJournalHeader(sector: Buffer): JournalHeader | undefined {
  const { get } = JOURNAL_HEADER;
  if (sector.length < JOURNAL_HEADER.size || !get.magic(sector, 0).equals(HEADER_MAGIC)) return undefined;
  return { journalId: get.journalId(sector, 0), nextId: get.nextId(sector, 0) };
}

/**
 * g_journal_record_header_encode into a zeroed sector: padding, unused entry
 * slots and (when `sum` is omitted) jrh_sum stay zero.
 */
export function encodeRecordHeader(r: { journalId: number; entries: readonly JournalEntry[]; sum?: Buffer }, sectorSize: number): Buffer {
  if (r.entries.length > GJ_RECORD_MAX_ENTRIES) {
    throw new RangeError(`a record holds at most ${GJ_RECORD_MAX_ENTRIES} entries, not ${r.entries.length}`);
  }
  const sector = Buffer.alloc(sectorSize);
  const { set } = RECORD_HEADER;
  set.magic(sector, 0, RECORD_MAGIC);
  set.journalId(sector, 0, r.journalId);
  set.nentries(sector, 0, r.entries.length);
  if (r.sum) set.sum(sector, 0, recordSum(r.sum));
  r.entries.forEach((e, i) => JOURNAL_ENTRY.encode(e, sector, ENTRIES_AT + i * JOURNAL_ENTRY.size));
  return sector;
}

export type RecordDecode = { ok: true; record: RecordHeader } | { ok: false; reason: string };

const ENTRIES_AT = RECORD_HEADER.offset.entries;

/**
 * g_journal_record_header_decode: magic "GJRHDR\0" and nentries ≤ 20, as the
 * kernel checks, plus entry values that fit in a double. Anything else is
 * "not a record" with the reason. Context checks (journal id, lengths,
 * bounds) are checkRecord's.
 */
export function decodeRecordHeader(sector: Buffer): RecordDecode {
  if (sector.length < RECORD_HEADER.size) return { ok: false, reason: `sector of ${sector.length} bytes is too short for a record header` };
  const { get } = RECORD_HEADER;
  if (!get.magic(sector, 0).equals(RECORD_MAGIC)) return { ok: false, reason: 'no GJRHDR magic' };
  const n = get.nentries(sector, 0);
  if (n > GJ_RECORD_MAX_ENTRIES) return { ok: false, reason: `${n} entries (at most ${GJ_RECORD_MAX_ENTRIES})` };
  const entries: JournalEntry[] = [];
  // u53 fields: two u32 reads each, no BigInt (a million entries' BigInts cost the walk a second).
  const { joffset: joffsetOf, offset: offsetOf, length: lengthOf } = JOURNAL_ENTRY.get;
  for (let i = 0; i < n; i++) {
    const at = ENTRIES_AT + i * JOURNAL_ENTRY.size;
    const joffset = joffsetOf(sector, at);
    const offset = offsetOf(sector, at);
    const length = lengthOf(sector, at);
    if (joffset < 0 || offset < 0 || length < 0) return { ok: false, reason: `entry ${i} has a value beyond 2^53` };
    entries.push({ joffset, offset, length });
  }
  return { ok: true, record: { journalId: get.journalId(sector, 0), sum: Buffer.from(get.sum(sector, 0)), entries } };
}

/** What a record at a given position must agree with to be one (journal.md, "open" step 4). */
export interface RecordContext {
  /** Where the record header was read. */
  recordOffset: number;
  /** The id of the journal being walked. */
  journalId: number;
  sectorSize: number;
  maxphys: number;
  /** md_jend: entry data may not run past it. */
  jend: number;
  /** The data area's size: every entry's target must lie inside [0, dataSize). */
  dataSize: number;
}

/**
 * journal.md's "not a record" rules, which the kernel does not check (it would
 * replay a stale record): the journal id, each entry's length (non-zero, a
 * sector multiple, at most maxphys), its data following the header
 * contiguously and ending by jend, and its target sector-aligned inside the
 * data area. Returns the reason, or undefined when the record is acceptable.
 */
export function checkRecord(r: RecordHeader, ctx: RecordContext): string | undefined {
  if (r.journalId !== ctx.journalId) return `journal id ${r.journalId} is not the current journal's ${ctx.journalId}`;
  let expected = ctx.recordOffset + ctx.sectorSize;
  // An index loop: entries() would allocate an iterator and a pair per entry, a million per large walk.
  for (let i = 0; i < r.entries.length; i++) {
    const e = r.entries[i] as JournalEntry;
    if (e.length === 0 || e.length % ctx.sectorSize !== 0) return `entry ${i} has length ${e.length}, not a positive multiple of ${ctx.sectorSize}`;
    if (e.length > ctx.maxphys) return `entry ${i} has length ${e.length}, over maxphys ${ctx.maxphys}`;
    if (e.joffset !== expected) return `entry ${i}'s data is at ${e.joffset}, not right after the previous data (${expected})`;
    if (e.joffset + e.length > ctx.jend) return `entry ${i}'s data runs past the journal's end ${ctx.jend}`;
    if (e.offset % ctx.sectorSize !== 0 || e.offset + e.length > ctx.dataSize) return `entry ${i}'s target ${e.offset}+${e.length} falls outside the data area`;
    expected += e.length;
  }
  return undefined;
}

/** The bytes a record occupies: its header sector and its entries' data. */
export function recordSize(r: RecordHeader, sectorSize: number): number {
  return r.entries.reduce((sum, e) => sum + e.length, sectorSize);
}

/** GJ_RECORD_MAX_SIZE: the largest record, a header plus 20 entries of maxphys (journal.md's RMAX). */
export function recordMaxSize(sectorSize: number, maxphys: number): number {
  return sectorSize + GJ_RECORD_MAX_ENTRIES * maxphys;
}

/**
 * GJ_VALIDATE_OFFSET: where a record or journal header meant for `offset`
 * actually goes — back to jstart when the largest record would not fit
 * before jend.
 */
export function validateOffset(offset: number, jstart: number, jend: number, sectorSize: number, maxphys: number): number {
  return offset + recordMaxSize(sectorSize, maxphys) >= jend ? jstart : offset;
}

/**
 * The smallest journal space (jend - jstart) that holds a journal header and
 * two maximal records without the wrap rule firing (journal.md, "Journal
 * space"): the second record starts at jstart + sector + RMAX and needs
 * jstart + sector + 2·RMAX < jend, so one more sector than that.
 */
export function minJournalSize(sectorSize: number, maxphys: number): number {
  return 2 * recordMaxSize(sectorSize, maxphys) + 2 * sectorSize;
}
