// The input of `journal write` (journal.md, "write"): bytes from a file or
// stdin, cut into requests of at most maxphys at sector-aligned offsets of the
// journaled provider, as GEOM hands them to g_journal_start. A final partial
// sector is completed with the provider's current bytes.

import { fstatSync } from 'node:fs';
import { GeomError, UsageError } from '../errors.js';
import type { JournalDevice } from './device.js';
import { alignedBuffer } from '../aligned.js';
import { byteCount } from '../size.js';
import { GJ_RECORD_MAX_ENTRIES } from './format.js';
import { readFully } from '../util/read-fully.js';
import type { WriterCounters } from './writer.js';

/** The input's size when it is a regular file (so "past the end" is refused before anything changes). */
export function inputSize(fd: number): number | undefined {
  const st = fstatSync(fd);
  return st.isFile() ? st.size : undefined;
}

/**
 * Checks that `length` bytes at `offset` fit in the journaled provider and
 * that the offset is a sector multiple (journal.md, "write").
 */
export function checkWriteRange(dev: JournalDevice, offset: number, length: number | undefined): void {
  if (offset % dev.sectorSize !== 0) throw new UsageError(`-o ${offset} is not a multiple of the ${dev.sectorSize}-byte sectors of ${dev.dataPath}.journal`, `use a multiple of ${dev.sectorSize}`);
  if (offset > dev.dataSize) throw new GeomError('REFUSED', `-o ${offset} is past the end of ${dev.dataPath}.journal (${dev.dataSize} bytes)`, `use an offset of at most ${dev.dataSize}`);
  if (length !== undefined && offset + length > dev.dataSize) {
    throw new GeomError('REFUSED', `writing ${byteCount(length)} at ${offset} passes the end of ${dev.dataPath}.journal (${dev.dataSize} bytes)`, 'give a smaller input or offset');
  }
}

/** What `journal write` did. */
export interface JournalWriteResult {
  /** Bytes of input written. */
  bytes: number;
  /** The maxphys its records were cut to. */
  maxphys: number;
  counters: WriterCounters;
}

/**
 * `journal write` (journal.md, "write"): the input through the journal at
 * `offset`, then the journal finished (Ordering 1); with `sync`, also copied
 * to the data image and the device marked CLEAN, as sync does. The device
 * must be CLEAN (recovered) first.
 */
export function writeJournal(dev: JournalDevice, fd: number, name: string, offset: number, o: { sync: boolean; onProgress?: (done: number) => void }): JournalWriteResult {
  const bytes = writeFromFd(dev, fd, name, offset, o.onProgress);
  const writer = dev.writer();
  const counters = o.sync ? writer.sync() : writer.finish();
  return { bytes, maxphys: writer.maxphys, counters };
}

/**
 * Streams `fd` into the device's writer at `offset`. Returns the bytes
 * written. The journal stays open: writeJournal finishes it.
 *
 * The input goes through one page-aligned buffer of a record's worth of
 * requests (src/aligned.ts), lent to the writer and reused once those
 * records are written: fresh memory for every request would cost a page
 * fault per 4 KiB — more than reading it back from the journal, which the
 * copy then does.
 */
export function writeFromFd(dev: JournalDevice, fd: number, name: string, offset: number, progress?: (done: number) => void): number {
  const size = inputSize(fd);
  checkWriteRange(dev, offset, size);
  const writer = dev.writer();
  const ss = dev.sectorSize;
  const request = Math.max(ss, Math.floor(writer.maxphys / ss) * ss);
  const arena = alignedBuffer(request * GJ_RECORD_MAX_ENTRIES);
  let used = 0;
  let done = 0;
  for (;;) {
    if (used + request > arena.length) {
      writer.flush();
      used = 0;
    }
    const buf = arena.subarray(used, used + request);
    const n = readFully(fd, buf, null, name);
    if (n === 0) break;
    const at = offset + done;
    const whole = Math.ceil(n / ss) * ss;
    if (at + whole > dev.dataSize) {
      throw new GeomError('REFUSED', `the input passes the end of ${dev.dataPath}.journal (${dev.dataSize} bytes) at ${at + n}`, 'the journals finished so far stay written; give a smaller input or offset');
    }
    if (whole > n) dev.read(at + n, whole - n).copy(buf, n);
    writer.write(at, buf.subarray(0, whole), true);
    used += whole;
    done += n;
    progress?.(done);
    if (n < request) break;
  }
  writer.flush();
  return done;
}
