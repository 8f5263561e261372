// An image provider: what a GEOM consumer sees of a disk, for an image file, a
// Linux block device, or (in tests) memory. Offsets and lengths are byte
// numbers; images beyond 2^53 bytes are not supported. All I/O is synchronous:
// geomctl's loops are synchronous, which keeps ordering and barriers obvious.

export interface ProviderIdentity {
  /** st_dev and st_ino: how the undo log recognises an image under another path. */
  readonly dev: number;
  readonly ino: number;
}

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
  /** Writes all of `data` at `offset` (no implicit extension past `size`). */
  write(offset: number, data: Buffer): void;
  /** The barrier: every write issued before it is durable when it returns (fsync, BIO_FLUSH). */
  barrier(): void;
  close(): void;
}
