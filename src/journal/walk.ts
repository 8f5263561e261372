// g_journal_sync's walk (g_journal.c; journal.md, "open" steps 3 and 4): from
// the journal header md_joffset names, follow records and journal headers
// through the journal space, collecting the entries of every journal that
// finishes, and compute what a replay copies.
//
// Divergences from the kernel, all deliberate (journal.md):
// - Parsing is total: a sector that is not a well-formed record of the current
//   journal (checkRecord) nor the expected next header ends the walk; no read
//   ever leaves [jstart, jend).
// - The walk is bounded: it never consumes more than the journal space once
//   ("journal loops").
// - With CHECKSUM, the first record whose MD5 does not match ends the walk.
// - Both maxphys values can be tried (chooseWalk).
// - Entries go into range sets (O(log n)), not the kernel's sorted lists.

import { createHash } from 'node:crypto';
import { checkRecord, decodeJournalHeader, decodeRecordHeader, recordSize, recordSum, validateOffset, type JournalHeader, type RecordHeader } from './format.js';
import { journalExtent, sliceExtent, type Extent } from './extent.js';
import { EntryLog, newestWins } from './newest.js';
import { RangeSet } from './rangeset.js';
import { alignedBuffer } from '../util/aligned.js';
import { MAXPHYS_128K, MAXPHYS_1M } from '../util/maxphys.js';


/** Reads `length` bytes of the journal provider at `offset`. */
export type JournalRead = (offset: number, length: number) => Buffer;
/** Reads the journal provider at `offset` into all of `target`. */
export type JournalReadInto = (offset: number, target: Buffer) => void;
/**
 * Progress of a walk for a spinner (cli.md, "Progress"): journal bytes walked
 * so far out of `total`, the journal space once per walk (a second maxphys
 * walk raises the total). A walk usually ends long before the total.
 */
export type WalkProgress = (walked: number, total: number) => void;

export interface WalkGeometry {
  sectorSize: number;
  jstart: number;
  jend: number;
  /** The journaled provider's size: entries must target [0, dataSize). */
  dataSize: number;
}

export interface WalkStart {
  /** md_joffset */
  joffset: number;
  /** md_jid */
  jid: number;
}

export interface WalkOptions {
  maxphys: number;
  /** Verify each record's MD5 (the metadata's CHECKSUM flag). */
  checksum: boolean;
  /** Note whether a walk with this other maxphys could go differently (see Walk.divergent). */
  altMaxphys?: number;
  /** Keep every record for scan. */
  details?: boolean;
  /** Reads journal bytes into a buffer: with it, MD5s are computed through one reused buffer. */
  readInto?: JournalReadInto;
  /** Told the bytes of journal space walked so far, before each sector the walk reads. */
  onProgress?: (walked: number) => void;
}

export interface WalkRecord {
  offset: number;
  journalId: number;
  entries: number;
  /** Data bytes (the header sector excluded). */
  bytes: number;
  checksum: 'ok' | 'bad' | 'none';
}

export interface WalkJournal {
  /** Offset of the journal's header. */
  offset: number;
  id: number;
  nextId: number;
  /** Terminated by the header of its next journal. */
  finished: boolean;
  records: number;
  entries: number;
  bytes: number;
  /** With WalkOptions.details. */
  recordList?: WalkRecord[];
}

export type WalkEndReason =
  /** No journal header with md_jid at md_joffset. */
  | 'no-start'
  /** A sector that is neither a record of the current journal nor its expected successor's header. */
  | 'end'
  /** A record whose MD5 does not match (CHECKSUM). */
  | 'checksum'
  /** The walk covered the whole journal space. */
  | 'loops';

export interface Walk {
  maxphys: number;
  checksum: boolean;
  /** Every journal whose header the walk reached, in order; only the last may be unfinished. */
  journals: WalkJournal[];
  /** How many journals finished. */
  finished: number;
  /** Entries of the finished journals, later journals winning: data offset -> journal bytes. */
  replay: RangeSet<Extent>;
  end: { offset: number; reason: WalkEndReason; detail: string };
  /** The newest finished journal's header: what a replay's CLEAN metadata names. */
  newest?: { offset: number; id: number };
  /** The header that finished the newest journal: where a kernel would go on writing. */
  next?: { offset: number; id: number; nextId: number };
  /** Bytes of journal space from md_joffset through the header that finished the newest journal (wrap tails included). */
  finishedBytes: number;
  /** Whether a walk with altMaxphys could have gone differently: a wrap decision or an entry length that depends on maxphys. */
  divergent: boolean;
}

/**
 * MD5 of journal bytes, read piece by piece so a 20 MiB record never sits in
 * memory whole. With `into`, the pieces are 128 KiB in one reused buffer:
 * they are hashed while still in the CPU cache, and no fresh memory is
 * faulted in (together about a third of a checksummed replay's time).
 */
function md5Of(read: JournalRead, into: JournalReadInto | undefined, offset: number, length: number): Buffer {
  const h = createHash('md5');
  if (into) {
    const piece = (md5Piece ??= Buffer.allocUnsafe(128 * 1024));
    for (let o = 0; o < length; o += piece.length) {
      const data = piece.subarray(0, Math.min(piece.length, length - o));
      into(offset + o, data);
      h.update(data);
    }
    return h.digest();
  }
  const piece = 1024 * 1024;
  for (let o = 0; o < length; o += piece) h.update(read(offset + o, Math.min(piece, length - o)));
  return h.digest();
}

let md5Piece: Buffer | undefined;

/** The window the walk reads header sectors through (with WalkOptions.readInto). */
const HEADER_WINDOW = 128 * 1024;

/**
 * Reads of the sectors the walk decodes. With `readInto`, through a window of
 * HEADER_WINDOW bytes starting at the sector asked for, and never past `jend`:
 * a journal of small records (a million one-sector entries make 50,000
 * records of 10.5 KiB) costs one read per dozen records instead of one per
 * record — those system calls were a third of such a walk. A sector handed
 * out is a view of the window, good until the next call; the walk only
 * reads, so the window holds what the image holds.
 */
function sectorReader(read: JournalRead, readInto: JournalReadInto | undefined, jend: number): JournalRead {
  if (!readInto) return read;
  let window: Buffer | undefined;
  let start = 0;
  let end = 0;
  return (offset, length) => {
    if (offset < start || offset + length > end) {
      const n = Math.min(HEADER_WINDOW, jend - offset);
      if (n < length) return read(offset, length);
      window ??= alignedBuffer(HEADER_WINDOW);
      readInto(offset, window.subarray(0, n));
      start = offset;
      end = offset + n;
    }
    return (window as Buffer).subarray(offset - start, offset - start + length);
  };
}

/**
 * Walks the journal from `start` (g_journal_sync). Never throws for what it
 * reads; I/O errors from `read` propagate.
 */
export function walkJournal(read: JournalRead, geo: WalkGeometry, start: WalkStart, opts: WalkOptions): Walk {
  const walk: Walk = {
    maxphys: opts.maxphys,
    checksum: opts.checksum,
    journals: [],
    finished: 0,
    replay: new RangeSet(sliceExtent),
    end: { offset: start.joffset, reason: 'no-start', detail: '' },
    finishedBytes: 0,
    divergent: false,
  };
  const readSector = sectorReader(read, opts.readInto, geo.jend);
  const first = firstHeader(readSector, geo, start, walk);
  if (!first) return walk;
  const walker = new Walker(walk, read, readSector, geo, opts, newJournal(start.joffset, first.journalId, first.nextId, opts.details));
  walker.run();
  walker.computeReplay();
  return walk;
}

/** The journal header at md_joffset, when it is one with md_jid; otherwise undefined, and `walk.end` says why. */
function firstHeader(readSector: JournalRead, geo: WalkGeometry, start: WalkStart, walk: Walk): JournalHeader | undefined {
  const { sectorSize: ss, jstart, jend } = geo;
  const j0 = start.joffset;
  if (!(j0 >= jstart && j0 + ss <= jend && (j0 - jstart) % ss === 0)) {
    walk.end.detail = `md_joffset ${j0} is not a sector inside the journal space [${jstart}, ${jend})`;
    return undefined;
  }
  const first = decodeJournalHeader(readSector(j0, ss));
  if (!first || first.journalId !== start.jid) {
    walk.end.detail = first
      ? `the journal header at ${j0} has id ${first.journalId}, not md_jid ${start.jid}`
      : `no journal header at ${j0}`;
    return undefined;
  }
  return first;
}

/** One walk in progress: where it is, the journal it is in, and the entries collected so far. */
class Walker {
  private readonly ss: number;
  /** The journal space's size: the most the walk may consume. */
  private readonly space: number;
  /** Every entry in journal order; those before `finishedEntries` belong to finished journals. */
  private readonly log = new EntryLog();
  private finishedEntries = 0;
  /**
   * Bytes consumed since md_joffset, wrap tails included. The walk may
   * consume the journal space once; past that it would read its own start.
   */
  private dist: number;
  /** Where the next record or header is expected (before wrapping). */
  private pos: number;
  /**
   * A record failing its MD5 is damage only if its journal was finished: the
   * writer puts a barrier between a journal's records and the header that
   * finishes it, so a finished journal's records were all on disk. In the
   * unfinished last journal it is what a crash part way through a write
   * leaves, dropped with the rest of that journal like any unfinished tail.
   * So from a bad record the walk looks ahead, collecting nothing, for the
   * header that would finish its journal.
   */
  private badSum: { offset: number; detail: string } | undefined;

  constructor(
    private readonly walk: Walk,
    private readonly read: JournalRead,
    private readonly readSector: JournalRead,
    private readonly geo: WalkGeometry,
    private readonly opts: WalkOptions,
    /** The journal being walked. */
    private cur: WalkJournal,
  ) {
    this.ss = geo.sectorSize;
    this.space = geo.jend - geo.jstart;
    this.dist = this.ss;
    this.pos = cur.offset + this.ss;
    walk.journals.push(cur);
  }

  /** Follows records and journal headers until the walk ends (`walk.end` set). */
  run(): void {
    for (;;) {
      this.opts.onProgress?.(this.dist);
      const at = this.nextOffset();
      if (this.dist + this.ss > this.space) {
        this.endLoops(at);
        return;
      }
      const sector = this.readSector(at, this.ss);
      const decoded = decodeRecordHeader(sector);
      const goOn = decoded.ok ? this.takeRecord(at, decoded.record) : this.takeHeader(at, sector, decoded.reason);
      if (!goOn) return;
    }
  }

  /** Where the next sector is read: `pos`, or the journal start when the kernel's writer would have wrapped. */
  private nextOffset(): number {
    const { jstart, jend } = this.geo;
    const at = validateOffset(this.pos, jstart, jend, this.ss, this.opts.maxphys);
    if (this.opts.altMaxphys !== undefined && validateOffset(this.pos, jstart, jend, this.ss, this.opts.altMaxphys) !== at) this.walk.divergent = true;
    if (at !== this.pos) this.dist += jend - this.pos + (at - jstart);
    return at;
  }

  /** A well-formed record header at `at`: collects its entries (or skips it after a bad MD5). False when the walk ends. */
  private takeRecord(at: number, rec: RecordHeader): boolean {
    const { ss, opts } = this;
    const ctx = { recordOffset: at, journalId: this.cur.id, sectorSize: ss, maxphys: opts.maxphys, jend: this.geo.jend, dataSize: this.geo.dataSize };
    const bad = checkRecord(rec, ctx);
    if (opts.altMaxphys !== undefined && (bad === undefined) !== (checkRecord(rec, { ...ctx, maxphys: opts.altMaxphys }) === undefined)) {
      this.walk.divergent = true;
    }
    if (bad !== undefined) return this.end(at, `the record at ${at} is not one: ${bad}`);
    const size = recordSize(rec, ss);
    if (this.dist + size > this.space) return this.endLoops(at);
    if (this.badSum) return this.pass(at, size);
    const sum = opts.checksum ? sumMatches(this.read, opts.readInto, at + ss, size - ss, rec) : 'none';
    if (sum === 'bad') {
      this.cur.recordList?.push(recordOf(at, rec, size - ss, sum));
      this.badSum = { offset: at, detail: `the record at ${at} fails its MD5 checksum` };
      return this.pass(at, size);
    }
    for (const e of rec.entries) this.log.push(e.offset, e.offset + e.length, e.joffset);
    this.cur.records++;
    this.cur.entries += rec.entries.length;
    this.cur.bytes += size - ss;
    this.cur.recordList?.push(recordOf(at, rec, size - ss, sum));
    return this.pass(at, size);
  }

  /** A sector at `at` that is no record: the header that finishes the current journal, or the walk's end. */
  private takeHeader(at: number, sector: Buffer, notRecord: string): boolean {
    const h = decodeJournalHeader(sector);
    if (h && h.journalId === this.cur.nextId) {
      if (this.badSum) {
        this.walk.end = { offset: this.badSum.offset, reason: 'checksum', detail: this.badSum.detail };
        return false;
      }
      this.finishJournal(at, h);
      return this.pass(at, this.ss);
    }
    return this.end(
      at,
      h ? `the journal header at ${at} has id ${h.journalId}, not the expected ${this.cur.nextId}` : `nothing at ${at} is a record or a journal header (${notRecord})`,
    );
  }

  /** Found the termination: the journal just walked is finished, and `h` begins the next. */
  private finishJournal(at: number, h: JournalHeader): void {
    const { walk } = this;
    this.cur.finished = true;
    walk.finished++;
    this.finishedEntries = this.log.length;
    walk.newest = { offset: this.cur.offset, id: this.cur.id };
    walk.next = { offset: at, id: h.journalId, nextId: h.nextId };
    this.cur = newJournal(at, h.journalId, h.nextId, this.opts.details);
    walk.journals.push(this.cur);
    walk.finishedBytes = this.dist + this.ss;
  }

  /** Moves past the `size` bytes at `at`; the walk goes on. */
  private pass(at: number, size: number): true {
    this.dist += size;
    this.pos = at + size;
    return true;
  }

  /** The walk ends at `at` for `why` (or at an earlier bad MD5 in the unfinished tail). */
  private end(at: number, why: string): false {
    this.walk.end = this.badSum ? badInTail(this.badSum) : { offset: at, reason: 'end', detail: why };
    return false;
  }

  /** The walk ends at `at` having consumed the whole journal space. */
  private endLoops(at: number): false {
    this.walk.end = this.badSum ? badInTail(this.badSum) : { offset: at, reason: 'loops', detail: 'the walk covered the whole journal space (journal loops)' };
    return false;
  }

  /** What a replay copies: the finished journals' entries, later journals winning; entries after them are dropped. */
  computeReplay(): void {
    const r = newestWins(this.log, this.finishedEntries);
    this.walk.replay = RangeSet.fromSorted(sliceExtent, r.starts, r.ends, (i) => journalExtent(r.joffsets[i] as number));
  }
}

/** The walk's end when the first bad record was in the unfinished last journal. */
function badInTail(bad: { offset: number; detail: string }): Walk['end'] {
  return { offset: bad.offset, reason: 'end', detail: `${bad.detail}, in the unfinished last journal (a write cut short)` };
}

function newJournal(offset: number, id: number, nextId: number, details: boolean | undefined): WalkJournal {
  const j: WalkJournal = { offset, id, nextId, finished: false, records: 0, entries: 0, bytes: 0 };
  if (details) j.recordList = [];
  return j;
}

function recordOf(offset: number, rec: RecordHeader, bytes: number, checksum: WalkRecord['checksum']): WalkRecord {
  return { offset, journalId: rec.journalId, entries: rec.entries.length, bytes, checksum };
}

function sumMatches(read: JournalRead, into: JournalReadInto | undefined, offset: number, length: number, rec: RecordHeader): 'ok' | 'bad' {
  return recordSum(md5Of(read, into, offset, length)).equals(rec.sum) ? 'ok' : 'bad';
}

/** Whether two walks would copy the same bytes from the same journal places. */
export function sameReplay(a: Walk, b: Walk): boolean {
  if (a.replay.size !== b.replay.size || a.replay.bytes !== b.replay.bytes) return false;
  const ib = b.replay.entries();
  for (const ra of a.replay.entries()) {
    const rb = ib.next().value;
    if (!rb || rb.start !== ra.start || rb.end !== ra.end) return false;
    if (ra.value.blob.joffset + ra.value.delta !== rb.value.blob.joffset + rb.value.delta) return false;
  }
  return true;
}

export interface WalkChoice {
  /** The walk used. */
  walk: Walk;
  /** The walk with the other maxphys, when it went differently. */
  other?: Walk;
  /** The maxphys was given, not detected. */
  given: boolean;
  /**
   * Both walks finish as many journals yet would replay different things:
   * nothing on disk says which is right, so verbs that write refuse.
   */
  disagree: boolean;
  /**
   * The maxphys was given and `other` finishes more journals: detection
   * would replay journals this walk leaves behind, so a repair under the
   * given maxphys would throw them away. Verbs that write refuse, -f or not.
   */
  fewer: boolean;
}

/** The maxphys of FreeBSD's other world (1M and 128k); none for any other value (tests walk with small ones). */
function otherMaxphys(maxphys: number): number | undefined {
  if (maxphys === MAXPHYS_1M) return MAXPHYS_128K;
  if (maxphys === MAXPHYS_128K) return MAXPHYS_1M;
  return undefined;
}

/**
 * journal.md's maxphys rule: with `maxphys` given, its walk — and, when
 * anything on the way depends on maxphys, the other maxphys's walk too, so
 * that a given maxphys that finishes fewer journals than detection would is
 * known (WalkChoice.fewer) rather than taken for a broken journal. Otherwise walk
 * with 1 MiB and, when anything on the way depends on maxphys, with 128 KiB
 * too; use the walk that finishes more journals (1 MiB on a tie, unless only
 * the 128 KiB walk ended at a record failing its MD5). Walks that
 * finish different numbers of journals do not disagree: the one that stopped
 * early met a sector that only makes sense under the other maxphys.
 */
export function chooseWalk(
  read: JournalRead,
  geo: WalkGeometry,
  start: WalkStart,
  opts: { maxphys?: number; checksum: boolean; details?: boolean; readInto?: JournalReadInto; onProgress?: WalkProgress },
): WalkChoice {
  const base = { checksum: opts.checksum, details: opts.details, readInto: opts.readInto };
  const space = geo.jend - geo.jstart;
  const report = opts.onProgress;
  // The n-th walk (from 0) counts on from the walks before it. A walk ends
  // where the journals end, mostly short of the whole space: once it has
  // ended, it is done with the space, and the report says so.
  const walkNth = (n: number, o: { maxphys: number; altMaxphys?: number | undefined }): Walk => {
    const walk = walkJournal(read, geo, start, { ...base, ...o, ...(report ? { onProgress: (walked: number) => report(n * space + walked, (n + 1) * space) } : {}) });
    report?.((n + 1) * space, (n + 1) * space);
    return walk;
  };
  if (opts.maxphys !== undefined) {
    const alt = otherMaxphys(opts.maxphys);
    const walk = walkNth(0, { maxphys: opts.maxphys, altMaxphys: alt });
    if (alt === undefined || !walk.divergent) return { walk, given: true, disagree: false, fewer: false };
    const other = walkNth(1, { maxphys: alt });
    return { walk, other, given: true, disagree: false, fewer: other.finished > walk.finished };
  }
  const big = walkNth(0, { maxphys: MAXPHYS_1M, altMaxphys: MAXPHYS_128K });
  if (!big.divergent) return { walk: big, given: false, disagree: false, fewer: false };
  const small = walkNth(1, { maxphys: MAXPHYS_128K });
  // On a tie, a walk that ended at a record failing its MD5 found damage the
  // other one merely did not reach (e.g. a journal too small for 1 MiB records
  // wraps at once): prefer it, so that the damage is reported and repaired as such.
  const damaged = (w: Walk): boolean => w.end.reason === 'checksum';
  const walk = small.finished > big.finished || (small.finished === big.finished && damaged(small) && !damaged(big)) ? small : big;
  const other = walk === big ? small : big;
  const disagree = small.finished === big.finished && !sameReplay(big, small);
  return { walk, other, given: false, disagree, fewer: false };
}
