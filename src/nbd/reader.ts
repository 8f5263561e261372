// Reading exact byte counts from a stream socket, with bounded buffering: the
// socket is paused whenever more than HIGH_WATER bytes wait unread, so a
// client that floods requests (or stops reading replies, which stops us
// asking for more) cannot make the server hold more than that plus one
// request's payload (serve.md, "Memory").

import type { Socket } from 'node:net';

const HIGH_WATER = 4 * 1024 * 1024;

export class ConnectionClosed extends Error {
  constructor() {
    super('connection closed');
  }
}

export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private waiter: (() => void) | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered > HIGH_WATER) socket.pause();
      this.wake();
    });
    const end = (): void => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Exactly `n` bytes (one Buffer); ConnectionClosed if the peer goes first. */
  async read(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    await this.fill(n);
    return this.take(n);
  }

  /** Exactly `n` bytes into `target` (a write's payload, from the server's PayloadPool). */
  async readInto(n: number, target: Buffer): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    await this.fill(n);
    return this.take(n, target.subarray(0, n));
  }

  /** Waits until `n` bytes are buffered. */
  private async fill(n: number): Promise<void> {
    while (this.buffered < n) {
      if (this.ended) throw new ConnectionClosed();
      this.socket.resume();
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** Reads and drops `n` bytes in bounded pieces (an oversized payload). */
  async skip(n: number): Promise<void> {
    for (let left = n; left > 0; ) {
      const piece = Math.min(left, HIGH_WATER);
      await this.read(piece);
      left -= piece;
    }
  }

  /** The next `n` buffered bytes: a view of the first chunk when it holds them all and no `into` is given, else copied into `into` (or a new buffer). */
  private take(n: number, into?: Buffer): Buffer {
    let out: Buffer;
    const first = this.chunks[0] as Buffer;
    if (first.length >= n && !into) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = into ?? Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0] as Buffer;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    if (this.buffered <= HIGH_WATER) this.socket.resume();
    return out;
  }
}
