// The one provider interface of providers.md ("One interface"): GEOM's bio in
// TypeScript, what a consumer — the NBD server, a verb — sees of an image, a
// journal provider or a virstor provider. Offsets and lengths are whole
// sectors of `sectorSize`; byteAccess() below serves any byte range on top.

export interface ExtentRun {
  length: number;
  /** True where the provider holds nothing (an image's hole, an unallocated chunk): reads as zeros. */
  hole: boolean;
}

export interface WriteOpts {
  /** Durable when the write returns. */
  fua?: boolean;
  /** The caller gives `data` up (never touches it again): a provider that keeps written bytes may keep it rather than copy it. */
  owned?: boolean;
  /** The caller lends `data` (see BlockProvider.lending): unchanged until the provider's next settle(). */
  lent?: boolean;
}

/**
 * How a provider that keeps written bytes for a while (a journal, until its
 * records are written) borrows a writer's buffers instead of copying them:
 * fresh memory for every request costs a page fault per 4 KiB.
 */
export interface Lending {
  /** Bytes per request: the largest the class takes whole (its maxphys). */
  readonly request: number;
  /** How many bytes may be lent between two settle() calls. */
  readonly bytes: number;
  /** Done with every lent buffer: the caller may refill them. */
  settle(): void;
}

/** A write's input known whole before it is made, read at positions (BlockProvider.plan reads it). */
export interface WriteSource {
  readonly length: number;
  /** Fills all of `target` with the input's bytes from `position`. */
  read(position: number, target: Buffer): void;
}

/** What a provider's plan() settled for a write, in the class's allocation units (a virstor's chunks). */
export interface WritePlan {
  /** Units the write allocates. */
  readonly allocates: number;
  /** Unallocated units it leaves alone: their input is all zeros and the write is sparse. */
  readonly skips: number;
}

export interface BlockProvider {
  /** The provider name (providers.md's table): `data.img`, `data.img.journal`, `virstor/thin`. */
  readonly name: string;
  readonly mediaSize: number;
  readonly sectorSize: number;
  readonly writable: boolean;
  read(offset: number, target: Buffer): void;
  /**
   * read() with the image reads on libuv's thread pool, so that a server has
   * several in flight. It sees every write completed before the call; a write
   * made while it is in flight may or may not show (as for two NBD requests in
   * flight at once). Optional: providers whose bytes can move under a read
   * (a journal reusing its space) leave it out, and callers use read().
   */
  readAsync?(offset: number, target: Buffer): Promise<void>;
  /** With `fua`, durable when it returns. */
  write(offset: number, data: Buffer, opts?: WriteOpts): void;
  /** Makes the range read as zeros; virstor leaves unallocated chunks unallocated. */
  zero(offset: number, length: number, opts?: { fua?: boolean }): void;
  /** Every completed write is durable when it returns (BIO_FLUSH; barriers reach the images). */
  flush(): void;
  /** Allocated and hole runs covering [offset, offset + length), in order. */
  extents(offset: number, length: number): ExtentRun[];
  /** Background work a live provider does by time (the journal's switch_time); optional. */
  tick?(): void;
  /**
   * Checks a write of `input` at `offset` whole before any of it is made, for
   * a provider that allocates (a virstor counts the free chunks the write
   * needs and refuses, nothing written, when there are too few), and settles
   * how the writes of that input that follow are taken until the next
   * flush(): with `sparse`, units the plan skips stay unallocated. The
   * class's warnings about the space left come once, at that flush().
   * Optional: a provider that never runs out of room leaves it out.
   */
  plan?(offset: number, input: WriteSource, opts: { sparse: boolean }): WritePlan;
  /** Writes may lend their buffers (WriteOpts.lent); without it, every write is done with `data` when it returns. */
  readonly lending?: Lending;
  /**
   * The clean stop: everything current and durable, images unlocked. With
   * `clean: false`, after a flush(), the class's own state stays as flush()
   * left it — a journal keeps its finished journals un-copied, DIRTY, as
   * FreeBSD finds them after a crash; other providers stop the same either way.
   */
  close(opts?: { clean?: boolean }): void;
}

/** Reads any byte range: whole sectors are read in place, partial ones through one sector of scratch. */
export function readBytes(p: BlockProvider, offset: number, target: Buffer): void {
  const ss = p.sectorSize;
  const end = offset + target.length;
  const start = Math.floor(offset / ss) * ss;
  const stop = Math.ceil(end / ss) * ss;
  if (start === offset && stop === end) {
    p.read(offset, target);
    return;
  }
  const whole = Buffer.allocUnsafe(stop - start);
  p.read(start, whole);
  whole.copy(target, 0, offset - start, end - start);
}

/**
 * Writes any byte range: partial sectors at either end are read, patched and
 * written whole (read-modify-write), as NBD clients need not honour the
 * minimum block size (serve.md, "Protocol").
 */
export function writeBytes(p: BlockProvider, offset: number, data: Buffer, opts: WriteOpts = {}): void {
  const ss = p.sectorSize;
  const end = offset + data.length;
  const start = Math.floor(offset / ss) * ss;
  const stop = Math.ceil(end / ss) * ss;
  if (start === offset && stop === end) {
    p.write(offset, data, opts);
    return;
  }
  const whole = Buffer.allocUnsafe(stop - start);
  p.read(start, whole.subarray(0, ss));
  if (stop - ss > start) p.read(stop - ss, whole.subarray(whole.length - ss));
  data.copy(whole, offset - start);
  p.write(start, whole, { ...opts, owned: true, lent: false });
}

/** Zeroes any byte range: the aligned middle through zero(), the partial edges by writing zeros. */
export function zeroBytes(p: BlockProvider, offset: number, length: number, opts: { fua?: boolean } = {}): void {
  const ss = p.sectorSize;
  const end = offset + length;
  const innerStart = Math.ceil(offset / ss) * ss;
  const innerEnd = Math.floor(end / ss) * ss;
  if (innerStart >= innerEnd) {
    writeBytes(p, offset, Buffer.alloc(length), opts);
    return;
  }
  if (offset < innerStart) writeBytes(p, offset, Buffer.alloc(innerStart - offset));
  p.zero(innerStart, innerEnd - innerStart, opts);
  if (innerEnd < end) writeBytes(p, innerEnd, Buffer.alloc(end - innerEnd));
  if (opts.fua && (offset < innerStart || innerEnd < end)) p.flush();
}
