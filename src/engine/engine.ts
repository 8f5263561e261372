// The flush engine (flush-engine.md), after DragonFly HAMMER's hammer_io.c:
// images are cached in blocks; every modified sector carries the type it was
// modified as (HAMMER's HAMMER_STRUCTURE_*), and each type has its own
// modified-block tree ordered by (image, offset), so a flush writes in disk
// order and combines neighbours into one write. VOLUME and META changes are
// covered by the undo log before they may reach an image; DATA may go early
// under memory pressure, and bulk DATA goes straight to the image; ordered
// writes go at once. A failed write or fsync
// makes the engine critical, as hammer_critical_error does: it writes
// nothing more and leaves the undo log for the next command to roll back.
//
// This module is the engine's API; it composes the block cache (cache.ts),
// the undo recording (undo-recorder.ts), the flusher and its commit cycle
// (flusher.ts), and the counted I/O that fails critically (image-io.ts).

import { GeomError, IoError } from '../errors.js';
import type { Provider } from '../provider/provider.js';
import type { BufferType, Engine, EngineOptions, EngineStats } from './types.js';
import { fileLogStore, undoLogPathFor, type LogStore } from './undo-store.js';
import type { UndoRegistry } from './undo-registry.js';
import { BlockCache, DATA, META, TYPE_CODE, VOLUME, blockAt, imageState, type Block, type ImageState } from './cache.js';
import { ImageIo } from './image-io.js';
import { UndoRecorder } from './undo-recorder.js';
import { Flusher } from './flusher.js';
import { mergeRanges } from '../util/ranges.js';
import { checkBounds, type IoOp } from '../provider/bounds.js';
import { allSettled } from '../util/settle.js';

/** Cache granularity, HAMMER's HAMMER_BUFSIZE: small enough that a scattered sector costs little to load. */
export const DEFAULT_BLOCK_SIZE = 16 * 1024;
/** The most bytes one combined write carries. */
export const DEFAULT_MAX_WRITE = 1024 * 1024;
/** DATA writes covering at least this many bytes of whole blocks bypass the cache (hammer_io_direct_write). */
export const DEFAULT_DIRECT_WRITE = 64 * 1024;

export interface CreateEngineOptions extends EngineOptions {
  /** Where the undo log goes; default `<first image's real path>.geomctl-undo`. */
  undoPath?: string;
  /** Where undo logs live; default the file system (tests pass a simulated store). */
  logStore?: LogStore;
  /** Points every image at the undo log while it exists (undo-registry.ts); none by default (tests). */
  registry?: UndoRegistry;
  blockSize?: number;
  maxWrite?: number;
  directWrite?: number;
}

/** The engine with what the session and tests need beyond the class contract. */
export interface FlushEngine extends Engine {
  readonly undoPath: string;
  dataRegions(image: number, offset: number, length: number): (readonly [number, number])[];
  /** read() into a caller's buffer (no allocation on hot paths). */
  readInto(image: number, offset: number, target: Buffer): void;
  /**
   * Drops every uncommitted change. If no VOLUME or META byte of the
   * transaction reached an image, the undo log is deleted; otherwise it stays
   * for the next command to roll back, and this engine writes nothing more.
   */
  abort(): void;
}

export function emptyStats(): EngineStats {
  const zero = (): EngineStats['writes'] => ({ VOLUME: 0, META: 0, DATA: 0, UNDO: 0, ORDERED: 0 });
  return { reads: 0, readBytes: 0, writes: zero(), writeBytes: zero(), barriers: 0, undoRecords: 0, undoBytes: 0, cacheHits: 0, cacheMisses: 0, evictions: 0, combined: 0 };
}

class BufferedEngine implements FlushEngine {
  readonly stats = emptyStats();
  readonly providers: readonly Provider[];
  readonly undoPath: string;
  private readonly images: ImageState[];
  private readonly cache: BlockCache;
  private readonly undo: UndoRecorder;
  private readonly io: ImageIo;
  private readonly flusher: Flusher;
  private readonly directWrite: number;
  private closed = false;

  constructor(opts: CreateEngineOptions) {
    const first = opts.providers[0];
    if (!first) throw new RangeError('createEngine: no images');
    this.providers = opts.providers;
    this.undoPath = opts.undoPath ?? undoLogPathFor(first.path);
    this.directWrite = opts.directWrite ?? DEFAULT_DIRECT_WRITE;
    const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.images = opts.providers.map((provider) => imageState(provider, blockSize));
    const io = new ImageIo(this.images, this.stats, () => this.undo.onDisk);
    this.io = io;
    this.cache = new BlockCache(this.images, blockSize, this.stats, (st, offset, target) => io.read(st, offset, target));
    this.undo = new UndoRecorder(opts.logStore ?? fileLogStore, this.undoPath, this.images, opts.registry, this.stats, io);
    this.flusher = new Flusher(this.cache, this.undo, io, this.stats, opts.cacheLimit, opts.maxWrite ?? DEFAULT_MAX_WRITE);
  }

  get critical(): boolean {
    return this.io.critical;
  }

  // --- reading --------------------------------------------------------------

  read(image: number, offset: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.readInto(image, offset, out);
    return out;
  }

  readInto(image: number, offset: number, target: Buffer): void {
    const st = this.image(image);
    this.checkRequest(st, 'read', offset, target.length);
    const end = offset + target.length;
    if (this.wholeUncached(st, offset, end)) {
      // Whole blocks, none of them cached (a stream): one read straight into the
      // caller's buffer. The block loop lives in its own method so that this hot
      // path stays small: compiled together, V8 spent 25-30 ms optimizing the
      // pair, again after each switch between the paths (virstor read, 1 GiB).
      this.stats.cacheMisses += Math.ceil((end - offset) / st.blockSize);
      this.io.read(st, offset, target);
      return;
    }
    this.readBlocks(image, st, offset, target, (at, piece) => this.io.read(st, at, piece));
  }

  /**
   * readInto with the image reads on libuv's thread pool (serve): cached
   * blocks are copied at once, whole uncached runs read asynchronously; the
   * promise settles when every read of the request has.
   */
  readIntoAsync(image: number, offset: number, target: Buffer): Promise<void> {
    const st = this.image(image);
    const provider = st.provider;
    if (!provider.readIntoAsync) {
      this.readInto(image, offset, target);
      return Promise.resolve();
    }
    const readAsync = provider.readIntoAsync.bind(provider);
    this.checkRequest(st, 'read', offset, target.length);
    const reads: Promise<void>[] = [];
    const direct = (at: number, piece: Buffer): void => {
      reads.push(readAsync(at, piece));
      this.stats.reads++;
      this.stats.readBytes += piece.length;
    };
    const end = offset + target.length;
    if (this.wholeUncached(st, offset, end)) {
      this.stats.cacheMisses += Math.ceil((end - offset) / st.blockSize);
      direct(offset, target);
    } else this.readBlocks(image, st, offset, target, direct);
    return allSettled(reads);
  }

  readUncached(image: number, offset: number, target: Buffer): void {
    const st = this.image(image);
    this.checkRequest(st, 'read', offset, target.length);
    const dirty = this.dirtyIn(st, offset, target.length);
    if (dirty.length > 0) throw new Error(`uncached read of ${target.length} bytes at ${offset} of ${st.provider.path}: changes not yet written lie at ${(dirty[0] as [number, number])[0]}`);
    this.io.read(st, offset, target);
  }

  dataRegions(image: number, offset: number, length: number): (readonly [number, number])[] {
    const st = this.image(image);
    const ranges: [number, number][] = st.provider.dataRegions ? [...st.provider.dataRegions(offset, length)].map(([s, e]) => [s, e]) : [[offset, offset + length]];
    // Dirty blocks are data the medium does not show yet.
    return mergeRanges([...ranges, ...this.dirtyIn(st, offset, length)]);
  }

  /**
   * The parts of [offset, offset + length) that cached blocks with unwritten
   * changes cover. The cache holds at most cacheLimit of them: walk it, or
   * the range's block keys, whichever is shorter.
   */
  private dirtyIn(st: ImageState, offset: number, length: number): [number, number][] {
    const end = offset + length;
    const out: [number, number][] = [];
    const visit = (blk: Block | undefined): void => {
      if (blk?.dirty && blk.start < end && blk.start + blk.bytes.length > offset) out.push([Math.max(offset, blk.start), Math.min(end, blk.start + blk.bytes.length)]);
    };
    if (st.blocks.size === 0) return out;
    if (st.blocks.size <= Math.ceil(length / st.blockSize) + 1) for (const blk of st.blocks.values()) visit(blk);
    else {
      for (let b = Math.floor(offset / st.blockSize) * st.blockSize; b < Math.min(end, st.lastSector); b += st.blockSize) visit(st.blocks.get(b));
      visit(st.blocks.get(st.lastSector));
    }
    return out;
  }

  /** Whether [offset, end) is whole blocks (before the last sector's own block) with none of them cached. */
  private wholeUncached(st: ImageState, offset: number, end: number): boolean {
    const bs = st.blockSize;
    if (offset % bs !== 0 || end > st.lastSector || (end % bs !== 0 && end !== st.lastSector)) return false;
    if (st.blocks.size === 0) return true;
    for (let b = offset; b < end; b += bs) if (st.blocks.has(b)) return false;
    return true;
  }

  /** readInto block by block: cached blocks are copied, runs of whole uncached blocks read by `direct`, partial ones loaded. */
  private readBlocks(image: number, st: ImageState, offset: number, target: Buffer, direct: (offset: number, target: Buffer) => void): void {
    const end = offset + target.length;
    let pos = offset;
    while (pos < end) {
      const [start, len] = blockAt(st, pos);
      const blk = st.blocks.get(start);
      if (blk) {
        this.stats.cacheHits++;
        const n = Math.min(end, start + len) - pos;
        blk.bytes.copy(target, pos - offset, pos - start, pos - start + n);
        this.cache.touch(blk);
        pos += n;
        continue;
      }
      if (pos === start && start + len <= end) {
        // Whole uncached blocks are read straight into the caller's buffer, several at once
        // (HAMMER's direct read): a large scan neither copies twice nor flushes the cache.
        let stop = start + len;
        this.stats.cacheMisses++;
        while (stop < end) {
          const [s, l] = blockAt(st, stop);
          if (s + l > end || st.blocks.has(s)) break;
          stop = s + l;
          this.stats.cacheMisses++;
        }
        direct(pos, target.subarray(pos - offset, stop - offset));
        pos = stop;
        continue;
      }
      const loaded = this.cache.load(image, st, start, len, true);
      const n = Math.min(end, start + len) - pos;
      loaded.bytes.copy(target, pos - offset, pos - start, pos - start + n);
      pos += n;
      this.flusher.reclaim();
    }
  }

  // --- modifying ------------------------------------------------------------

  write(image: number, offset: number, data: Buffer, type: BufferType): void {
    const st = this.image(image);
    this.checkWrite(st, offset, data.length);
    const code = TYPE_CODE[type];
    const end = offset + data.length;
    let pos = offset;
    while (pos < end) {
      const [start, len] = blockAt(st, pos);
      if (code === DATA && pos === start && start + len <= end) {
        const stop = this.directRun(st, start, end);
        if (stop - start >= this.directWrite) {
          this.directWriteRun(image, st, start, stop, data.subarray(pos - offset, stop - offset));
          pos = stop;
          continue;
        }
      }
      const n = Math.min(end, start + len) - pos;
      // hammer_modify_buffer: the range's current bytes go to the undo log the first time.
      const gaps = code >= META ? this.undo.unrecorded(image, pos, pos + n) : [];
      let blk = st.blocks.get(start);
      if (blk) this.stats.cacheHits++;
      else blk = this.cache.load(image, st, start, len, n < len || gaps.length > 0);
      for (const [a, b] of gaps) this.undo.record(image, a, blk.bytes.subarray(a - start, b - start));
      if (gaps.length > 0) this.undo.covered(image, pos, pos + n);
      data.copy(blk.bytes, pos - start, pos - offset, pos - offset + n);
      this.cache.markDirty(blk, st.ss, (pos - start) / st.ss, (pos - start + n) / st.ss, code);
      pos += n;
      this.flusher.reclaim();
    }
  }

  /** The end of the run of whole blocks from `start` (before `end`) that hold no VOLUME or META changes. */
  private directRun(st: ImageState, start: number, end: number): number {
    let stop = start;
    while (stop < end) {
      const [s, l] = blockAt(st, stop);
      const blk = st.blocks.get(s);
      if (s + l > end || (blk && (blk.counts[META] || blk.counts[VOLUME]))) break;
      stop = s + l;
    }
    return stop;
  }

  /**
   * Bulk DATA goes straight to the image, as HAMMER's direct write does: it
   * would only pass through the cache to be written unchanged, and DATA needs
   * no undo. Cached blocks it covers are stale now and leave the cache.
   */
  private directWriteRun(image: number, st: ImageState, start: number, stop: number, data: Buffer): void {
    for (let pos = start; pos < stop; ) {
      const [s, l] = blockAt(st, pos);
      const blk = st.blocks.get(s);
      if (blk) this.cache.drop(st, blk);
      pos = s + l;
    }
    this.io.write(image, start, data, DATA);
  }

  writeOrdered(image: number, offset: number, data: Buffer): void {
    const st = this.image(image);
    this.checkWrite(st, offset, data.length);
    this.io.write(image, offset, data, 0);
    // Keep the cache coherent: cached blocks take the bytes, and their sectors are on disk now.
    const end = offset + data.length;
    for (let pos = offset; pos < end; ) {
      const [start, len] = blockAt(st, pos);
      const n = Math.min(end, start + len) - pos;
      const blk = st.blocks.get(start);
      if (blk) {
        data.copy(blk.bytes, pos - start, pos - offset, pos - offset + n);
        if (blk.dirty) this.cache.markClean(blk, (pos - start) / st.ss, (pos - start + n) / st.ss);
      }
      pos += n;
    }
  }

  barrier(images?: number[]): void {
    this.checkUsable();
    const list = images ?? this.io.writtenImages();
    for (const i of list) this.image(i);
    this.io.barrier(list);
  }

  commit(): void {
    this.checkUsable();
    if (this.flusher.dirty) this.flusher.cycle(true);
  }

  abort(): void {
    if (this.closed) return;
    this.cache.dropDirty();
    this.undo.dropPending();
    const log = this.undo.onDisk;
    if (log !== undefined && (this.io.metaOnDisk || this.io.failure)) {
      // Some metadata of the transaction may be on disk: only a rollback can undo it.
      this.undo.close();
      this.io.failure ??= new GeomError('CRITICAL', `an aborted transaction on ${this.images[0]?.provider.path} awaits rollback (${log})`, 'the next geomctl command rolls it back');
      return;
    }
    this.undo.remove();
    this.flusher.endTransaction();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.undo.close();
    let first: unknown;
    for (const st of this.images) {
      try {
        st.provider.close();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  // --- checks -----------------------------------------------------------------

  private checkUsable(): void {
    if (this.closed) throw new GeomError('CRITICAL', `the engine of ${this.images[0]?.provider.path} is closed`);
    const f = this.io.failure;
    if (f) throw new GeomError('CRITICAL', `geomctl stopped writing after an earlier failure (${f.message})`, f.hint);
  }

  private image(i: number): ImageState {
    const st = this.images[i];
    if (!st) throw new RangeError(`engine: no image ${i}`);
    return st;
  }

  /** A request inside the image (the provider's own check) and aligned to its sectors. */
  private checkRequest(st: ImageState, op: IoOp, offset: number, length: number): void {
    const p = st.provider;
    checkBounds(p.path, op, offset, length, p.size);
    if (offset % st.ss !== 0 || length % st.ss !== 0) {
      throw new IoError(p.path, op, offset, `${length} bytes not aligned to its ${st.ss}-byte sectors`);
    }
  }

  private checkWrite(st: ImageState, offset: number, length: number): void {
    this.checkUsable();
    this.checkRequest(st, 'write', offset, length);
    if (!st.provider.writable) throw new IoError(st.provider.path, 'write', offset, 'EBADF (opened read-only)');
  }
}

export function createEngine(opts: CreateEngineOptions): FlushEngine {
  return new BufferedEngine(opts);
}
