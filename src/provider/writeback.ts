// Starting an image's writeback early: the role of
// sync_file_range(SYNC_FILE_RANGE_WRITE), which Node does not offer. With
// gigabytes of RAM the kernel leaves hundreds of MiB dirty until a barrier's
// fsync, which then waits for all of it; a journal write waits twice (the
// journal, then the copy). An asynchronous fdatasync every WRITEBACK_EVERY
// bytes runs on libuv's thread pool while geomctl goes on writing, so the
// disk works during the CPU work and the barrier finds little left to do.
//
// It promises nothing — barrier() alone makes data durable — and it cannot
// reorder anything: the kernel may write any dirty page back at any moment
// anyway, so no ordering protocol (journal.md, flush-engine.md) relies on
// data staying in memory. Its errors are ignored here and still reach the
// barrier: the fdatasync runs on a second open file description of the
// image, and Linux (4.13+: errseq) reports a writeback error to every open
// file description that has not seen it, so it cannot swallow one that the
// barrier's fsync on the main descriptor must report. Opening and closing
// that second description leaves the image's flock(2) lock (lock.ts), which
// belongs to the first one, alone.

import fs from 'node:fs';
import type { ProviderIdentity } from './provider.js';
import { sameFile } from '../util/identity.js';

/**
 * Bytes written between two starts of writeback. Measured on a 256 MiB
 * `journal write --sync` (2 cores, ext4): none 2.4-2.5x dd, every 128 MiB
 * 2.3x, 32 MiB 2.1-2.2x, 2-8 MiB 1.9-2.0x — each fdatasync also slows the
 * writes it overlaps, so smaller steps than this gain nothing more.
 */
export const WRITEBACK_EVERY = 8 * 1024 * 1024;

export class Writeback {
  /** The second descriptor: undefined until first needed, -1 when unavailable. */
  private fd: number | undefined;
  private written = 0;
  /** fdatasyncs not yet called back: the descriptor stays open until they are. */
  private pending = 0;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly identity: ProviderIdentity,
    private readonly every = WRITEBACK_EVERY,
  ) {}

  /** Counts `bytes` written; every `every` bytes, starts writeback in the background. */
  wrote(bytes: number): void {
    this.written += bytes;
    if (this.written < this.every || this.closed) return;
    this.written = 0;
    const fd = this.descriptor();
    if (fd < 0) return;
    this.pending++;
    fs.fdatasync(fd, () => {
      this.pending--;
      if (this.closed && this.pending === 0) this.release();
    });
  }

  /** A barrier made everything durable: count afresh. */
  synced(): void {
    this.written = 0;
  }

  close(): void {
    this.closed = true;
    if (this.pending === 0) this.release();
  }

  /**
   * The image opened once more, read-only — by path, so only when it is
   * still the same file (device and inode).
   */
  private descriptor(): number {
    if (this.fd !== undefined) return this.fd;
    this.fd = -1;
    try {
      const fd = fs.openSync(this.path, fs.constants.O_RDONLY);
      const st = fs.fstatSync(fd);
      if (sameFile(st, this.identity)) this.fd = fd;
      else fs.closeSync(fd);
    } catch {
      // No second descriptor: the barrier does all the work, as without this.
    }
    return this.fd;
  }

  private release(): void {
    const fd = this.fd;
    this.fd = -1;
    if (fd === undefined || fd < 0) return;
    try {
      fs.closeSync(fd);
    } catch {
      // Nothing was written through it.
    }
  }
}
