// The data-moving passes of the class verbs, written once over the one
// provider interface (providers.md, "One interface"): `read` streams a range
// of any provider — an image, <data>.journal, virstor/<name>, a stack — to a
// sink, `export` copies a whole provider into a sparse file, and `write`
// puts a file at an offset. A class supplies the provider; what it holds
// underneath is not this module's business, as a GEOM consumer knows
// nothing of the class below it.

import { fstatSync } from 'node:fs';
import { GeomError, IoError, UsageError } from '../errors.js';
import { byteCount } from '../util/size.js';
import { readFully } from '../util/read-fully.js';
import { alignedBuffer } from '../util/aligned.js';
import { OutputFile } from './output-file.js';
import { readBytes, type BlockProvider, type WritePlan, type WriteSource } from '../provider/block.js';
import { isZero } from '../util/zero.js';

/** Export reads this much at a time: an eighth of the system calls of 128 KiB pieces. */
const EXPORT_PIECE = 1024 * 1024;
/** Write requests to a provider that does not borrow buffers: the engine copies or writes each at once. */
const WRITE_PIECE = 1024 * 1024;
/** extents() is asked about this much of the provider at once, so that its answer stays small. */
const EXTENT_WINDOW = 1024 * 1024 * 1024;

/** Where read puts the bytes: `write` gets each piece with its offset from the range's start. */
export interface Sink {
  /** Bytes per piece (pieceSizeFor: a pipe's or a file's). */
  readonly pieceSize: number;
  /** The piece is only valid during the call: its buffer is reused. */
  write(data: Buffer, at: number): void;
}

/** Refuses a range outside the provider: a caller's bug, since the verbs check their options first. */
function checkRange(p: BlockProvider, offset: number, length: number): void {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= p.mediaSize)) {
    throw new RangeError(`${p.name}: ${length} bytes at ${offset} are not inside its ${p.mediaSize} bytes`);
  }
}

/**
 * Hands [offset, offset + length) of `p` to `sink`, in order. Pieces end on
 * multiples of the piece size (a sector multiple), so that after a first
 * partial one every read is whole sectors into one page-aligned buffer
 * (src/util/aligned.ts): a fresh buffer per piece would cost a page fault per
 * 4 KiB. Only a partial sector at either end is read apart (readBytes).
 */
export function readRange(p: BlockProvider, offset: number, length: number, sink: Sink, onProgress?: (done: number) => void): void {
  checkRange(p, offset, length);
  const ss = p.sectorSize;
  const piece = Math.max(ss, Math.ceil(sink.pieceSize / ss) * ss);
  const end = offset + length;
  const buf = alignedBuffer(Math.min(piece, Math.ceil(length / ss) * ss));
  for (let at = offset; at < end; ) {
    const next = Math.min(end, (Math.floor(at / piece) + 1) * piece);
    const data = next - at === buf.length ? buf : buf.subarray(0, next - at);
    readBytes(p, at, data);
    sink.write(data, at - offset);
    onProgress?.(next - offset);
    at = next;
  }
}

/**
 * read's -O: the range into a file created (or truncated) at `path`. A
 * failure removes the file: a partial one must not pass for a whole one.
 */
export function readToFile(p: BlockProvider, offset: number, length: number, path: string, onProgress?: (done: number) => void): void {
  const file = new OutputFile(path);
  let complete = false;
  try {
    const sink: Sink = {
      pieceSize: file.pieceSize(),
      write(data, at) {
        try {
          file.write(data, at);
        } catch (err) {
          throw err instanceof IoError ? new IoError(path, 'write', at, err.errno, 'check the -O path and the room on its file system') : err;
        }
      },
    };
    readRange(p, offset, length, sink, onProgress);
    complete = true;
  } finally {
    if (complete) file.close();
    else file.discard();
  }
}

export interface ExportResult {
  /** The provider's size: the output file's size. */
  bytes: number;
  /** Bytes actually written (the rest are holes). */
  written: number;
  /** Bytes the provider reported as data rather than holes (a virstor's allocated chunks). */
  allocated: number;
}

/**
 * Writes the whole provider to `path` (created or truncated) as a sparse
 * file of its size: the provider's holes (extents()) are not read at all,
 * and runs of zero sectors in what is read stay holes too. The file is
 * made durable before it counts as done; a failure removes it.
 */
export function exportToFile(p: BlockProvider, path: string, onProgress?: (done: number) => void): ExportResult {
  const out = new OutputFile(path);
  const result: ExportResult = { bytes: p.mediaSize, written: 0, allocated: 0 };
  let complete = false;
  try {
    if (!out.isRegularFile()) throw new GeomError('REFUSED', `${path} is not a regular file`, 'export to a file');
    out.truncate(p.mediaSize);
    const buf = alignedBuffer(Math.min(EXPORT_PIECE, p.mediaSize));
    const put = (data: Buffer, at: number): void => {
      out.write(data, at);
      result.written += data.length;
    };
    for (let window = 0; window < p.mediaSize; window += EXTENT_WINDOW) {
      let at = window;
      for (const run of p.extents(window, Math.min(EXTENT_WINDOW, p.mediaSize - window))) {
        if (!run.hole) {
          result.allocated += run.length;
          exportRun(p, at, run.length, buf, put, onProgress);
        }
        at += run.length;
        onProgress?.(at);
      }
    }
    out.sync();
    complete = true;
  } finally {
    if (complete) out.close();
    else out.discard();
  }
  return result;
}

/** One allocated run of export: read in pieces, each run of non-zero sectors written. */
function exportRun(p: BlockProvider, offset: number, length: number, buf: Buffer, put: (data: Buffer, at: number) => void, onProgress?: (done: number) => void): void {
  const ss = p.sectorSize;
  for (let at = offset; at < offset + length; at += buf.length) {
    const data = buf.subarray(0, Math.min(buf.length, offset + length - at));
    readBytes(p, at, data);
    if (isZero(data)) {
      onProgress?.(at + data.length);
      continue;
    }
    let run = -1;
    for (let s = 0; s <= data.length; s += ss) {
      const zero = s === data.length || isZero(data.subarray(s, s + ss));
      if (!zero && run < 0) run = s;
      if (zero && run >= 0) {
        put(data.subarray(run, s), at + run);
        run = -1;
      }
    }
    onProgress?.(at + data.length);
  }
}

/** How writeFromFile writes to a provider that plans (BlockProvider.plan). */
export interface PlanOptions {
  /** All-zero input leaves unallocated space unallocated. */
  sparse?: boolean;
  /** Gets what the provider's plan() settled, before anything is written. */
  onPlan?: (plan: WritePlan) => void;
}

/** A regular file read at positions from its start (pread: where the file stands does not move): what plan() reads. */
function fileSource(fd: number, length: number, name: string): WriteSource {
  return {
    length,
    read(position, target) {
      const n = readFully(fd, target, position, name);
      if (n < target.length) throw new IoError(name, 'read', position + n, 'unexpected end of file');
    },
  };
}

/**
 * Writes the file `fd` (read from where it stands, to its end) at `offset`
 * of `p`, in requests as GEOM hands them to a class: whole sectors, the
 * last partial one completed with the provider's current bytes. A provider
 * that plans (BlockProvider.plan: a virstor) is shown the whole input first
 * — a regular file positioned at its start, as openInput gives — and may
 * refuse it before anything is written. A provider that lends
 * (BlockProvider.lending) gets requests of its size from one page-aligned
 * arena, refilled after each settle(); any other gets one buffer, refilled
 * after each write. A regular file too long for the provider is refused
 * before anything is written. Returns the bytes of input written; what
 * makes them durable (flush, close) is the caller's.
 */
export function writeFromFile(p: BlockProvider, fd: number, name: string, offset: number, onProgress?: (done: number) => void, opts: PlanOptions = {}): number {
  const st = fstatSync(fd);
  if (p.plan) opts.onPlan?.(p.plan(offset, fileSource(fd, st.size, name), { sparse: opts.sparse === true }));
  const ss = p.sectorSize;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % ss !== 0) throw new UsageError(`-o ${offset} is not a multiple of the ${ss}-byte sectors of ${p.name}`, `use a multiple of ${ss}`);
  if (st.isFile() && offset + st.size > p.mediaSize) {
    throw new GeomError('REFUSED', `writing ${byteCount(st.size)} at ${offset} passes the end of ${p.name} (${p.mediaSize} bytes)`, 'give a smaller input or offset');
  }
  const lending = p.lending;
  const request = lending ? Math.max(ss, Math.floor(lending.request / ss) * ss) : WRITE_PIECE;
  const arena = alignedBuffer(lending ? Math.max(request, Math.floor(lending.bytes / request) * request) : request);
  let used = 0;
  let done = 0;
  for (;;) {
    if (used + request > arena.length) {
      lending?.settle();
      used = 0;
    }
    const buf = arena.subarray(used, used + request);
    const n = readFully(fd, buf, null, name);
    if (n === 0) break;
    const at = offset + done;
    const whole = Math.ceil(n / ss) * ss;
    if (at + whole > p.mediaSize) throw new GeomError('REFUSED', `the input passes the end of ${p.name} (${p.mediaSize} bytes) at ${at + n}`, 'what was written before stays written; give a smaller input or offset');
    if (whole > n) readBytes(p, at + n, buf.subarray(n, whole));
    p.write(at, buf.subarray(0, whole), lending ? { lent: true } : {});
    used += whole;
    done += n;
    onProgress?.(done);
    if (n < request) break;
  }
  lending?.settle();
  return done;
}
