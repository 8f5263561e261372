// The flush engine's flusher (flush-engine.md, "Commit"), after HAMMER's
// hammer_flusher.c: it drains the modified-block trees in (image, offset)
// order, combining neighbours into one write; runs the commit cycle (DATA,
// undo + fsync, barrier, META and VOLUME, barrier, delete the undo log); and
// keeps memory under the cache limit (reclaim).

import { BlockCache, DATA, META, VOLUME } from './cache.js';
import type { ImageIo } from './image-io.js';
import type { UndoRecorder } from './undo-recorder.js';
import type { EngineStats } from './types.js';

/** Neighbouring dirty pieces waiting to go out as one write. */
interface Run {
  image: number;
  offset: number;
  length: number;
  pieces: Buffer[];
}

export class Flusher {
  /** Where a combined write's pieces are joined. */
  private readonly scratch: Buffer;

  constructor(
    private readonly cache: BlockCache,
    private readonly undo: UndoRecorder,
    private readonly io: ImageIo,
    private readonly stats: EngineStats,
    /** Memory limit: cached blocks plus pending undo records. */
    private readonly limit: number,
    /** The most bytes one combined write carries. */
    private readonly maxWrite: number,
  ) {
    this.scratch = Buffer.allocUnsafe(maxWrite);
  }

  /** Whether a commit has anything to do. */
  get dirty(): boolean {
    return this.cache.anyDirty || this.undo.hasPending || this.undo.onDisk !== undefined || this.io.anyFlushed;
  }

  /** One flush cycle (flush-engine.md, "Commit"); `final` ends the transaction at its commit point. */
  cycle(final: boolean): void {
    this.flushType(DATA);
    const meta = this.cache.dirtyBlocks(META) + this.cache.dirtyBlocks(VOLUME) > 0;
    this.undo.append(meta);
    this.io.barrier(this.io.flushedImages());
    this.flushType(META);
    this.flushType(VOLUME);
    this.io.barrier(this.io.flushedImages());
    if (!final) return;
    this.undo.remove();
    this.endTransaction();
  }

  endTransaction(): void {
    this.undo.end();
    this.io.metaOnDisk = false;
  }

  /**
   * Keeps memory under the limit: evict clean blocks (LRU); then write DATA
   * early; then append the pending undo; then run a whole cycle without its
   * commit point, so metadata reaches the images only after its undo is durable
   * and the log keeps growing until the transaction commits.
   */
  reclaim(): void {
    if (this.memory() <= this.limit) return;
    const low = Math.floor(this.limit / 2);
    this.evictClean(low);
    if (this.memory() <= this.limit || this.io.failure) return;
    if (this.cache.dirtyBlocks(DATA) > 0) {
      this.flushType(DATA);
      this.evictClean(low);
      if (this.memory() <= this.limit) return;
    }
    if (this.undo.hasPending) {
      this.undo.append(false);
      if (this.memory() <= this.limit) return;
    }
    if (this.cache.dirtyBlocks(META) + this.cache.dirtyBlocks(VOLUME) > 0) {
      this.cycle(false);
      this.evictClean(low);
    }
  }

  private memory(): number {
    return this.cache.cached + this.undo.pendingBytes;
  }

  /** Evicts clean blocks until memory is at most `target`. */
  private evictClean(target: number): void {
    this.cache.evictClean(target - this.undo.pendingBytes);
  }

  /** Writes every sector dirty as `code`, in (image, offset) order, neighbours combined. */
  private flushType(code: number): void {
    let run: Run | undefined;
    this.cache.drainDirty(code, (image, offset, piece) => {
      if (run && run.image === image && run.offset + run.length === offset && run.length + piece.length <= this.maxWrite) {
        run.pieces.push(piece);
        run.length += piece.length;
      } else {
        if (run) this.emit(run, code);
        run = { image, offset, length: piece.length, pieces: [piece] };
      }
    });
    if (run) this.emit(run, code);
  }

  private emit(run: Run, code: number): void {
    let data = run.pieces[0] as Buffer;
    if (run.pieces.length > 1) {
      let at = 0;
      for (const p of run.pieces) at += p.copy(this.scratch, at);
      data = this.scratch.subarray(0, at);
      this.stats.combined += run.pieces.length - 1;
    }
    this.io.write(run.image, run.offset, data, code);
  }
}
