// The flush engine's reads, writes and barriers of its images, counted in its
// stats, and the failure that stops it. A failed write or fsync makes the
// engine critical, as hammer_critical_error does: it writes nothing more and
// leaves the undo log for the next command to roll back.

import { GeomError, IoError, errnoOf } from '../errors.js';
import type { EngineStats } from './types.js';
import { META, type ImageState } from './cache.js';

/** Stats names of the write kinds by type code; code 0 is an ordered write. */
const NAME = ['ORDERED', 'DATA', 'META', 'VOLUME'] as const;

export class ImageIo {
  /** The failure that stopped the engine, if any. */
  failure: GeomError | undefined;
  /** Some VOLUME or META byte of this transaction was written to an image. */
  metaOnDisk = false;
  /** Images the flusher wrote since their last barrier. */
  private readonly flushed = new Set<number>();
  /** Images with ordered writes since their last barrier. */
  private readonly orderedWritten = new Set<number>();

  constructor(
    private readonly images: readonly ImageState[],
    private readonly stats: EngineStats,
    /** The undo log's path while it exists on disk: a failure's hint points at it. */
    private readonly undoLogOnDisk: () => string | undefined,
  ) {}

  get critical(): boolean {
    return this.failure?.code === 'IO';
  }

  /** Whether the flusher wrote an image since its last barrier. */
  get anyFlushed(): boolean {
    return this.flushed.size > 0;
  }

  /** The images the flusher wrote since their last barrier. */
  flushedImages(): number[] {
    return [...this.flushed];
  }

  /** Every image written since its last barrier (by the flusher or in order), ascending. */
  writtenImages(): number[] {
    return [...new Set([...this.flushed, ...this.orderedWritten])].sort((a, b) => a - b);
  }

  read(st: ImageState, offset: number, target: Buffer): void {
    st.provider.readInto(offset, target);
    this.stats.reads++;
    this.stats.readBytes += target.length;
  }

  /** Writes `data` at `offset` of `image` now, as type `code` (0: an ordered write). */
  write(image: number, offset: number, data: Buffer, code: number): void {
    const st = this.images[image] as ImageState;
    // Set first: a failed write may still have put part of its bytes on the disk.
    if (code >= META) this.metaOnDisk = true;
    try {
      st.provider.write(offset, data);
    } catch (err) {
      throw this.fail(err, st.provider.path, 'write', offset);
    }
    const kind = NAME[code] as keyof EngineStats['writes'];
    this.stats.writes[kind]++;
    this.stats.writeBytes[kind] += data.length;
    (code === 0 ? this.orderedWritten : this.flushed).add(image);
  }

  barrier(list: number[]): void {
    for (const i of list) {
      const st = this.images[i] as ImageState;
      try {
        st.provider.barrier();
      } catch (err) {
        throw this.fail(err, st.provider.path, 'fsync', undefined);
      }
      this.stats.barriers++;
      this.flushed.delete(i);
      this.orderedWritten.delete(i);
    }
  }

  /** hammer_critical_error: remember the failure, write nothing more, and say what happens next. */
  fail(err: unknown, path: string, op: string, offset: number | undefined): IoError {
    const errno = err instanceof IoError ? err.errno : errnoOf(err);
    const space = errno === 'ENOSPC' ? 'free space on its file system; ' : '';
    const log = this.undoLogOnDisk();
    const hint = log !== undefined
      ? `${space}the next geomctl command on these images rolls this one back (undo log ${log})`
      : `${space}geomctl wrote nothing more; fix the cause and run the command again`;
    const e = new IoError(path, op, offset, errno, hint);
    this.failure = e;
    return e;
  }
}
