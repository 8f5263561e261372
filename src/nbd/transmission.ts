// The transmission phase (proto.md, "Transmission"): requests in order per
// connection. Writes, zero writes, flushes and block status are served
// synchronously, so every reply a client sees covers a completed request, and
// a FLUSH on any connection covers the writes completed on all of them
// (CAN_MULTI_CONN). Reads of a provider with readAsync run on libuv's thread
// pool while the next requests are read and served, and are answered as they
// complete (proto.md lets replies come in any order): one thread's preads in
// turn with its socket writes kept one core busy while nbdcopy's four
// connections waited (bench/README.md, "serve"). Bad requests get an error
// reply and the connection goes on (serve.md, "Bad clients"); only a bad
// magic, after which the stream cannot be trusted, ends it.

import type { Socket } from 'node:net';
import { alignedBuffer } from '../util/aligned.js';
import { GeomError } from '../errors.js';
import { readBytes, writeBytes, zeroBytes, type BlockProvider, type Lending, type WriteOpts } from '../provider/block.js';
import type { ExportInfo, Negotiated } from './handshake.js';
import {
  CMD,
  CMD_FLAG,
  NBD_ERR,
  REPLY_FLAG_DONE,
  REQUEST_HEADER_SIZE,
  REQUEST_MAGIC,
  STATE_HOLE,
  STATE_ZERO,
  decodeRequest,
  encodeBlockStatus,
  encodeErrorChunk,
  encodeOffsetDataHeader,
  encodeSimpleReply,
  type Extent,
  type Request,
} from './protocol.js';
import type { SocketReader } from './reader.js';

/** Reply bytes a connection may have queued in userland before it stops reading requests. */
const MAX_QUEUED = 8 * 1024 * 1024;
/** At most this many extents in one BLOCK_STATUS reply (clients ask again for the rest). */
const MAX_EXTENTS = 64 * 1024;

export interface TransmissionHooks {
  /** Called after each request, for the server's counters and logging. */
  onRequest?(r: Request, error: number): void;
  /** True once the server is stopping: no new request is read. */
  stopping(): boolean;
}

class RequestError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Buffers of the usual request sizes, reused: a fresh 256 KiB buffer per
 * request cost more in garbage collection and page faults than the request
 * itself. It keeps at most `limit` bytes, whatever sizes the clients send.
 */
class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private kept = 0;

  constructor(private readonly limit = MAX_QUEUED) {}

  take(length: number): Buffer {
    const b = this.free.get(length)?.pop();
    // Page-aligned: the kernel copies into it several times faster (src/util/aligned.ts).
    if (!b) return alignedBuffer(length);
    this.kept -= length;
    return b;
  }

  give(b: Buffer): void {
    if (this.kept + b.length > this.limit) return;
    const list = this.free.get(b.length);
    if (list) list.push(b);
    else this.free.set(b.length, [b]);
    this.kept += b.length;
  }

  /** Bytes kept for reuse. */
  get keptBytes(): number {
    return this.kept;
  }
}

/**
 * Write payloads, read into buffers of this pool and written from them
 * without a copy. A provider that borrows them (BlockProvider.lending: the
 * journal's, which writes its records from them) has them until it settles,
 * which it does after every `lending.bytes` lent; any other provider is done
 * with a payload when its write returns. A fresh page-aligned buffer per
 * payload cost a page fault per 4 KiB, and the journal kept each until its
 * journal was copied — the whole journal cache in memory (bench/README.md).
 * One per served provider: a settle frees the buffers of every connection.
 * The free buffers stay within a bound, whatever sizes the clients send.
 */
export class PayloadPool {
  private readonly free: BufferPool;
  private lent: Buffer[] = [];
  private lentBytes = 0;

  constructor(private readonly lending: Lending | undefined) {
    this.free = new BufferPool((lending?.bytes ?? 0) + MAX_QUEUED);
  }

  /** A buffer of `length` bytes to read a payload into (page-aligned: written from as it is). */
  take(length: number): Buffer {
    return this.free.take(length);
  }

  /**
   * Writes payload `b` through `write`, which hands it to the provider with
   * the options given. `b` is not reused before the provider is done with
   * it, even when `write` throws (a borrowing provider may hold part of it).
   */
  write(b: Buffer, write: (opts: WriteOpts) => void): void {
    this.lent.push(b);
    this.lentBytes += b.length;
    try {
      write(this.lending ? { lent: true } : {});
    } finally {
      if (!this.lending || this.lentBytes >= this.lending.bytes) this.settle();
    }
  }

  /** The provider is done with every payload: they go back to the pool. */
  private settle(): void {
    this.lending?.settle();
    for (const b of this.lent) this.free.give(b);
    this.lent = [];
    this.lentBytes = 0;
  }

  /** Bytes the provider still has, and bytes free in the pool (tests). */
  get usage(): { lent: number; free: number } {
    return { lent: this.lentBytes, free: this.free.keptBytes };
  }
}

/**
 * One connection's replies, written to the socket as they are ready, and the
 * bytes they hold — queued in the socket or still being read — bounded.
 * Replies may queue up to MAX_QUEUED bytes while the kernel's socket buffer
 * (about 200 KiB, less than one 256 KiB read) drains: waiting for every reply
 * to leave before reading the next request left the server idle a third of
 * the time. Past it, a client that does not read its replies is not read from
 * until it does (serve.md, "Memory").
 */
class Replies {
  /** Bytes of reads in flight. */
  private reading = 0;
  private readonly pending = new Set<Promise<void>>();
  private waiter: (() => void) | undefined;
  /** An unexpected failure (a bug) while answering a read: transmit rethrows it. */
  failure: unknown;

  constructor(private readonly socket: Socket) {
    const wake = (): void => this.wake();
    socket.on('drain', wake);
    socket.on('close', wake);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Writes header and data in one go; `done` runs once the socket no longer needs the pieces. */
  send(pieces: Buffer[], done?: () => void): void {
    if (this.socket.destroyed) {
      done?.();
      return;
    }
    this.socket.cork();
    pieces.forEach((p, i) => {
      this.socket.write(p, i === pieces.length - 1 && done ? () => done() : undefined);
    });
    this.socket.uncork();
  }

  /** A read of `bytes` in flight; `answer` sends its reply once it settles. */
  track(bytes: number, read: Promise<void>, answer: (err: unknown) => void): void {
    this.reading += bytes;
    const tracked: Promise<void> = read
      .then(
        () => answer(undefined),
        (err: unknown) => answer(err),
      )
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.reading -= bytes;
        this.pending.delete(tracked);
        this.wake();
      });
    this.pending.add(tracked);
  }

  /** Waits until the replies' bytes are back under the bound (or the socket is gone). */
  async room(): Promise<void> {
    while (this.reading + this.socket.writableLength > MAX_QUEUED && !this.socket.destroyed) {
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** Every read in flight has settled: its buffer and the provider's descriptors are free. */
  async drained(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }
}

function errnoOf(err: unknown): number {
  if (err instanceof RequestError) return err.errno;
  if (err instanceof GeomError && err.code === 'NO_SPACE') return NBD_ERR.ENOSPC;
  return NBD_ERR.EIO;
}

/** Serves requests until DISC, the peer closing, a bad magic or the server stopping; returns once no read is in flight. */
export async function transmit(reader: SocketReader, socket: Socket, provider: BlockProvider, exp: ExportInfo, neg: Negotiated, hooks: TransmissionHooks, payloads?: PayloadPool): Promise<void> {
  const replies = new Replies(socket);
  try {
    await serveRequests(reader, replies, provider, exp, neg, hooks, payloads);
  } finally {
    await replies.drained();
  }
  if (replies.failure !== undefined) throw replies.failure;
}

async function serveRequests(reader: SocketReader, replies: Replies, provider: BlockProvider, exp: ExportInfo, neg: Negotiated, hooks: TransmissionHooks, payloads?: PayloadPool): Promise<void> {
  const max = exp.blockSizes.maximum;
  const readOnly = !provider.writable;
  const pool = new BufferPool();
  for (;;) {
    if (hooks.stopping() || replies.failure !== undefined) return;
    const r = decodeRequest(await reader.read(REQUEST_HEADER_SIZE));
    if (r.magic !== REQUEST_MAGIC) return;
    if (r.type === CMD.DISC) return;
    let payload: Buffer | undefined;
    let error = 0;
    let reply: Buffer[] = [];
    try {
      if (r.type === CMD.WRITE) {
        // The payload is consumed whatever happens, never held whole past the maximum.
        if (r.length > max) {
          await reader.skip(r.length);
          throw new RequestError(NBD_ERR.EINVAL, `write of ${r.length} bytes exceeds the maximum block size ${max}`);
        }
        payload = payloads ? await reader.readInto(r.length, payloads.take(r.length)) : await reader.read(r.length);
        if (readOnly) throw new RequestError(NBD_ERR.EPERM, 'read-only export');
      }
      if (r.type === CMD.READ && provider.readAsync && wholeSectors(provider, r)) {
        checkRead(exp, neg, r);
        const data = pool.take(r.length);
        replies.track(r.length, provider.readAsync(r.offset, data), (err) => {
          if (err !== undefined && !isRequestFailure(err)) throw err;
          const e = err === undefined ? 0 : errnoOf(err);
          hooks.onRequest?.(r, e);
          if (e === 0) replies.send(readReply(neg, r, data), () => pool.give(data));
          else {
            pool.give(data);
            replies.send(errorReply(neg, r, e, (err as Error).message));
          }
        });
        await replies.room();
        continue;
      }
      reply = serve(provider, exp, neg, r, payload, pool, payloads);
    } catch (err) {
      if (!isRequestFailure(err)) throw err;
      error = errnoOf(err);
      reply = errorReply(neg, r, error, (err as Error).message);
    }
    hooks.onRequest?.(r, error);
    const data = r.type === CMD.READ && error === 0 ? reply[reply.length - 1] : undefined;
    replies.send(reply, data ? () => pool.give(data) : undefined);
    await replies.room();
  }
}

/** Failures that are the request's own (an error reply), not the server's. */
function isRequestFailure(err: unknown): boolean {
  return err instanceof RequestError || err instanceof GeomError || err instanceof RangeError;
}

/** Whether a request covers whole sectors, so the provider reads it in place. */
function wholeSectors(p: BlockProvider, r: Request): boolean {
  return r.offset % p.sectorSize === 0 && r.length % p.sectorSize === 0;
}

function readReply(neg: Negotiated, r: Request, data: Buffer): Buffer[] {
  if (neg.structured) return [encodeOffsetDataHeader(REPLY_FLAG_DONE, r.cookie, r.offset, r.length), data];
  return [encodeSimpleReply(0, r.cookie), data];
}

function checkRead(exp: ExportInfo, neg: Negotiated, r: Request): void {
  if (r.length > exp.blockSizes.maximum) throw new RequestError(neg.structured ? NBD_ERR.EOVERFLOW : NBD_ERR.EINVAL, `read of ${r.length} bytes exceeds the maximum block size`);
  checkRange(exp, r, false);
}

function errorReply(neg: Negotiated, r: Request, error: number, message: string): Buffer[] {
  const structuredOnly = r.type === CMD.READ || r.type === CMD.BLOCK_STATUS;
  return neg.structured && structuredOnly ? [encodeErrorChunk(r.cookie, error, message)] : [encodeSimpleReply(error, r.cookie)];
}

function checkRange(exp: ExportInfo, r: Request, writing: boolean): void {
  if (r.length === 0) throw new RequestError(NBD_ERR.EINVAL, 'zero-length request');
  if (r.offset + r.length > exp.size) {
    throw new RequestError(writing ? NBD_ERR.ENOSPC : NBD_ERR.EINVAL, `request [${r.offset}, +${r.length}) passes the end of the export (${exp.size} bytes)`);
  }
}

/** One request's effect and its reply pieces. Throws RequestError or the provider's errors. */
function serve(p: BlockProvider, exp: ExportInfo, neg: Negotiated, r: Request, payload: Buffer | undefined, pool: BufferPool, payloads?: PayloadPool): Buffer[] {
  const fua = (r.flags & CMD_FLAG.FUA) !== 0;
  switch (r.type) {
    case CMD.READ: {
      checkRead(exp, neg, r);
      const data = pool.take(r.length);
      try {
        readBytes(p, r.offset, data);
      } catch (err) {
        pool.give(data);
        throw err;
      }
      return readReply(neg, r, data);
    }
    case CMD.WRITE:
      checkRange(exp, r, true);
      if (payloads) payloads.write(payload as Buffer, (opts) => writeBytes(p, r.offset, payload as Buffer, { fua, ...opts }));
      else writeBytes(p, r.offset, payload as Buffer, { fua });
      return [encodeSimpleReply(0, r.cookie)];
    case CMD.WRITE_ZEROES:
      if (!p.writable) throw new RequestError(NBD_ERR.EPERM, 'read-only export');
      checkRange(exp, r, true);
      zeroBytes(p, r.offset, r.length, { fua });
      return [encodeSimpleReply(0, r.cookie)];
    case CMD.FLUSH:
      if (p.writable) p.flush();
      return [encodeSimpleReply(0, r.cookie)];
    case CMD.BLOCK_STATUS: {
      if (!neg.structured || neg.allocationContext === undefined) throw new RequestError(NBD_ERR.EINVAL, 'no meta context was negotiated');
      checkRange(exp, r, false);
      const extents = blockStatus(p, r.offset, r.length, (r.flags & CMD_FLAG.REQ_ONE) !== 0);
      return [encodeBlockStatus(REPLY_FLAG_DONE, r.cookie, neg.allocationContext, extents)];
    }
    default:
      throw new RequestError(NBD_ERR.EINVAL, `command ${r.type} is not supported`);
  }
}

/** base:allocation extents of [offset, offset + length): the provider's runs clipped to the request, neighbours merged. */
export function blockStatus(p: BlockProvider, offset: number, length: number, one: boolean): Extent[] {
  const ss = p.sectorSize;
  const start = Math.floor(offset / ss) * ss;
  const end = Math.min(p.mediaSize, Math.ceil((offset + length) / ss) * ss);
  const out: Extent[] = [];
  let at = start;
  for (const run of p.extents(start, end - start)) {
    const s = Math.max(at, offset);
    const e = Math.min(at + run.length, offset + length);
    at += run.length;
    if (e <= s) continue;
    const flags = run.hole ? STATE_HOLE | STATE_ZERO : 0;
    const last = out[out.length - 1];
    if (last && last.flags === flags) last.length += e - s;
    else out.push({ length: e - s, flags });
    if (out.length >= MAX_EXTENTS) break;
  }
  return one ? out.slice(0, 1) : out;
}
