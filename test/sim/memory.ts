// An image held in memory: the provider of the unit tests and the base of the
// power-loss simulator (crash.ts). It keeps the file provider's contract —
// range checks, copies in and out, IoError after close — so code tested on
// memory behaves the same on files.

import nodePath from 'node:path';
import { IoError } from '../../src/errors.js';
import { checkBounds } from '../../src/provider/bounds.js';
import type { Provider, ProviderIdentity } from '../../src/provider/provider.js';

export interface MemoryProviderOptions {
  /** Default 512. */
  mediaSectorSize?: number;
  /** The identity's inode number; default: a fresh one per provider (dev is always 0). */
  ino?: number;
  /** Default true. */
  writable?: boolean;
}

/** Fresh inode numbers, so that distinct memory images never look like one image. */
let nextIno = 1;

export class MemoryProvider implements Provider {
  readonly name: string;
  readonly size: number;
  readonly mediaSectorSize: number;
  readonly writable: boolean;
  readonly identity: ProviderIdentity;
  private closed = false;

  constructor(
    readonly path: string,
    /** The live contents: written in place, never copied. */
    readonly data: Buffer,
    opts: MemoryProviderOptions = {},
  ) {
    this.name = nodePath.basename(path);
    this.size = data.length;
    this.mediaSectorSize = opts.mediaSectorSize ?? 512;
    this.writable = opts.writable ?? true;
    this.identity = { dev: 0, ino: opts.ino ?? nextIno++ };
  }

  read(offset: number, length: number): Buffer {
    const target = Buffer.allocUnsafe(length);
    this.readInto(offset, target);
    return target;
  }

  readInto(offset: number, target: Buffer): void {
    this.checkOpen('read', offset);
    checkBounds(this.path, 'read', offset, target.length, this.size);
    this.data.copy(target, 0, offset, offset + target.length);
  }

  write(offset: number, data: Buffer): void {
    this.checkOpen('write', offset);
    if (!this.writable) throw new IoError(this.path, 'write', offset, 'EBADF (opened read-only)');
    checkBounds(this.path, 'write', offset, data.length, this.size);
    data.copy(this.data, offset);
  }

  barrier(): void {
    this.checkOpen('fsync', undefined);
  }

  close(): void {
    this.closed = true;
  }

  private checkOpen(op: string, offset: number | undefined): void {
    if (this.closed) throw new IoError(this.path, op, offset, 'EBADF (closed)');
  }
}
