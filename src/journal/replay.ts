// Copying journaled data to the data provider (g_journal_copy_send /
// g_journal_copy_read_done / g_journal_copy_write_done) and reading the bytes
// a queue maps (g_journal_read's "in memory" and "in the journal" cases).
// Copies are ordered writes (journal.md, "Ordering"): the caller puts the
// barrier after them and only then moves the metadata.

import type { EngineStats } from '../engine/types.js';
import type { Provider } from '../provider/provider.js';
import type { Extent } from './extent.js';
import { orderBy } from './order.js';
import { alignedBuffer } from '../util/aligned.js';
import type { Range, RangeSet } from './rangeset.js';

/** What the journal needs of the flush engine. */
export interface JournalIO {
  readonly providers: readonly Provider[];
  read(image: number, offset: number, length: number): Buffer;
  readInto(image: number, offset: number, target: Buffer): void;
  readUncached?(image: number, offset: number, target: Buffer): void;
  writeOrdered(image: number, offset: number, data: Buffer): void;
  barrier(images?: number[]): void;
  readonly stats: EngineStats;
}

/** Copies are combined up to this many bytes per write (g_journal_optimize's limit is maxphys). */
export const COPY_CHUNK = 1024 * 1024;
/** Journal reads gathered within a copy batch: neighbours closer than this are read as one... */
const READ_GAP = 32 * 1024;
/** ... up to this many bytes per read. */
const READ_WINDOW = 1024 * 1024;
/** Copies to the data image fill gaps shorter than this (smaller than a file-system block). */
const GAP_FILL = 4096;

/** Reads of the journal image for copies and overlays. */
export interface JournalSource {
  read(offset: number, length: number): Buffer;
  /** Reads into `target` (all of it), without an intermediate buffer. */
  readInto(offset: number, target: Buffer): void;
}

/**
 * Bulk reads of journal bytes go past the engine's block cache
 * (Engine.readUncached): the journal space is only ever written by ordered
 * writes, which reach the image at once, so the cache holds nothing newer
 * there — and it would turn every unaligned 128 KiB read into three reads
 * and two evictions.
 */
export function directJournalRead(io: JournalIO, journal: number): (offset: number, length: number) => Buffer {
  const into = directJournalReadInto(io, journal);
  return (offset, length) => {
    if (length < DIRECT_READ) return io.read(journal, offset, length);
    const out = Buffer.allocUnsafe(length);
    into(offset, out);
    return out;
  };
}

function directJournalReadInto(io: JournalIO, journal: number): (offset: number, target: Buffer) => void {
  const uncached = uncachedReadInto(io, journal);
  return (offset, target) => {
    if (target.length < DIRECT_READ) io.read(journal, offset, target.length).copy(target);
    else uncached(offset, target);
  };
}

/** The engine's uncached read of the journal image, or its readInto where it has no cache to bypass. */
function uncachedReadInto(io: JournalIO, journal: number): (offset: number, target: Buffer) => void {
  if (!io.providers[journal]) throw new RangeError(`no journal image ${journal}`);
  const uncached = io.readUncached?.bind(io);
  if (uncached) return (offset, target) => uncached(journal, offset, target);
  return (offset, target) => io.readInto(journal, offset, target);
}

/**
 * Reads of the journal image that never go through the engine's block cache,
 * whatever their size: for a walk, which reads each record's header sector
 * once — through the cache, each would load a whole block of entry data.
 * (Sound for the reason directJournalRead gives.)
 */
export function rawJournalRead(io: JournalIO, journal: number): { read: (offset: number, length: number) => Buffer; readInto: (offset: number, target: Buffer) => void } {
  const readInto = uncachedReadInto(io, journal);
  return {
    read: (offset, length) => {
      const out = Buffer.allocUnsafe(length);
      readInto(offset, out);
      return out;
    },
    readInto,
  };
}

/** Reads at least this long bypass the engine's block cache (directJournalRead). */
const DIRECT_READ = 64 * 1024;

export function journalSource(io: JournalIO, journal: number): JournalSource {
  return { read: directJournalRead(io, journal), readInto: directJournalReadInto(io, journal) };
}

/**
 * Fills `out` (which stands for data-provider bytes from `base`) with the
 * bytes of `ranges`, from memory where cached, else from the journal image —
 * journal-contiguous neighbours in one read.
 */
export function fillFromExtents(src: JournalSource, ranges: Iterable<Range<Extent>>, out: Buffer, base: number): void {
  let pendingStart = -1; // journal offset of a read being gathered
  let pendingLen = 0;
  let pendingAt = 0; // where in `out` it goes
  const flush = (): void => {
    if (pendingLen === 0) return;
    src.readInto(pendingStart, out.subarray(pendingAt, pendingAt + pendingLen));
    pendingLen = 0;
  };
  for (const r of ranges) {
    const len = r.end - r.start;
    const at = r.start - base;
    const { blob, delta } = r.value;
    if (blob.data) {
      blob.data.copy(out, at, delta, delta + len);
      continue;
    }
    const joff = blob.joffset + delta;
    if (pendingLen > 0 && pendingStart + pendingLen === joff && pendingAt + pendingLen === at) {
      pendingLen += len;
      continue;
    }
    flush();
    pendingStart = joff;
    pendingLen = len;
    pendingAt = at;
  }
  flush();
}


/**
 * Copies every range of `set` to the data image (g_journal_copy_send and its
 * read-back of freed data), in batches of at most `batchBytes`: within a
 * batch the journal is read in journal order, nearby pieces in one read, and
 * the data image is written in offset order, touching neighbours combined up
 * to COPY_CHUNK. A journal of a million scattered entries thus costs a few
 * sequential passes over the journal, not a million scattered reads.
 * No barrier: the caller's. Returns the copy's counters.
 */
export function copyToData(io: JournalIO, set: RangeSet<Extent>, data: number, src: JournalSource, batchBytes = 64 * 1024 * 1024, onProgress?: (copied: number) => void): CopyCounters {
  // The arena holds at least any one range that is batched (shorter than STREAM_RANGE).
  const batch = new CopyBatch(Math.min(Math.max(batchBytes, STREAM_RANGE), set.bytes + set.size * GAP_FILL), set.size);
  const counters: CopyCounters = { bytes: 0, combined: 0 };
  const copyBatch = (): void => {
    counters.bytes += batch.bytes;
    counters.combined += batch.copy(io, data, src);
  };
  set.forEach((start, end, value) => {
    if (end - start >= STREAM_RANGE) {
      // Large ranges go straight through, piece by piece, in offset order.
      copyBatch();
      streamRange(io, data, src, start, end, value);
      counters.bytes += end - start;
      onProgress?.(counters.bytes);
      return;
    }
    if (batch.spanBytes > 0 && !batch.fits(end - start)) {
      copyBatch();
      onProgress?.(counters.bytes);
    }
    batch.add(start, end, value);
  });
  copyBatch();
  return counters;
}

/** What a copy did: the copier's own counters, which the command prints (not the engine's). */
export interface CopyCounters {
  /** Bytes copied to the data image. */
  bytes: number;
  /** Ranges written with a neighbour in one write of the data image. */
  combined: number;
}

/** Ranges at least this long are copied on their own, COPY_CHUNK at a time. */
const STREAM_RANGE = 256 * 1024;

/**
 * Journal bytes of large ranges pass through this one buffer: fresh ones
 * would cost a page fault per 4 KiB, more than the copy itself. Page-aligned,
 * so the kernel's copy into it runs at full speed (src/util/aligned.ts).
 */
let streamBuffer: Buffer | undefined;

function streamRange(io: JournalIO, data: number, src: JournalSource, start: number, end: number, e: Extent): void {
  for (let o = 0; o < end - start; o += COPY_CHUNK) {
    const len = Math.min(COPY_CHUNK, end - start - o);
    const d = e.delta + o;
    let bytes: Buffer;
    if (e.blob.data) bytes = e.blob.data.subarray(d, d + len);
    else {
      bytes = (streamBuffer ??= alignedBuffer(COPY_CHUNK)).subarray(0, len);
      src.readInto(e.blob.joffset + d, bytes);
    }
    io.writeOrdered(data, start + o, bytes);
  }
}

/**
 * One batch of a copy, in flat arrays (a million ranges make a lot of
 * garbage otherwise). The ranges are grouped into spans of the data image,
 * in offset order: touching ranges, and ranges less than GAP_FILL apart with
 * the data image's current bytes in between. Such a gap cannot hold a whole
 * 4 KiB file-system block, so filling it rewrites bytes already on disk and
 * allocates nothing in a sparse image — and a scattered journal costs a few
 * large writes instead of one per sector. Journal bytes are read in journal
 * order, nearby pieces in one read, straight into their spans.
 */
class CopyBatch {
  /** Per range: its data offset, length, and journal offset (-1 when its bytes are cached). */
  private readonly starts: Float64Array;
  private readonly lens: Float64Array;
  private readonly jofs: Float64Array;
  /** Per range: where in the arena its bytes go. */
  private readonly at: Float64Array;
  private n = 0;
  /** Cached ranges: index -> [bytes, offset in them]. */
  private cached = new Map<number, [Buffer, number]>();
  /** Bytes of the spans the ranges so far make (the batch's memory). */
  spanBytes = 0;
  /** Bytes of the ranges (what the copy moves). */
  bytes = 0;
  /**
   * One buffer the spans are carved from, with the window for journal reads
   * at its end, reused batch after batch: a million scattered entries would
   * otherwise allocate enough buffers to keep the garbage collector busy for
   * seconds — and pieces move from the window to their spans by copyWithin,
   * much cheaper than a Buffer.copy between two buffers.
   */
  private readonly arena: Buffer;
  /** Where the window starts in the arena. */
  private readonly windowAt: number;

  /** `capacity`: span bytes; `ranges`: the most ranges a batch can hold. */
  constructor(capacity: number, ranges: number) {
    this.windowAt = Math.max(capacity, GAP_FILL);
    this.arena = Buffer.allocUnsafe(this.windowAt + READ_WINDOW);
    this.starts = new Float64Array(ranges);
    this.lens = new Float64Array(ranges);
    this.jofs = new Float64Array(ranges);
    this.at = new Float64Array(ranges);
  }

  /** Whether a range of `length` more bytes still fits the arena. */
  fits(length: number): boolean {
    return this.spanBytes + GAP_FILL + length <= this.windowAt;
  }

  add(start: number, end: number, e: Extent): void {
    const i = this.n++;
    const prevEnd = i > 0 ? (this.starts[i - 1] as number) + (this.lens[i - 1] as number) : -Infinity;
    if (start - prevEnd < GAP_FILL) this.spanBytes += start - prevEnd;
    this.spanBytes += end - start;
    this.bytes += end - start;
    this.starts[i] = start;
    this.lens[i] = end - start;
    if (e.blob.data) {
      this.cached.set(i, [e.blob.data, e.delta]);
      this.jofs[i] = -1;
    } else this.jofs[i] = e.blob.joffset + e.delta;
  }

  /** Copies the batch; returns how many ranges went out with a neighbour (combined). */
  copy(io: JournalIO, data: number, src: JournalSource): number {
    const n = this.n;
    if (n === 0) return 0;
    let combined = 0;
    const { starts, lens, jofs, at, arena } = this;
    // Spans in offset order, carved from the arena: [data offset, arena offset, bytes].
    const spans: [number, number, number][] = [];
    let used = 0;
    for (let i = 0; i < n; ) {
      let j = i + 1;
      let gaps = false;
      const s0 = starts[i] as number;
      while (j < n) {
        const gap = (starts[j] as number) - ((starts[j - 1] as number) + (lens[j - 1] as number));
        if (gap >= GAP_FILL || (starts[j] as number) + (lens[j] as number) - s0 > COPY_CHUNK) break;
        if (gap > 0) gaps = true;
        j++;
      }
      const len = (starts[j - 1] as number) + (lens[j - 1] as number) - s0;
      if (gaps) io.readInto(data, s0, arena.subarray(used, used + len));
      spans.push([s0, used, len]);
      combined += j - i - 1;
      for (let k = i; k < j; k++) at[k] = used + (starts[k] as number) - s0;
      used += len;
      i = j;
    }
    for (const [i, [bytes, delta]] of this.cached) bytes.copy(arena, at[i] as number, delta, delta + (lens[i] as number));
    // Journal offsets in journal order; cached ranges (-1) sort first and are skipped.
    const order = orderBy(jofs.subarray(0, n).map((j) => (j < 0 ? 0 : j)), n);
    const w = this.windowAt;
    for (let k = 0; k < n; ) {
      const first = order[k] as number;
      if ((jofs[first] as number) < 0) {
        k++;
        continue;
      }
      // One read for this piece and the next ones that lie close behind it.
      const start = jofs[first] as number;
      let end = start + (lens[first] as number);
      let m = k + 1;
      while (m < n) {
        const i = order[m] as number;
        const s = jofs[i] as number;
        if (s < 0 || s - end > READ_GAP || s + (lens[i] as number) - start > READ_WINDOW) break;
        end = Math.max(end, s + (lens[i] as number));
        m++;
      }
      if (m === k + 1) {
        const a = at[first] as number;
        src.readInto(start, arena.subarray(a, a + (lens[first] as number)));
        k = m;
        continue;
      }
      src.readInto(start, arena.subarray(w, w + end - start));
      for (; k < m; k++) {
        const i = order[k] as number;
        const s = w + (jofs[i] as number) - start;
        arena.copyWithin(at[i] as number, s, s + (lens[i] as number));
      }
    }
    for (const [s0, a, len] of spans) io.writeOrdered(data, s0, arena.subarray(a, a + len));
    this.n = 0;
    this.cached.clear();
    this.spanBytes = 0;
    this.bytes = 0;
    return combined;
  }
}

/** Merges journals' entry sets, later sets winning (the inactive queue of several journals). */
export function mergeSets(sets: RangeSet<Extent>[]): RangeSet<Extent> | undefined {
  const [first, ...rest] = sets;
  if (!first) return undefined;
  for (const s of rest) for (const r of s.entries()) first.insert(r.start, r.end, r.value);
  return first;
}
