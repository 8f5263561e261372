// The NBD server's transmission phase with reads in flight (src/nbd/
// transmission.ts): a provider whose readAsync settles when the test says,
// and a client speaking the protocol byte by byte over a Unix socket. Reads
// are answered as they complete, each with its own cookie and bytes, and a
// stop waits for the reads in flight before it closes the provider (whose
// descriptors they use).

import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockProvider } from '../../src/provider/block.js';
import { CMD, CLIENT_FLAG_FIXED_NEWSTYLE, CLIENT_FLAG_NO_ZEROES, IHAVEOPT, OPT, SIMPLE_REPLY_MAGIC, encodeRequest } from '../../src/nbd/protocol.js';
import { NbdServer, exportInfo } from '../../src/nbd/server.js';

const SIZE = 1024 * 1024;

/** A read-only provider whose asynchronous reads wait for the test to release them. */
function slowProvider(): { provider: BlockProvider; pending: (() => void)[]; closed: () => boolean } {
  const pending: (() => void)[] = [];
  let closed = false;
  const fill = (offset: number, target: Buffer): void => {
    for (let i = 0; i < target.length; i++) target[i] = (offset + i) % 251;
  };
  const provider: BlockProvider = {
    name: 'slow.img',
    mediaSize: SIZE,
    sectorSize: 512,
    writable: false,
    read: fill,
    readAsync: (offset, target) =>
      new Promise((resolve) => {
        pending.push(() => {
          if (closed) throw new Error('read after close');
          fill(offset, target);
          resolve();
        });
      }),
    write: () => {},
    zero: () => {},
    flush: () => {},
    extents: (_offset, length) => [{ length, hole: false }],
    close: () => {
      closed = true;
    },
  };
  return { provider, pending, closed: () => closed };
}

/** A client that reads exact byte counts off the socket. */
class Client {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) await new Promise<void>((r) => (this.wake = r));
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Fixed newstyle, no zeroes, NBD_OPT_EXPORT_NAME of the default export: simple replies. */
  async handshake(): Promise<void> {
    await this.read(18);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
    const opt = Buffer.alloc(16);
    opt.writeBigUInt64BE(IHAVEOPT, 0);
    opt.writeUInt32BE(OPT.EXPORT_NAME, 8);
    opt.writeUInt32BE(0, 12);
    this.socket.write(Buffer.concat([flags, opt]));
    await this.read(10);
  }

  read512(cookie: number, offset: number): void {
    const c = Buffer.alloc(8);
    c.writeUInt32BE(cookie, 4);
    this.socket.write(encodeRequest({ type: CMD.READ, cookie: c, offset, length: 512 }));
  }

  /** One simple reply to a 512-byte read: its cookie and data. */
  async reply(): Promise<{ cookie: number; error: number; data: Buffer }> {
    const h = await this.read(16);
    expect(h.readUInt32BE(0)).toBe(SIMPLE_REPLY_MAGIC);
    const error = h.readUInt32BE(4);
    return { cookie: h.readUInt32BE(12), error, data: error === 0 ? await this.read(512) : Buffer.alloc(0) };
  }
}

const expected = (offset: number): Buffer => Buffer.from(Array.from({ length: 512 }, (_, i) => (offset + i) % 251));
const ticks = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('NBD transmission with reads in flight', () => {
  let dir: string;
  let server: NbdServer | undefined;
  let client: Client | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'geomctl-nbd-tx-'));
  });
  afterEach(async () => {
    client?.socket.destroy();
    await server?.stop();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(provider: BlockProvider): Promise<Client> {
    server = new NbdServer(provider, exportInfo(provider, 'slow.img'));
    const sock = join(dir, 's.sock');
    await server.listen({ unix: sock });
    const socket = connect(sock);
    await new Promise((r) => socket.once('connect', r));
    client = new Client(socket);
    await client.handshake();
    return client;
  }

  it('answers pipelined reads as they complete, each with its cookie and bytes', async () => {
    const slow = slowProvider();
    const c = await serve(slow.provider);
    c.read512(1, 0);
    c.read512(2, 4096);
    while (slow.pending.length < 2) await ticks(1);
    // The second read completes first, and is answered first.
    slow.pending[1]?.();
    const first = await c.reply();
    expect(first).toEqual({ cookie: 2, error: 0, data: expected(4096) });
    slow.pending[0]?.();
    expect(await c.reply()).toEqual({ cookie: 1, error: 0, data: expected(0) });
  });

  it('a stop waits for the reads in flight before it closes the provider', async () => {
    const slow = slowProvider();
    const c = await serve(slow.provider);
    c.read512(7, 512);
    while (slow.pending.length < 1) await ticks(1);
    const stopped = server?.stop();
    await ticks(20);
    expect(slow.closed()).toBe(false);
    slow.pending[0]?.();
    await stopped;
    expect(slow.closed()).toBe(true);
  });
});
