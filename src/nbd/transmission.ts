// The transmission phase (proto.md, "Transmission"): requests one at a time
// per connection, each served synchronously by the provider — so every reply
// a client sees covers a completed request, and a FLUSH on any connection
// covers the writes completed on all of them (CAN_MULTI_CONN). Bad requests
// get an error reply and the connection goes on (serve.md, "Bad clients");
// only a bad magic, after which the stream cannot be trusted, ends it.

import type { Socket } from 'node:net';
import { alignedBuffer } from '../aligned.js';
import { GeomError } from '../errors.js';
import { readBytes, writeBytes, zeroBytes, type BlockProvider } from '../provider/block.js';
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
 * Read buffers of the usual request sizes, reused once the socket has sent
 * them: a fresh 256 KiB buffer per READ cost more in garbage collection than
 * the read itself.
 */
class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private static readonly KEEP = 16;

  take(length: number): Buffer {
    // Page-aligned: the kernel copies into it several times faster (src/aligned.ts).
    return this.free.get(length)?.pop() ?? alignedBuffer(length);
  }

  give(b: Buffer): void {
    const list = this.free.get(b.length) ?? [];
    if (list.length < BufferPool.KEEP) list.push(b);
    this.free.set(b.length, list);
  }
}

/**
 * Writes to the socket (header and data in one writev), waiting for it to
 * drain before the next request is read; `done` runs once the socket no
 * longer needs the pieces.
 */
async function sendAll(socket: Socket, pieces: Buffer[], done?: () => void): Promise<void> {
  socket.cork();
  pieces.forEach((p, i) => {
    socket.write(p, i === pieces.length - 1 && done ? () => done() : undefined);
  });
  socket.uncork();
  // Replies may queue up to MAX_QUEUED bytes while the kernel's socket buffer
  // (about 200 KiB, less than one 256 KiB read) drains: waiting for every
  // reply to leave before reading the next request left the server idle a
  // third of the time. Past it, a client that does not read its replies is
  // not read from until it does (serve.md, "Memory").
  if (socket.writableLength > MAX_QUEUED && !socket.destroyed) {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }
}

function errnoOf(err: unknown): number {
  if (err instanceof RequestError) return err.errno;
  if (err instanceof GeomError && err.code === 'NO_SPACE') return NBD_ERR.ENOSPC;
  return NBD_ERR.EIO;
}

/** Serves requests until DISC, the peer closing, a bad magic or the server stopping. */
export async function transmit(reader: SocketReader, socket: Socket, provider: BlockProvider, exp: ExportInfo, neg: Negotiated, hooks: TransmissionHooks): Promise<void> {
  const max = exp.blockSizes.maximum;
  const readOnly = !provider.writable;
  const pool = new BufferPool();
  for (;;) {
    if (hooks.stopping()) return;
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
        payload = await reader.read(r.length);
        if (readOnly) throw new RequestError(NBD_ERR.EPERM, 'read-only export');
      }
      reply = serve(provider, exp, neg, r, payload, pool);
    } catch (err) {
      if (!(err instanceof RequestError) && !(err instanceof GeomError) && !(err instanceof RangeError)) throw err;
      error = errnoOf(err);
      reply = errorReply(neg, r, error, (err as Error).message);
    }
    hooks.onRequest?.(r, error);
    const data = r.type === CMD.READ && error === 0 ? reply[reply.length - 1] : undefined;
    await sendAll(socket, reply, data ? () => pool.give(data) : undefined);
  }
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
function serve(p: BlockProvider, exp: ExportInfo, neg: Negotiated, r: Request, payload: Buffer | undefined, pool: BufferPool): Buffer[] {
  const fua = (r.flags & CMD_FLAG.FUA) !== 0;
  switch (r.type) {
    case CMD.READ: {
      if (r.length > exp.blockSizes.maximum) throw new RequestError(neg.structured ? NBD_ERR.EOVERFLOW : NBD_ERR.EINVAL, `read of ${r.length} bytes exceeds the maximum block size`);
      checkRange(exp, r, false);
      const data = pool.take(r.length);
      readBytes(p, r.offset, data);
      if (neg.structured) return [encodeOffsetDataHeader(REPLY_FLAG_DONE, r.cookie, r.offset, r.length), data];
      return [encodeSimpleReply(0, r.cookie), data];
    }
    case CMD.WRITE:
      checkRange(exp, r, true);
      writeBytes(p, r.offset, payload as Buffer, { fua });
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
