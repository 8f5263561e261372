// An image provider: what a GEOM consumer sees of a disk, for an image file, a
// Linux block device, or (in tests) memory. Offsets and lengths are byte
// numbers; images beyond 2^53 bytes are not supported. All I/O is synchronous:
// geomctl's loops are synchronous, which keeps ordering and barriers obvious.

import type { FileIdentity } from '../util/identity.js';

/** st_dev and st_ino: how the undo log and the locks recognise an image under another path. */
export type ProviderIdentity = FileIdentity;

export interface Provider {
  /** The path as the user gave it (used in every message). */
  readonly path: string;
  /** The provider name FreeBSD would show: the image's base name. */
  readonly name: string;
  /** Media size in bytes. */
  readonly size: number;
  /** The medium's logical sector size: 512 for files, sysfs's value for block devices. */
  readonly mediaSectorSize: number;
  readonly writable: boolean;
  readonly identity: ProviderIdentity;
  /** Reads exactly `length` bytes at `offset`; reading past the end is an IoError. */
  read(offset: number, length: number): Buffer;
  /** Reads into `target` (all of it) from `offset`; avoids an allocation on hot paths. */
  readInto(offset: number, target: Buffer): void;
  /**
   * readInto on libuv's thread pool, so that several reads run at once (the
   * NBD server's). Optional: callers fall back to readInto. The descriptor
   * must stay open until the promise settles.
   */
  readIntoAsync?(offset: number, target: Buffer): Promise<void>;
  /** Writes all of `data` at `offset` (no implicit extension past `size`). */
  write(offset: number, data: Buffer): void;
  /**
   * Where [offset, offset + length) may hold data, as ascending, disjoint
   * [start, end) ranges inside it: every byte outside them reads as zeros
   * (the holes of a sparse file). Optional: a provider that cannot tell has
   * none, and callers then treat the whole range as data. Reports the medium,
   * not a cache above it.
   */
  dataRegions?(offset: number, length: number): Iterable<readonly [number, number]>;
  /** The barrier: every write issued before it is durable when it returns (fsync, BIO_FLUSH). */
  barrier(): void;
  close(): void;
}

/**
 * A provider forwarding to `p`, with `over` replacing what differs: a
 * provider lent by a pool or a stack, named by the path it was reached by,
 * whose close() gives back the loan instead of closing `p`.
 */
export function providerView(p: Provider, over: Pick<Provider, 'close'> & Partial<Pick<Provider, 'path' | 'name'>>): Provider {
  const { dataRegions, readIntoAsync } = p;
  return {
    path: over.path ?? p.path,
    name: over.name ?? p.name,
    size: p.size,
    mediaSectorSize: p.mediaSectorSize,
    writable: p.writable,
    identity: p.identity,
    read: (offset, length) => p.read(offset, length),
    readInto: (offset, target) => p.readInto(offset, target),
    write: (offset, data) => p.write(offset, data),
    ...(dataRegions ? { dataRegions: (offset: number, length: number) => dataRegions.call(p, offset, length) } : {}),
    // The thread-pool reads too: without them serve's preads ran on the event loop again.
    ...(readIntoAsync ? { readIntoAsync: (offset: number, target: Buffer) => readIntoAsync.call(p, offset, target) } : {}),
    barrier: () => p.barrier(),
    close: over.close,
  };
}
