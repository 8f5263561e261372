// What a journal queue maps a data-provider range to: bytes held in memory,
// in the journal, or both — the kernel's bio with bio_data (possibly freed
// under memory pressure, g_journal_lowmem) and bio_joffset.
//
// Ranges of a RangeSet<Extent> share Blobs: when a newer write trims or splits
// an older range, the pieces keep pointing at the same Blob with different
// deltas, so evicting a Blob's data (the cache limit) frees the memory of every
// piece at once, and the pieces then read their bytes back from the journal.

import type { Slicer } from './rangeset.js';

export interface Blob {
  /** The bytes, while cached. */
  data: Buffer | undefined;
  /** Where the bytes sit on the journal provider; -1 while they are only in memory. */
  joffset: number;
  /** `data` is the caller's buffer, lent until its record is written and never kept after that. */
  readonly lent?: boolean;
}

export interface Extent {
  readonly blob: Blob;
  /** Offset of the range's first byte within the blob. */
  readonly delta: number;
}

export const sliceExtent: Slicer<Extent> = (e, d) => ({ blob: e.blob, delta: e.delta + d });

/** The journal provider itself, as one blob: a walk's extents point into it by delta, one object each. */
const JOURNAL: Blob = Object.freeze({ data: undefined, joffset: 0 }) as Blob;

/** An extent for bytes that are only in the journal (what g_journal_sync collects). */
export function journalExtent(joffset: number): Extent {
  return { blob: JOURNAL, delta: joffset };
}

/** An extent for bytes only in memory (the current queue); `lent`: see Blob. */
export function memoryExtent(data: Buffer, lent = false): Extent {
  return { blob: { data, joffset: -1, lent }, delta: 0 };
}

/**
 * A FIFO of cached blobs under a byte limit (kern.geom.journal.cache.limit):
 * the oldest blobs that are also in the journal lose their data first.
 */
export class BlobCache {
  private readonly fifo: Blob[] = [];
  private head = 0;
  private bytes = 0;
  evictions = 0;

  constructor(private readonly limit: number) {}

  get cachedBytes(): number {
    return this.bytes;
  }

  /** Adds a blob that is in the journal and in memory; evicts older ones beyond the limit. */
  add(blob: Blob): void {
    if (!blob.data) return;
    this.fifo.push(blob);
    this.bytes += blob.data.length;
    while (this.bytes > this.limit && this.head < this.fifo.length) {
      const old = this.fifo[this.head++] as Blob;
      if (old.data) {
        this.bytes -= old.data.length;
        old.data = undefined;
        this.evictions++;
      }
    }
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Forgets every blob (their data stays with whoever still holds them). */
  clear(): void {
    this.fifo.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}
