// The NBD server: listens on a Unix socket or TCP, runs the handshake and
// then transmission on each connection, all against one provider (one
// process, one engine: serve.md's CAN_MULTI_CONN). Stopping is clean: no new
// connections, no new requests, every read in flight settled (they hold the
// images' descriptors), then the provider's own clean stop. Connections that
// fail in any way are closed alone; the server goes on serving the others.

import { createServer, type Server, type Socket } from 'node:net';
import type { BlockProvider } from '../provider/block.js';
import { handshake, type ExportInfo } from './handshake.js';
import { TFLAG, type Request } from './protocol.js';
import { ConnectionClosed, SocketReader } from './reader.js';
import { PayloadPool, transmit } from './transmission.js';

/** NBD_INFO_BLOCK_SIZE's maximum, and the largest request geomctl serves (serve.md). */
export const MAX_REQUEST = 32 * 1024 * 1024;
const PREFERRED_BLOCK = 64 * 1024;

export type Listen = { unix: string } | { port: number; host: string };

export interface ServerEvents {
  /** One line per connection event (-v). */
  log?(line: string): void;
  /** After each request (tests and -v counters). */
  request?(r: Request, error: number): void;
  /** The first client disconnected (--once). */
  disconnected?(): void;
}

export function exportInfo(p: BlockProvider, name: string): ExportInfo {
  const flags =
    TFLAG.HAS_FLAGS |
    TFLAG.SEND_FLUSH |
    TFLAG.SEND_FUA |
    TFLAG.SEND_WRITE_ZEROES |
    TFLAG.CAN_MULTI_CONN |
    (p.writable ? 0 : TFLAG.READ_ONLY);
  return {
    name,
    description: `geomctl serve of ${p.name}`,
    size: p.mediaSize,
    transmissionFlags: flags,
    blockSizes: { minimum: p.sectorSize, preferred: Math.max(PREFERRED_BLOCK, p.sectorSize), maximum: MAX_REQUEST },
  };
}

export class NbdServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Each connection's service, settled once its reads in flight are. */
  private readonly serving = new Set<Promise<void>>();
  private stopping = false;
  private connections = 0;
  /** Write payloads, shared by every connection (a settle of a borrowing provider frees them all). */
  private readonly payloads: PayloadPool | undefined;

  constructor(
    private readonly provider: BlockProvider,
    private readonly exp: ExportInfo,
    private readonly events: ServerEvents = {},
  ) {
    this.payloads = provider.writable ? new PayloadPool(provider.lending) : undefined;
    this.server = createServer({ noDelay: true }, (socket) => {
      const served = this.serveConnection(socket).finally(() => this.serving.delete(served));
      this.serving.add(served);
    });
  }

  /** Starts listening; resolves once connections are accepted. */
  listen(where: Listen): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        resolve();
      };
      if ('unix' in where) this.server.listen(where.unix, done);
      else this.server.listen(where.port, where.host, done);
    });
  }

  /** The TCP port actually bound (-p 0 picks one). */
  get port(): number | undefined {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  private async serveConnection(socket: Socket): Promise<void> {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const id = ++this.connections;
    this.sockets.add(socket);
    socket.setNoDelay?.(true);
    const reader = new SocketReader(socket);
    const send = (b: Buffer): void => {
      if (!socket.destroyed) socket.write(b);
    };
    this.events.log?.(`connection ${id} opened`);
    let why = 'closed by the client';
    try {
      const neg = await handshake(reader, send, this.exp);
      if (neg) {
        this.events.log?.(`connection ${id}: transmission${neg.structured ? ' (structured replies)' : ''}`);
        await transmit(reader, socket, this.provider, this.exp, neg, {
          stopping: () => this.stopping,
          ...(this.events.request ? { onRequest: this.events.request } : {}),
        }, this.payloads);
      } else why = 'handshake ended';
    } catch (err) {
      if (!(err instanceof ConnectionClosed)) why = `dropped: ${(err as Error).message}`;
    } finally {
      this.sockets.delete(socket);
      socket.end();
      socket.destroy();
      this.events.log?.(`connection ${id} ${why}`);
      this.events.disconnected?.();
    }
  }

  /** Stops accepting, ends every connection between requests, waits for its reads in flight, then closes the provider (its clean stop). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    await Promise.all(this.serving);
    this.provider.close();
  }
}
