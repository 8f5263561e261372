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

/** GJ_HEADER_MAGIC with its NUL: jh_magic is sizeof("GJHDR") = 6 bytes. */
const HEADER_MAGIC = Buffer.from('GJHDR\0', 'latin1');
/** GJ_RECORD_HEADER_MAGIC with its NUL: jrh_magic is sizeof("GJRHDR") = 7 bytes. */
const RECORD_MAGIC = Buffer.from('GJRHDR\0', 'latin1');

/** GJ_RECORD_HEADER_NENTRIES: a record header describes at most 20 entries. */
export const GJ_RECORD_MAX_ENTRIES = 20;

/** One table per structure: field offsets and sizes as the encoders write them. */
export const JOURNAL_HEADER_LAYOUT = {
  magic: { offset: 0, size: 6 },
  journalId: { offset: 6, size: 4 },
  nextId: { offset: 10, size: 4 },
} as const;

export const RECORD_HEADER_LAYOUT = {
  magic: { offset: 0, size: 7 },
  journalId: { offset: 7, size: 4 },
  /** g_journal_record_header_encode skips 8 bytes after the id: 4 bytes of padding. */
  padding: { offset: 11, size: 4 },
  nentries: { offset: 15, size: 2 },
  sum: { offset: 17, size: 8 },
  entries: { offset: 25, size: 24 * GJ_RECORD_MAX_ENTRIES },
} as const;

export const ENTRY_LAYOUT = {
  joffset: { offset: 0, size: 8 },
  offset: { offset: 8, size: 8 },
  length: { offset: 16, size: 8 },
  size: 24,
} as const;

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
  const sector = Buffer.alloc(sectorSize);
  HEADER_MAGIC.copy(sector, JOURNAL_HEADER_LAYOUT.magic.offset);
  sector.writeUInt32LE(h.journalId >>> 0, JOURNAL_HEADER_LAYOUT.journalId.offset);
  sector.writeUInt32LE(h.nextId >>> 0, JOURNAL_HEADER_LAYOUT.nextId.offset);
  return sector;
}

/** g_journal_header_decode: the header, or undefined when the magic is not "GJHDR\0". */
export function decodeJournalHeader(sector: Buffer): JournalHeader | undefined {
  if (sector.length < 14) return undefined;
  if (!sector.subarray(0, HEADER_MAGIC.length).equals(HEADER_MAGIC)) return undefined;
  return {
    journalId: sector.readUInt32LE(JOURNAL_HEADER_LAYOUT.journalId.offset),
    nextId: sector.readUInt32LE(JOURNAL_HEADER_LAYOUT.nextId.offset),
  };
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
  RECORD_MAGIC.copy(sector, RECORD_HEADER_LAYOUT.magic.offset);
  sector.writeUInt32LE(r.journalId >>> 0, RECORD_HEADER_LAYOUT.journalId.offset);
  sector.writeUInt16LE(r.entries.length, RECORD_HEADER_LAYOUT.nentries.offset);
  if (r.sum) r.sum.copy(sector, RECORD_HEADER_LAYOUT.sum.offset, 0, RECORD_HEADER_LAYOUT.sum.size);
  r.entries.forEach((e, i) => {
    const at = RECORD_HEADER_LAYOUT.entries.offset + i * ENTRY_LAYOUT.size;
    sector.writeBigUInt64LE(BigInt(e.joffset), at + ENTRY_LAYOUT.joffset.offset);
    sector.writeBigUInt64LE(BigInt(e.offset), at + ENTRY_LAYOUT.offset.offset);
    sector.writeBigUInt64LE(BigInt(e.length), at + ENTRY_LAYOUT.length.offset);
  });
  return sector;
}

/**
 * A little-endian u64 as a number when it is at most Number.MAX_SAFE_INTEGER,
 * else -1. Two u32 reads: a million entries' BigInts cost the walk a second.
 */
function readU53(b: Buffer, at: number): number {
  const hi = b.readUInt32LE(at + 4);
  // hi < 2^21 is every value below 2^53, and 2^53 - 1 is the largest safe one.
  return hi < 0x200000 ? hi * 0x100000000 + b.readUInt32LE(at) : -1;
}

export type RecordDecode = { ok: true; record: RecordHeader } | { ok: false; reason: string };

const RECORD_HEADER_BYTES = RECORD_HEADER_LAYOUT.entries.offset + RECORD_HEADER_LAYOUT.entries.size;

/**
 * g_journal_record_header_decode: magic "GJRHDR\0" and nentries ≤ 20, as the
 * kernel checks, plus entry values that fit in a double. Anything else is
 * "not a record" with the reason. Context checks (journal id, lengths,
 * bounds) are checkRecord's.
 */
export function decodeRecordHeader(sector: Buffer): RecordDecode {
  if (sector.length < RECORD_HEADER_BYTES) return { ok: false, reason: `sector of ${sector.length} bytes is too short for a record header` };
  if (!sector.subarray(0, RECORD_MAGIC.length).equals(RECORD_MAGIC)) return { ok: false, reason: 'no GJRHDR magic' };
  const n = sector.readUInt16LE(RECORD_HEADER_LAYOUT.nentries.offset);
  if (n > GJ_RECORD_MAX_ENTRIES) return { ok: false, reason: `${n} entries (at most ${GJ_RECORD_MAX_ENTRIES})` };
  const entries: JournalEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = RECORD_HEADER_LAYOUT.entries.offset + i * ENTRY_LAYOUT.size;
    const joffset = readU53(sector, at + ENTRY_LAYOUT.joffset.offset);
    const offset = readU53(sector, at + ENTRY_LAYOUT.offset.offset);
    const length = readU53(sector, at + ENTRY_LAYOUT.length.offset);
    if (joffset < 0 || offset < 0 || length < 0) return { ok: false, reason: `entry ${i} has a value beyond 2^53` };
    entries.push({ joffset, offset, length });
  }
  const sum = Buffer.from(sector.subarray(RECORD_HEADER_LAYOUT.sum.offset, RECORD_HEADER_LAYOUT.sum.offset + RECORD_HEADER_LAYOUT.sum.size));
  return { ok: true, record: { journalId: sector.readUInt32LE(RECORD_HEADER_LAYOUT.journalId.offset), sum, entries } };
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
