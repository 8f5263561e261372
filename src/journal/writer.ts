// The journal's write path, offline (g_journal.c: g_journal_add_current,
// g_journal_flush, g_journal_switch, g_journal_copy_*, g_journal_metadata_update;
// journal.md, "write", "Ordering", "Journal space").
//
// Requests go into the current queue (a range set: g_journal_insert's
// newest-wins in O(log n)); records of at most 20 entries, each at most
// maxphys (g_journal_optimize's combining), go to the active journal at the
// write position, wrap rule first. The writer, not a timer, decides when a
// journal ends: before any record would make the protected span too large
// (src/journal/space.ts), it finishes the active journal, copies the finished
// journals to the data image and moves the metadata to the newest of them —
// so one write far larger than the journal goes through, journal by journal.
//
// Ordering (every step an ordered write, barriers as journal.md lists them):
//   1. records -> barrier -> terminating header -> barrier -> (device CLEAN at
//      the start: metadata dirty, naming the first journal finished) -> barrier
//   2. copies -> barrier -> metadata naming the newest finished journal -> barrier
//   3. (sync) metadata CLEAN -> barrier
// The writer starts on a CLEAN device: opening replays or repairs first.

import { createHash } from 'node:crypto';
import { GeomError } from '../errors.js';
import { BlobCache, memoryExtent, sliceExtent, type Blob, type Extent } from './extent.js';
import { GJ_RECORD_MAX_ENTRIES, encodeJournalHeader, encodeRecordHeader, type JournalEntry } from './format.js';
import { RangeSet, type Range } from './rangeset.js';
import { copyToData, journalSource, mergeSets, type JournalIO, type JournalSource } from './replay.js';
import { JournalSpace } from './space.js';
import type { WalkGeometry } from './walk.js';

/** What a metadata update says (g_journal_metadata_update: md_joffset, md_jid, GJ_FLAG_CLEAN). */
export interface MetadataUpdate {
  clean: boolean;
  joffset: number;
  jid: number;
}

export interface WriterOptions {
  io: JournalIO;
  /** Image indexes in the engine (the same for a one-image journal). */
  data: number;
  journal: number;
  geo: WalkGeometry;
  maxphys: number;
  checksum: boolean;
  /** Bytes of written data kept in memory for the copy (--cache-limit). */
  cacheLimit: number;
  /** 32-bit random journal ids (arc4random). */
  random: () => number;
  /** One ordered write of the data image's metadata sector; the writer adds the barriers. */
  writeMetadata(m: MetadataUpdate): void;
}

interface ActiveJournal {
  /** Virtual offset of its header. */
  v: number;
  id: number;
  nextId: number;
  set: RangeSet<Extent>;
  records: number;
}

interface FinishedJournal {
  v: number;
  offset: number;
  id: number;
  set: RangeSet<Extent>;
}

/**
 * What a writer did: its own counters (--stats prints them after the
 * engine's), returned by finish() and sync().
 */
export interface WriterCounters {
  /** Bytes of queued writes that newer writes replaced before they reached a record. */
  skippedBytes: number;
  /** Records written to the journal. */
  records: number;
  /** Queued ranges gathered into a neighbour's record entry (g_journal_optimize). */
  combined: number;
  /** Journals finished (g_journal_switch). */
  switches: number;
  /** Of those, the ones a full journal space forced. */
  forcedSwitches: number;
}

/** Bytes of one record entry as they lie in memory; `keep`: whether they may stay cached for the copy (not lent). */
interface EntryPiece {
  data: Buffer;
  keep: boolean;
}

/** One entry of a record: `length` bytes at data offset `offset`, written from its pieces in order. */
interface RecordEntry {
  offset: number;
  length: number;
  pieces: EntryPiece[];
}

/** Where a journal was: its header's offset and id. */
export interface JournalRef {
  offset: number;
  id: number;
}

export class JournalWriter {
  private readonly o: WriterOptions;
  private readonly space: JournalSpace;
  private readonly ss: number;
  private readonly softLimit: number;
  private readonly cache: BlobCache;
  private readonly source: JournalSource;
  /** g_journal's sc_current_queue: written to no journal yet. */
  private readonly queue = new RangeSet<Extent>(sliceExtent);
  private active: ActiveJournal | undefined;
  /** Virtual write position (sc_journal_offset). */
  private vW = 0;
  /** The finished journal D's metadata names (dirty); undefined while CLEAN. */
  private named: (JournalRef & { v: number }) | undefined;
  /** Finished journals not yet copied, oldest first. */
  private finished: FinishedJournal[] = [];
  /** The newest journal finished by this writer. */
  private newestRef: JournalRef | undefined;
  private readonly counts: WriterCounters = { skippedBytes: 0, records: 0, combined: 0, switches: 0, forcedSwitches: 0 };

  constructor(o: WriterOptions) {
    this.o = o;
    this.ss = o.geo.sectorSize;
    this.space = new JournalSpace(o.geo.jstart, o.geo.jend, this.ss, o.maxphys);
    // Half the space keeps room for the next journal; the cache limit keeps
    // the copy in memory. Never below one maximal record.
    const half = Math.floor(this.space.size / 2 / this.ss) * this.ss;
    this.softLimit = Math.max(Math.min(half, o.cacheLimit), Math.min(half, this.space.rmax + 2 * this.ss));
    this.cache = new BlobCache(o.cacheLimit);
    this.source = journalSource(o.io, o.journal);
  }

  /** The maxphys records are cut to (entries of at most this many bytes). */
  get maxphys(): number {
    return this.o.maxphys;
  }

  /** The newest journal this writer finished (what CLEAN metadata names afterwards). */
  get newest(): JournalRef | undefined {
    return this.newestRef;
  }

  /** Whether D's metadata is dirty because of this writer. */
  get dirty(): boolean {
    return this.named !== undefined;
  }

  /** Finished journals not yet copied to the data image. */
  get pendingJournals(): number {
    return this.finished.length;
  }

  /**
   * Queues a write of the journaled provider (g_journal_add_current), which
   * takes ownership of `data` — or with `lent`, only borrows it: `data` must
   * stay unchanged until flush() (or a finish) and is not kept afterwards,
   * so a caller can refill one buffer again and again; copies then read the
   * bytes back from the journal. `offset` and the length are sector
   * multiples inside the data area; records go out as the queue fills.
   */
  write(offset: number, data: Buffer, lent = false): void {
    const { sectorSize: ss, dataSize } = this.o.geo;
    if (offset % ss !== 0 || data.length % ss !== 0 || offset < 0 || offset + data.length > dataSize) {
      throw new RangeError(`journal write of ${data.length} bytes at ${offset} is not sector-aligned inside the data area (${dataSize} bytes)`);
    }
    for (let o = 0; o < data.length; o += this.o.maxphys) {
      const piece = data.subarray(o, Math.min(o + this.o.maxphys, data.length));
      this.counts.skippedBytes += this.queue.insert(offset + o, offset + o + piece.length, memoryExtent(piece, lent));
    }
    while (this.queue.bytes >= this.space.rmax - this.ss || this.queue.size >= GJ_RECORD_MAX_ENTRIES) this.flushRecord();
  }

  /** What this writer has done so far. */
  get counters(): WriterCounters {
    return { ...this.counts };
  }

  /**
   * The end of a command's writes (Ordering 1): the last records, then the
   * header that finishes the active journal. Returns the counters.
   */
  finish(): WriterCounters {
    this.flush();
    this.finishActive();
    return this.counters;
  }

  /** Writes everything queued as records of the active journal (which stays open): lent buffers are free again. */
  flush(): void {
    while (this.queue.size > 0) this.flushRecord();
  }

  /** `sync`: finish, copy everything to the data image, mark CLEAN (Ordering 2 and 3). Returns the counters. */
  sync(): WriterCounters {
    this.finish();
    this.copyFinished();
    this.markClean();
    return this.counters;
  }

  /**
   * Sources for reads of the journaled provider, oldest first: finished
   * journals, the active journal, the current queue (g_journal_read's order, reversed).
   */
  overlays(): RangeSet<Extent>[] {
    return [...this.finished.map((f) => f.set), ...(this.active ? [this.active.set] : []), this.queue];
  }

  /** g_journal_initialize: a new journal header at jstart. */
  private initialize(): void {
    const id = this.o.random() >>> 0;
    this.active = { v: 0, id, nextId: this.o.random() >>> 0, set: new RangeSet(sliceExtent), records: 0 };
    this.o.io.writeOrdered(this.o.journal, this.o.geo.jstart, encodeJournalHeader({ journalId: id, nextId: this.active.nextId }, this.ss));
    this.vW = this.ss;
  }

  /** g_journal_flush: one record from the front of the current queue. */
  private flushRecord(): void {
    if (!this.active) this.initialize();
    const active = this.active as ActiveJournal;
    const limits = {
      at: this.vW,
      protectedStart: this.named?.v ?? active.v,
      activeStart: active.v,
      softLimit: this.softLimit,
      activeEmpty: active.records === 0,
    };
    const size = this.space.largestRecord(this.ss + this.queue.bytes, limits);
    if (size === 0) {
      if (active.records === 0) {
        throw new GeomError('CRITICAL', `journal space [${this.o.geo.jstart}, ${this.o.geo.jend}) has no room for a record at maxphys ${this.o.maxphys}`, 'the journal is too small for this maxphys');
      }
      // The protected span would grow too large: switch, copy, move the metadata.
      this.switchJournal();
      this.counts.forcedSwitches++;
      return;
    }
    this.writeRecord(active, this.takeEntries(size - this.ss));
  }

  /**
   * Up to 20 entries of at most maxphys each, `budget` bytes in all, from the
   * front of the queue, each as the pieces of memory it is written from.
   */
  private takeEntries(budget: number): RecordEntry[] {
    const out: RecordEntry[] = [];
    let left = budget;
    for (const run of this.queue.runs(this.o.maxphys)) {
      if (out.length === GJ_RECORD_MAX_ENTRIES || left < this.ss) break;
      const first = run[0] as Range<Extent>;
      const last = run[run.length - 1] as Range<Extent>;
      const len = Math.min(last.end - first.start, Math.floor(left / this.ss) * this.ss);
      out.push({ offset: first.start, length: len, pieces: this.piecesOf(run, first.start, len) });
      if (run.length > 1) this.counts.combined += run.length - 1;
      left -= len;
    }
    for (const e of out) this.queue.delete(e.offset, e.offset + e.length);
    return out;
  }

  /**
   * The first `len` bytes of touching in-memory ranges, each range the
   * buffer it is, one piece each: gathering them into one buffer cost a copy
   * of every byte and as many fresh pages (serve's nbdcopy into a journal,
   * bench/README.md). Owned pieces stay cached for the copy; lent ones are
   * the caller's again after the record, and the copy reads them back from
   * the journal.
   */
  private piecesOf(run: Range<Extent>[], start: number, len: number): EntryPiece[] {
    const end = start + len;
    return run
      .filter((r) => r.start < end)
      .map((r) => {
        const { blob, delta } = r.value;
        const d = delta + (Math.max(r.start, start) - r.start);
        return { data: (blob.data as Buffer).subarray(d, d + Math.min(r.end, end) - Math.max(r.start, start)), keep: blob.lent !== true };
      });
  }

  private writeRecord(active: ActiveJournal, entries: RecordEntry[]): void {
    const { io, journal } = this.o;
    const vStart = this.space.place(this.vW);
    const at = this.space.phys(vStart);
    let joffset = at + this.ss;
    const list: JournalEntry[] = [];
    const md5 = this.o.checksum ? createHash('md5') : undefined;
    for (const e of entries) {
      list.push({ joffset, offset: e.offset, length: e.length });
      for (const p of e.pieces) md5?.update(p.data);
      joffset += e.length;
    }
    const header = encodeRecordHeader({ journalId: active.id, entries: list, sum: md5?.digest() }, this.ss);
    io.writeOrdered(journal, at, header);
    entries.forEach((e, i) => {
      let j = (list[i] as JournalEntry).joffset;
      let o = e.offset;
      for (const p of e.pieces) {
        io.writeOrdered(journal, j, p.data);
        const blob: Blob = { data: p.keep ? p.data : undefined, joffset: j };
        active.set.insert(o, o + p.data.length, { blob, delta: 0 });
        this.cache.add(blob);
        j += p.data.length;
        o += p.data.length;
      }
    });
    active.records++;
    this.vW = vStart + (joffset - at);
    this.counts.records++;
  }

  /** g_journal_switch's first half: the header that finishes the active journal (Ordering 1). */
  private finishActive(): void {
    const active = this.active;
    if (!active || active.records === 0) return;
    const { io, journal, data } = this.o;
    io.barrier([journal]);
    const vT = this.space.place(this.vW);
    const nextId = this.o.random() >>> 0;
    io.writeOrdered(journal, this.space.phys(vT), encodeJournalHeader({ journalId: active.nextId, nextId }, this.ss));
    io.barrier([journal]);
    const ref = { v: active.v, offset: this.space.phys(active.v), id: active.id };
    this.finished.push({ ...ref, set: active.set });
    this.newestRef = { offset: ref.offset, id: ref.id };
    if (!this.named) {
      // The device was CLEAN: from now on the next open replays this journal.
      this.o.writeMetadata({ clean: false, joffset: ref.offset, jid: ref.id });
      io.barrier([data]);
      this.named = ref;
    }
    this.active = { v: vT, id: active.nextId, nextId, set: new RangeSet(sliceExtent), records: 0 };
    this.vW = vT + this.ss;
    this.counts.switches++;
  }

  /** Finish the active journal, copy, move the metadata: room for the next journal. */
  private switchJournal(): void {
    this.finishActive();
    this.copyFinished();
  }

  /**
   * Ordering 2: every finished journal to the data image, barrier, then the
   * metadata names the newest finished journal, barrier. Only then does the
   * protected span start there.
   */
  copyFinished(): void {
    const newest = this.finished[this.finished.length - 1];
    if (!newest) return;
    const { io, data } = this.o;
    const set = mergeSets(this.finished.map((f) => f.set)) as RangeSet<Extent>;
    copyToData(io, set, data, this.source);
    io.barrier([data]);
    if (!this.named || this.named.v !== newest.v) {
      this.o.writeMetadata({ clean: false, joffset: newest.offset, jid: newest.id });
      io.barrier([data]);
      this.named = { v: newest.v, offset: newest.offset, id: newest.id };
    }
    this.finished = [];
    this.cache.clear();
  }

  /**
   * Ordering 3: with everything copied, metadata CLEAN naming the newest
   * finished journal, barrier. A later write starts a new journal at jstart.
   */
  markClean(): void {
    if (!this.named) return;
    if (this.finished.length > 0 || this.queue.size > 0 || (this.active?.records ?? 0) > 0) {
      throw new Error('markClean with journal data not yet copied');
    }
    const ref = this.newestRef ?? this.named;
    this.o.writeMetadata({ clean: true, joffset: ref.offset, jid: ref.id });
    this.o.io.barrier([this.o.data]);
    this.named = undefined;
    this.active = undefined;
  }
}
