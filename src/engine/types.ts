// The flush engine's public contract (spec: flush-engine.md). Every byte
// geomctl writes to an image goes through an engine; the journal and virstor
// classes never call Provider.write themselves.

import type { Provider } from '../provider/provider.js';

/** HAMMER's HAMMER_STRUCTURE_* for buffers (flush-engine.md, "Buffers"). UNDO is the engine's own. */
export type BufferType = 'VOLUME' | 'META' | 'DATA';

/** Counters, as HAMMER keeps them; printed by --stats. */
export interface EngineStats {
  reads: number;
  readBytes: number;
  writes: Record<BufferType | 'UNDO' | 'ORDERED', number>;
  writeBytes: Record<BufferType | 'UNDO' | 'ORDERED', number>;
  barriers: number;
  undoRecords: number;
  undoBytes: number;
  cacheHits: number;
  cacheMisses: number;
  evictions: number;
  combined: number;
}

export interface EngineOptions {
  /** The images of this command, already opened (and locked) by the session. Index = position. */
  providers: Provider[];
  /** Memory limit for cached buffers, bytes (--cache-limit; default 256 MiB). */
  cacheLimit: number;
}

/**
 * One command's view of its images. Reads see the command's own unwritten
 * changes. Writes of VOLUME and META bytes are covered by the undo log and
 * reach the disk only at commit(); DATA may reach it earlier (memory pressure),
 * in offset order; ordered writes reach it at once, in call order.
 */
export interface Engine {
  readonly providers: readonly Provider[];
  readonly stats: EngineStats;
  /** True once a write or barrier failed: nothing more is written (HAMMER's critical error). */
  readonly critical: boolean;

  /** Reads bytes through the cache (sector-aligned ranges of the image's media sector size). */
  read(image: number, offset: number, length: number): Buffer;
  /**
   * Changes bytes: hammer_modify_buffer + copy. For VOLUME and META the old
   * bytes of the range are recorded in the undo log the first time the range is
   * modified in this transaction. Aligned to the image's media sector size.
   */
  write(image: number, offset: number, data: Buffer, type: BufferType): void;
  /** An ordered write without undo (journal records, headers, metadata updates): written now. */
  writeOrdered(image: number, offset: number, data: Buffer): void;
  /** Barrier on the given images (default: every image written since its last barrier). */
  barrier(images?: number[]): void;
  /**
   * The commit cycle (flush-engine.md, "Commit"): DATA, undo + fsync, barrier,
   * META then VOLUME, barrier, delete the undo log. A no-op when nothing is dirty.
   */
  commit(): void;
  /**
   * Where [offset, offset + length) of an image may hold data, as ascending,
   * disjoint [start, end) ranges: the medium's data regions (SEEK_DATA) and
   * every cached block with changes not yet on it. Outside them the image
   * reads as zeros. Optional: without it a caller treats the range as data.
   */
  dataRegions?(image: number, offset: number, length: number): (readonly [number, number])[];
  /** Reads into `target` (all of it) from `offset`, through the cache, without allocating. */
  readInto(image: number, offset: number, target: Buffer): void;
  /**
   * Reads into `target` straight from the image, past the block cache, and
   * counts the read: for bytes only ordered writes change (a journal's
   * space), which reach the image at once, read in sizes the cache would
   * turn into extra reads and evictions. Refuses a range that a cached
   * block with changes not yet written overlaps: the image would be older.
   * Optional: an engine without a cache reads through readInto.
   */
  readUncached?(image: number, offset: number, target: Buffer): void;
  /**
   * readInto whose reads of the image run on libuv's thread pool: what the
   * cache holds is copied before it returns, the rest is read from the image
   * when the promise settles. A write made meanwhile may or may not show in
   * the bytes read from the image (as with two NBD requests in flight at
   * once), so callers use it only where the image's bytes under the read
   * change by writes to the same range alone. Optional: callers fall back to readInto.
   */
  readIntoAsync?(image: number, offset: number, target: Buffer): Promise<void>;
  /**
   * Gives up the transaction: dirty buffers are dropped; when no VOLUME or META
   * byte reached the disk the undo log is deleted, otherwise it stays so the
   * next command rolls the images back.
   */
  abort(): void;
  /** Closes the providers. Dirty, uncommitted buffers are dropped (the undo log, if any, stays). */
  close(): void;
}
