// Reading and writing a virstor device through its map (virstor.md, "write,
// read"): g_virstor_start for image files. A write is checked whole before
// anything changes (bounds, then the free chunks it needs), then allocates
// chunks with the kernel's sequential allocator, writes the data into the
// physical chunks (DATA), the changed map sectors (META) and, at the end, the
// metadata (VOLUME) — one engine transaction, so the command is all or nothing
// (data overwritten in place in chunks allocated before is the carve-out).

import { GeomError, UsageError } from '../errors.js';
import { alignedBuffer } from '../util/aligned.js';
import { byteCount } from '../util/size.js';
import type { VirstorDevice } from './device.js';
import { isZero } from '../util/zero.js';
import { isAllocated, VIRSTOR_MAP_ALLOCATED, type MapEntry } from './map.js';
import type { BufferType } from '../engine/types.js';
import { allSettled } from '../util/settle.js';
import type { WriteSource } from '../provider/block.js';

/** An input in memory: its pieces are handed on as they are (view), not copied. */
interface BufferSource extends WriteSource {
  view(position: number, length: number): Buffer;
}

export function bufferSource(data: Buffer): BufferSource {
  return {
    length: data.length,
    read(position, target) {
      data.copy(target, 0, position, position + target.length);
    },
    view: (position, length) => data.subarray(position, position + length),
  };
}

/** Bytes moved per engine call: small enough to keep memory flat, large enough to be fast. */
const IO_BLOCK = 1 << 20;
/** Refuses a range outside the virtual device (read and write check it first; the read command before it opens -O). */
export function checkVirtualRange(dev: VirstorDevice, offset: number, length: number, verb: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new UsageError(`invalid offset ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new UsageError(`invalid length ${length}`);
  if (offset + length > dev.size) {
    throw new GeomError(
      'REFUSED',
      `${verb} of ${byteCount(length)} at offset ${offset} goes past the end of virstor ${dev.name} (${dev.size} bytes)`,
      'use a smaller offset or length',
    );
  }
}

/**
 * Refuses an offset past the end of the virtual device, for a read or write
 * whose length is not known or not given: the offset alone is what is wrong.
 */
export function checkOffset(dev: VirstorDevice, offset: number): void {
  if (offset > dev.size) throw new GeomError('REFUSED', `-o ${offset} is past the end of virstor ${dev.name} (${dev.size} bytes)`, `use an offset of at most ${dev.size}`);
}

/**
 * Visits [offset, offset+length) of the virtual device chunk by chunk:
 * `fn(virtualChunk, offset in chunk, length, position in the range)`.
 */
function forEachChunkPiece(dev: VirstorDevice, offset: number, length: number, fn: (v: number, inChunk: number, len: number, pos: number) => void): void {
  const cs = dev.chunkSize;
  let pos = 0;
  while (pos < length) {
    const voff = offset + pos;
    const v = Math.floor(voff / cs);
    const inChunk = voff - v * cs;
    const len = Math.min(length - pos, cs - inChunk);
    fn(v, inChunk, len, pos);
    pos += len;
  }
}

/**
 * Reads whole sectors of the device straight into `target` (serve's hot
 * path): each allocated piece lands in place with one engine read, each
 * unallocated one is zero-filled; no intermediate buffer, no copy.
 */
export function readVirstorInto(dev: VirstorDevice, offset: number, target: Buffer): void {
  checkVirtualRange(dev, offset, target.length, 'read');
  forEachChunkPiece(dev, offset, target.length, (v, inChunk, len, pos) => {
    const e = dev.entry(v);
    const piece = target.subarray(pos, pos + len);
    if (isAllocated(e)) dev.engine.readInto(e.providerNo, e.providerChunk * dev.chunkSize + inChunk, piece);
    else piece.fill(0);
  });
}

/**
 * readVirstorInto with the component reads on libuv's thread pool (the
 * engine's readIntoAsync): the map is looked up now, so the read sees every
 * write made before the call. A chunk, once allocated, never moves, so only
 * a later write to the same range can change what it reads.
 */
export function readVirstorIntoAsync(dev: VirstorDevice, offset: number, target: Buffer): Promise<void> {
  checkVirtualRange(dev, offset, target.length, 'read');
  const engine = dev.engine;
  if (!engine.readIntoAsync) {
    readVirstorInto(dev, offset, target);
    return Promise.resolve();
  }
  const readAsync = engine.readIntoAsync.bind(engine);
  const reads: Promise<void>[] = [];
  forEachChunkPiece(dev, offset, target.length, (v, inChunk, len, pos) => {
    const e = dev.entry(v);
    const piece = target.subarray(pos, pos + len);
    if (isAllocated(e)) reads.push(readAsync(e.providerNo, e.providerChunk * dev.chunkSize + inChunk, piece));
    else piece.fill(0);
  });
  return allSettled(reads);
}

export interface WriteOptions {
  /** Virtual byte offset: a multiple of the sector size. */
  offset: number;
  /** Skip all-zero pieces that land on unallocated chunks. */
  sparse: boolean;
  onProgress?: (done: number, total: number) => void;
  /**
   * false: leave the transaction open (serve commits at FLUSH and FUA, not per
   * request); the map and metadata reach the disk at the caller's commit().
   */
  commit?: boolean;
  /**
   * How the bytes go down (default DATA): a class stacked on the device passes
   * its own buffer type (its metadata stays under the undo log), or ORDERED
   * for its ordered writes — then a chunk they allocate is durable before the
   * write returns: data, barrier, map sector, barrier (the kernel writes the
   * map sector of a new allocation at once too), so a later ordered write of
   * the class above never names bytes a rollback would take back.
   */
  as?: BufferType | 'ORDERED';
  /**
   * A piece of a write planned whole (planVirstorWrite): its chunks were
   * counted and its --sparse skips chosen then, so neither is done again, and
   * the watermark warnings are the planner's to take once the write is done.
   */
  planned?: SkippedChunks;
}

export interface WriteResult {
  /** Bytes written to the device (the input's length). */
  bytes: number;
  /** Chunks allocated by this write. */
  newChunks: number;
  /** Unallocated chunks left alone because their piece of input was all zeros (--sparse). */
  skippedChunks: number;
  /** The kernel's watermark warnings. */
  warnings: string[];
}

/** The write as the device sees it: the input, its last partial sector completed with the device's bytes. */
class CompletedInput {
  readonly length: number;
  private readonly tailStart: number;
  private readonly tail: Buffer | undefined;

  constructor(
    private readonly src: WriteSource | BufferSource,
    dev: VirstorDevice,
    offset: number,
  ) {
    const ss = dev.sectorSize;
    this.length = Math.ceil(src.length / ss) * ss;
    this.tailStart = this.length - ss;
    if (this.length !== src.length) {
      // offset is a sector multiple (checkWritable): the tail is one whole sector of the device.
      const tail = Buffer.alloc(ss);
      readVirstorInto(dev, offset + this.tailStart, tail);
      const have = src.length - this.tailStart;
      src.read(this.tailStart, tail.subarray(0, have));
      this.tail = tail;
    }
  }

  read(position: number, target: Buffer): void {
    const fromSrc = this.tail ? Math.max(0, Math.min(target.length, this.tailStart - position)) : target.length;
    if (fromSrc > 0) this.src.read(position, target.subarray(0, fromSrc));
    if (fromSrc < target.length && this.tail) {
      const at = position + fromSrc - this.tailStart;
      this.tail.copy(target, fromSrc, at, at + target.length - fromSrc);
    }
  }

  /** The input's bytes at [position, position + length) without a copy, where it is in memory and not the completed tail. */
  view(position: number, length: number): Buffer | undefined {
    if ('view' in this.src && (!this.tail || position + length <= this.tailStart)) return this.src.view(position, length);
    return undefined;
  }

  isZero(position: number, length: number, scratch: Buffer): boolean {
    for (let done = 0; done < length; done += scratch.length) {
      const piece = scratch.subarray(0, Math.min(scratch.length, length - done));
      this.read(position + done, piece);
      if (!isZero(piece)) return false;
    }
    return true;
  }
}

/**
 * Writes an input at a virtual offset (virstor.md, "write"). Refuses before
 * changing anything when the write ends past the device or needs more free
 * chunks than there are; commits the whole write as one transaction.
 */
export function writeVirstor(dev: VirstorDevice, src: WriteSource, opts: WriteOptions): WriteResult {
  const { offset } = opts;
  checkWritable(dev, offset, src.length);
  const result: WriteResult = { bytes: src.length, newChunks: 0, skippedChunks: 0, warnings: [] };
  if (src.length === 0) return result;
  const input = new CompletedInput(src, dev, offset);
  const skipped = opts.planned ?? chunksToSkip(dev, input, offset, opts.sparse);
  const orderedFresh = writePieces(dev, input, opts, skipped, result);
  if (orderedFresh.length > 0) mapOrdered(dev, orderedFresh);
  if (result.newChunks > 0 && !opts.planned) result.warnings.push(...dev.allocator.takeWarnings());
  if (opts.commit !== false) dev.commit();
  return result;
}

/** A write of `length` bytes at `offset` is one the device takes: writable, sector-aligned, inside it. */
function checkWritable(dev: VirstorDevice, offset: number, length: number): void {
  const ss = dev.sectorSize;
  if (!dev.writable) throw new Error('virstor device opened read-only');
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % ss !== 0) {
    throw new UsageError(`virstor ${dev.name}: offset ${offset} is not a multiple of the sector size (${ss})`, `use an -o that is a multiple of ${ss}`);
  }
  checkVirtualRange(dev, offset, length, 'write');
}

/** Unallocated chunks a --sparse write leaves alone (its bytes there are all zero): a flag per chunk from `first`. */
export interface SkippedChunks {
  first: number;
  skip: Uint8Array;
  /** Unallocated chunks the write allocates. */
  needed: number;
  /** Flags set in `skip`. */
  skipped: number;
}

/**
 * A write checked whole before any of it is made (the virstor provider's
 * plan()): in bounds, and no more new chunks than are free — else refused
 * with nothing changed. Its pieces then go through writeVirstor with
 * `planned` set to the answer.
 */
export function planVirstorWrite(dev: VirstorDevice, offset: number, src: WriteSource, sparse: boolean): SkippedChunks {
  checkWritable(dev, offset, src.length);
  if (src.length === 0) return { first: 0, skip: new Uint8Array(0), needed: 0, skipped: 0 };
  return chunksToSkip(dev, new CompletedInput(src, dev, offset), offset, sparse);
}

/**
 * Pass 1: which unallocated chunks the write skips (--sparse, all zeros) and
 * how many it allocates; refuses when there are fewer free chunks.
 */
function chunksToSkip(dev: VirstorDevice, input: CompletedInput, offset: number, sparse: boolean): SkippedChunks {
  const cs = dev.chunkSize;
  // Only --sparse compares input with zeros.
  const scratch = sparse ? Buffer.alloc(Math.min(IO_BLOCK, cs)) : Buffer.alloc(0);
  const first = Math.floor(offset / cs);
  const skip = new Uint8Array(sparse ? Math.floor((offset + input.length - 1) / cs) - first + 1 : 0);
  let needed = 0;
  let skipped = 0;
  forEachChunkPiece(dev, offset, input.length, (v, _inChunk, len, pos) => {
    if (isAllocated(dev.entry(v))) return;
    if (sparse && input.isZero(pos, len, scratch)) {
      skip[v - first] = 1;
      skipped++;
    } else needed++;
  });
  const free = dev.allocator.freeChunks();
  if (needed > free) {
    throw new GeomError(
      'NO_SPACE',
      `virstor ${dev.name} is out of physical space: this write needs ${needed} new chunks, ${free} are free`,
      `add a component with 'geomctl virstor add ${dev.name} IMAGE'`,
    );
  }
  return { first, skip, needed, skipped };
}

/**
 * Pass 2: allocates, maps and writes chunk by chunk. Ordered writes map
 * their fresh chunks only once the chunks' bytes are down: those come back
 * for mapOrdered.
 */
function writePieces(dev: VirstorDevice, input: CompletedInput, opts: WriteOptions, skipped: SkippedChunks, result: WriteResult): [number, MapEntry][] {
  const cs = dev.chunkSize;
  const total = result.bytes;
  // Allocated only for an input that is not in memory: a fresh buffer per call costs a page fault per 4 KiB.
  let block: Buffer | undefined;
  const as = opts.as ?? 'DATA';
  const put = (image: number, at: number, data: Buffer): void => {
    if (as === 'ORDERED') dev.engine.writeOrdered(image, at, data);
    else dev.engine.write(image, at, data, as);
  };
  const orderedFresh: [number, MapEntry][] = [];
  forEachChunkPiece(dev, opts.offset, input.length, (v, inChunk, len, pos) => {
    let e: MapEntry = dev.entry(v);
    let fresh = false;
    if (!isAllocated(e)) {
      if (skipped.skip[v - skipped.first]) {
        result.skippedChunks++;
        opts.onProgress?.(Math.min(pos + len, total), total);
        return;
      }
      const a = dev.allocator.allocate();
      e = { flags: VIRSTOR_MAP_ALLOCATED, providerNo: a.component, providerChunk: a.chunk };
      if (as === 'ORDERED') orderedFresh.push([v, e]);
      else dev.map.set(v, e);
      result.newChunks++;
      fresh = true;
    }
    const base = e.providerChunk * cs;
    for (let done = 0; done < len; done += IO_BLOCK) {
      const n = Math.min(IO_BLOCK, len - done);
      // The engine copies what it is given (or writes it at once), so one buffer serves every block.
      let data = input.view(pos + done, n);
      if (!data) {
        block ??= alignedBuffer(Math.min(IO_BLOCK, input.length));
        data = block.subarray(0, n);
        input.read(pos + done, data);
      }
      put(e.providerNo, base + inChunk + done, data);
      opts.onProgress?.(Math.min(pos + done + n, total), total);
    }
    if (fresh) {
      // The rest of a newly allocated chunk must keep reading as zeros, as it did unallocated.
      const zero = as === 'ORDERED' ? put : (image: number, at: number, data: Buffer) => dev.engine.write(image, at, data, 'DATA');
      zeroUnlessZero(dev, e.providerNo, base, inChunk, zero);
      zeroUnlessZero(dev, e.providerNo, base + inChunk + len, cs - inChunk - len, zero);
    }
  });
  return orderedFresh;
}

/** Maps chunks an ordered write allocated, after a barrier on the components their bytes went to. */
function mapOrdered(dev: VirstorDevice, fresh: [number, MapEntry][]): void {
  dev.engine.barrier([...new Set(fresh.map(([, e]) => e.providerNo))]);
  for (const [v, e] of fresh) dev.map.setOrdered(v, e);
  dev.engine.barrier([0]);
}

/**
 * Makes a physical range read as zeros, writing only the blocks that do not
 * already: a fresh image's chunks are holes and stay holes; a chunk that holds
 * leftovers (an image used before, a write lost in a crash) is cleaned.
 */
function zeroUnlessZero(dev: VirstorDevice, image: number, offset: number, length: number, put: (image: number, at: number, data: Buffer) => void): void {
  // Only where the image may hold data: a fresh image's chunks are holes, read for nothing otherwise.
  const regions = dev.engine.dataRegions?.(image, offset, length) ?? [[offset, offset + length]];
  for (const [start, end] of regions) {
    for (let at = start; at < end; at += IO_BLOCK) {
      const n = Math.min(IO_BLOCK, end - at);
      if (!isZero(dev.engine.read(image, at, n))) put(image, at, Buffer.alloc(n));
    }
  }
}


