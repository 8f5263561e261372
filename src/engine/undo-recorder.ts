// The flush engine's undo recording (flush-engine.md, "The undo log"), after
// HAMMER's hammer_modify_buffer: the first time a VOLUME or META range is
// modified in a transaction its old bytes become an undo record. Records wait
// in memory until the flusher appends them to the transaction's log (created
// on the first append, deleted at the commit point).

import nodePath from 'node:path';
import type { EngineStats } from './types.js';
import { IntervalSet } from './sorted.js';
import { RECORD_HEADER, encodeRecord, type UndoImage } from './undo-format.js';
import { realPath, type LogStore } from './undo-store.js';
import { UndoLogWriter } from './undo-writer.js';
import { RegistryError, type UndoRegistry } from './undo-registry.js';
import type { ImageState } from './cache.js';
import type { ImageIo } from './image-io.js';
import { isZero } from '../util/zero.js';

interface PendingUndo {
  image: number;
  offset: number;
  length: number;
  /** undefined: the old bytes were all zero. */
  old: Buffer | undefined;
}

export class UndoRecorder {
  /** Per image, the ranges whose old bytes this transaction already recorded (HAMMER's undo history cache). */
  private readonly history: IntervalSet[];
  private pending: PendingUndo[] = [];
  private pendingSize = 0;
  private log: UndoLogWriter | undefined;

  constructor(
    private readonly store: LogStore,
    readonly path: string,
    private readonly images: readonly ImageState[],
    private readonly registry: UndoRegistry | undefined,
    private readonly stats: EngineStats,
    private readonly io: ImageIo,
  ) {
    this.history = images.map(() => new IntervalSet());
  }

  /** Bytes the pending records take in memory (counted against the cache limit). */
  get pendingBytes(): number {
    return this.pendingSize;
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** The log's path once the file exists (it may then hold records of this transaction). */
  get onDisk(): string | undefined {
    return this.log?.created ? this.log.path : undefined;
  }

  /** The parts of [from, to) of `image` whose old bytes this transaction has not recorded yet. */
  unrecorded(image: number, from: number, to: number): [number, number][] {
    return (this.history[image] as IntervalSet).gaps(from, to);
  }

  /** [from, to) of `image` is covered from now on (its gaps were just recorded). */
  covered(image: number, from: number, to: number): void {
    (this.history[image] as IntervalSet).add(from, to);
  }

  /** Records the old bytes of [offset, offset + old.length) of `image`. */
  record(image: number, offset: number, old: Buffer): void {
    const last = this.pending[this.pending.length - 1];
    if (isZero(old)) {
      // All-zero old bytes (a fresh map) need no payload, and neighbours share one record.
      if (last && last.old === undefined && last.image === image && last.offset + last.length === offset) {
        last.length += old.length;
        return;
      }
      this.pending.push({ image, offset, length: old.length, old: undefined });
      this.pendingSize += RECORD_HEADER;
      return;
    }
    this.pending.push({ image, offset, length: old.length, old: Buffer.from(old) });
    this.pendingSize += RECORD_HEADER + old.length;
  }

  /** Appends pending undo records to the log; with `sync`, makes the log durable. */
  append(sync: boolean): void {
    if (this.pending.length > 0) {
      this.log ??= new UndoLogWriter(this.store, this.path, this.undoImages(), this.registry);
      const log = this.log;
      const nonce = log.nonce;
      const buf = Buffer.concat(this.pending.map((r) => encodeRecord(nonce, r.image, r.offset, r.length, r.old)));
      let n: number;
      try {
        n = log.append(buf);
      } catch (err) {
        if (err instanceof RegistryError) {
          // Before the log and any image: nothing to roll back, and the error says what to fix.
          this.io.failure = err;
          throw err;
        }
        throw this.io.fail(err, log.path, 'write', undefined);
      }
      this.stats.writes.UNDO++;
      this.stats.writeBytes.UNDO += n;
      this.stats.undoRecords += this.pending.length;
      this.stats.undoBytes += buf.length;
      this.dropPending();
    }
    if (sync && this.log) {
      const log = this.log;
      try {
        this.stats.barriers += log.sync();
      } catch (err) {
        throw this.io.fail(err, log.path, 'fsync', undefined);
      }
    }
  }

  /** Forgets the records not yet appended. */
  dropPending(): void {
    this.pending = [];
    this.pendingSize = 0;
  }

  /** Deletes the log, if one was begun: the transaction's commit point. */
  remove(): void {
    const log = this.log;
    if (!log) return;
    try {
      log.remove();
    } catch (err) {
      throw this.io.fail(err, log.path, 'unlink', undefined);
    }
  }

  /** The transaction is over: the next modification starts a new history and a new log. */
  end(): void {
    this.log = undefined;
    for (const h of this.history) h.clear();
  }

  /** Closes the log file, which stays where it is. */
  close(): void {
    this.log?.close();
  }

  private undoImages(): UndoImage[] {
    return this.images.map(({ provider: p }) => ({ path: p.path, abs: realPath(p.path) ?? nodePath.resolve(p.path), size: p.size, dev: p.identity.dev, ino: p.identity.ino }));
  }
}
