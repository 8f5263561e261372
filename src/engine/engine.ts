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

import nodePath from 'node:path';
import { GeomError, IoError, errnoOf } from '../errors.js';
import type { Provider } from '../provider/provider.js';
import type { BufferType, Engine, EngineOptions, EngineStats } from './types.js';
import { IntervalSet, SortedList } from './sorted.js';
import { RECORD_HEADER, UndoLogWriter, encodeRecord, fileLogStore, realPath, undoLogPathFor, type LogStore, type UndoImage } from './undo-log.js';
import { RegistryError, type UndoRegistry } from './undo-registry.js';
import { isZero } from '../util/zero.js';
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
  return { reads: 0, readBytes: 0, writes: zero(), writeBytes: zero(), barriers: 0, undoRecords: 0, undoBytes: 0, cacheHits: 0, cacheMisses: 0, evictions: 0, combined: 0, extra: {} };
}

// Sector type codes; a sector modified as two types keeps the higher one, so a
// sector covered by the undo log is never written before its undo is durable.
const CLEAN = 0;
const DATA = 1;
const META = 2;
const VOLUME = 3;
const CODE: Record<BufferType, number> = { DATA, META, VOLUME };
const NAME = ['ORDERED', 'DATA', 'META', 'VOLUME'] as const;

interface Block {
  readonly image: number;
  readonly start: number;
  readonly bytes: Buffer;
  /** Per sector: CLEAN or the type code it was modified as; undefined while the block is clean. */
  dirty: Uint8Array | undefined;
  /** How many sectors are dirty, per type code. */
  readonly counts: number[];
}

interface ImageState {
  readonly provider: Provider;
  readonly ss: number;
  readonly blockSize: number;
  /** The last sector is a block of its own: the VOLUME buffer. */
  readonly lastSector: number;
  readonly blocks: Map<number, Block>;
  /** Ranges whose old bytes this transaction already recorded (HAMMER's undo history cache). */
  readonly history: IntervalSet;
}

interface PendingUndo {
  image: number;
  offset: number;
  length: number;
  /** undefined: the old bytes were all zero. */
  old: Buffer | undefined;
}


function compareBlocks(a: Block, b: Block): number {
  return a.image - b.image || a.start - b.start;
}

class BufferedEngine implements FlushEngine {
  readonly stats = emptyStats();
  readonly providers: readonly Provider[];
  readonly undoPath: string;
  private readonly images: ImageState[];
  private readonly store: LogStore;
  private readonly registry: UndoRegistry | undefined;
  private readonly limit: number;
  private readonly maxWrite: number;
  private readonly directWrite: number;
  private readonly scratch: Buffer;
  /** Modified blocks per type code (index CLEAN unused). */
  private readonly trees = [0, 1, 2, 3].map(() => new SortedList<Block>(compareBlocks));
  /** Clean blocks, least recently used first; dirty blocks live in the trees instead. */
  private readonly lru = new Set<Block>();
  private readonly freeBlocks: Buffer[] = [];
  private readonly standardBlock: number;
  private cached = 0;
  private pending: PendingUndo[] = [];
  private pendingBytes = 0;
  private log: UndoLogWriter | undefined;
  /** Some VOLUME or META byte of this transaction was written to an image. */
  private metaOnDisk = false;
  /** Images the flusher wrote since their last barrier. */
  private readonly flushed = new Set<number>();
  /** Images with ordered writes since their last barrier. */
  private readonly orderedWritten = new Set<number>();
  private failure: GeomError | undefined;
  private closed = false;

  constructor(opts: CreateEngineOptions) {
    const first = opts.providers[0];
    if (!first) throw new RangeError('createEngine: no images');
    this.providers = opts.providers;
    this.undoPath = opts.undoPath ?? undoLogPathFor(first.path);
    this.store = opts.logStore ?? fileLogStore;
    this.registry = opts.registry;
    this.limit = opts.cacheLimit;
    this.maxWrite = opts.maxWrite ?? DEFAULT_MAX_WRITE;
    this.directWrite = opts.directWrite ?? DEFAULT_DIRECT_WRITE;
    this.scratch = Buffer.allocUnsafe(this.maxWrite);
    const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.standardBlock = blockSize;
    this.images = opts.providers.map((provider) => {
      const ss = provider.mediaSectorSize;
      return {
        provider,
        ss,
        blockSize: Math.ceil(blockSize / ss) * ss,
        lastSector: Math.floor(provider.size / ss) * ss - ss,
        blocks: new Map(),
        history: new IntervalSet(),
      };
    });
  }

  get critical(): boolean {
    return this.failure?.code === 'IO';
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
      this.providerRead(st, offset, target);
      return;
    }
    this.readBlocks(image, st, offset, target, (at, piece) => this.providerRead(st, at, piece));
  }

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

  dataRegions(image: number, offset: number, length: number): (readonly [number, number])[] {
    const st = this.image(image);
    const end = offset + length;
    const ranges: [number, number][] = st.provider.dataRegions ? [...st.provider.dataRegions(offset, length)].map(([s, e]) => [s, e]) : [[offset, end]];
    // Dirty blocks are data the medium does not show yet. The cache holds at
    // most cacheLimit of them: walk it, or the range's block keys, whichever is shorter.
    const dirtyIn = (blk: Block | undefined): void => {
      if (blk?.dirty && blk.start < end && blk.start + blk.bytes.length > offset) ranges.push([Math.max(offset, blk.start), Math.min(end, blk.start + blk.bytes.length)]);
    };
    if (st.blocks.size <= Math.ceil(length / st.blockSize) + 1) for (const blk of st.blocks.values()) dirtyIn(blk);
    else {
      for (let b = Math.floor(offset / st.blockSize) * st.blockSize; b < Math.min(end, st.lastSector); b += st.blockSize) dirtyIn(st.blocks.get(b));
      dirtyIn(st.blocks.get(st.lastSector));
    }
    return mergeRanges(ranges);
  }

  /** Whether [offset, end) is whole blocks (before the last sector's own block) with none of them cached. */
  private wholeUncached(st: ImageState, offset: number, end: number): boolean {
    const bs = st.blockSize;
    if (offset % bs !== 0 || end > st.lastSector || (end % bs !== 0 && end !== st.lastSector)) return false;
    if (st.blocks.size === 0) return true;
    for (let b = offset; b < end; b += bs) if (st.blocks.has(b)) return false;
    return true;
  }

  /** readInto block by block: cached blocks are copied, runs of whole uncached blocks read directly, partial ones loaded. */
  private readBlocks(image: number, st: ImageState, offset: number, target: Buffer, direct: (offset: number, target: Buffer) => void): void {
    const end = offset + target.length;
    let pos = offset;
    while (pos < end) {
      const [start, len] = this.blockAt(st, pos);
      const blk = st.blocks.get(start);
      if (blk) {
        this.stats.cacheHits++;
        const n = Math.min(end, start + len) - pos;
        blk.bytes.copy(target, pos - offset, pos - start, pos - start + n);
        this.touch(blk);
        pos += n;
        continue;
      }
      if (pos === start && start + len <= end) {
        // Whole uncached blocks are read straight into the caller's buffer, several at once
        // (HAMMER's direct read): a large scan neither copies twice nor flushes the cache.
        let stop = start + len;
        this.stats.cacheMisses++;
        while (stop < end) {
          const [s, l] = this.blockAt(st, stop);
          if (s + l > end || st.blocks.has(s)) break;
          stop = s + l;
          this.stats.cacheMisses++;
        }
        direct(pos, target.subarray(pos - offset, stop - offset));
        pos = stop;
        continue;
      }
      const loaded = this.load(image, st, start, len, true);
      const n = Math.min(end, start + len) - pos;
      loaded.bytes.copy(target, pos - offset, pos - start, pos - start + n);
      pos += n;
      this.reclaim();
    }
  }

  // --- modifying ------------------------------------------------------------

  write(image: number, offset: number, data: Buffer, type: BufferType): void {
    const st = this.image(image);
    this.checkWrite(st, offset, data.length);
    const code = CODE[type];
    const end = offset + data.length;
    let pos = offset;
    while (pos < end) {
      const [start, len] = this.blockAt(st, pos);
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
      const gaps = code >= META ? st.history.gaps(pos, pos + n) : [];
      let blk = st.blocks.get(start);
      if (blk) this.stats.cacheHits++;
      else blk = this.load(image, st, start, len, n < len || gaps.length > 0);
      for (const [a, b] of gaps) this.recordUndo(image, a, blk.bytes.subarray(a - start, b - start));
      if (gaps.length > 0) st.history.add(pos, pos + n);
      data.copy(blk.bytes, pos - start, pos - offset, pos - offset + n);
      this.markDirty(blk, st.ss, (pos - start) / st.ss, (pos - start + n) / st.ss, code);
      pos += n;
      this.reclaim();
    }
  }

  /** The end of the run of whole blocks from `start` (before `end`) that hold no VOLUME or META changes. */
  private directRun(st: ImageState, start: number, end: number): number {
    let stop = start;
    while (stop < end) {
      const [s, l] = this.blockAt(st, stop);
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
      const [s, l] = this.blockAt(st, pos);
      const blk = st.blocks.get(s);
      if (blk) {
        if (blk.dirty) this.markClean(blk, 0, blk.dirty.length);
        this.lru.delete(blk);
        st.blocks.delete(s);
        this.cached -= blk.bytes.length;
      }
      pos = s + l;
    }
    this.providerWrite(image, start, data, DATA);
  }

  writeOrdered(image: number, offset: number, data: Buffer): void {
    const st = this.image(image);
    this.checkWrite(st, offset, data.length);
    this.providerWrite(image, offset, data, 0);
    // Keep the cache coherent: cached blocks take the bytes, and their sectors are on disk now.
    const end = offset + data.length;
    for (let pos = offset; pos < end; ) {
      const [start, len] = this.blockAt(st, pos);
      const n = Math.min(end, start + len) - pos;
      const blk = st.blocks.get(start);
      if (blk) {
        data.copy(blk.bytes, pos - start, pos - offset, pos - offset + n);
        if (blk.dirty) this.markClean(blk, (pos - start) / st.ss, (pos - start + n) / st.ss);
      }
      pos += n;
    }
  }

  barrier(images?: number[]): void {
    this.checkUsable();
    const list = images ?? [...new Set([...this.flushed, ...this.orderedWritten])].sort((a, b) => a - b);
    for (const i of list) this.image(i);
    this.barrierImages(list);
  }

  commit(): void {
    this.checkUsable();
    const dirty = this.trees.some((t) => t.size > 0) || this.pending.length > 0 || this.log?.created === true || this.flushed.size > 0;
    if (dirty) this.cycle(true);
  }

  abort(): void {
    if (this.closed) return;
    const dropped = new Set<Block>();
    for (const t of this.trees) for (const blk of t.drain()) dropped.add(blk);
    for (const blk of dropped) {
      const st = this.images[blk.image] as ImageState;
      st.blocks.delete(blk.start);
      this.cached -= blk.bytes.length;
    }
    this.pending = [];
    this.pendingBytes = 0;
    const log = this.log;
    if (log?.created && (this.metaOnDisk || this.failure)) {
      // Some metadata of the transaction may be on disk: only a rollback can undo it.
      log.close();
      this.failure ??= new GeomError('CRITICAL', `an aborted transaction on ${this.images[0]?.provider.path} awaits rollback (${log.path})`, 'the next geomctl command rolls it back');
      return;
    }
    this.removeLog(log);
    this.endTransaction();
  }

  /** The end of a transaction nothing needs to undo: its undo log goes (a failed unlink is a failure). */
  private removeLog(log: UndoLogWriter | undefined): void {
    if (!log) return;
    try {
      log.remove();
    } catch (err) {
      throw this.fail(err, log.path, 'unlink', undefined);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.log?.close();
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

  // --- the flusher ----------------------------------------------------------

  /** One flush cycle (flush-engine.md, "Commit"); `final` ends the transaction at its commit point. */
  private cycle(final: boolean): void {
    this.flushType(DATA);
    const meta = this.trees[META]!.size + this.trees[VOLUME]!.size > 0;
    this.flushUndo(meta);
    this.barrierImages([...this.flushed]);
    this.flushType(META);
    this.flushType(VOLUME);
    this.barrierImages([...this.flushed]);
    if (!final) return;
    this.removeLog(this.log);
    this.endTransaction();
  }

  private endTransaction(): void {
    this.log = undefined;
    this.metaOnDisk = false;
    for (const st of this.images) st.history.clear();
  }

  /** Writes every sector dirty as `code`, in (image, offset) order, neighbours combined. */
  private flushType(code: number): void {
    let run: { image: number; offset: number; length: number; pieces: Buffer[] } | undefined;
    for (const blk of this.trees[code]!.drain()) {
      const ss = (this.images[blk.image] as ImageState).ss;
      const d = blk.dirty as Uint8Array;
      for (let i = 0; i < d.length; ) {
        if (d[i] !== code) {
          i++;
          continue;
        }
        let j = i;
        while (j < d.length && d[j] === code) d[j++] = CLEAN;
        const piece = blk.bytes.subarray(i * ss, j * ss);
        const offset = blk.start + i * ss;
        if (run && run.image === blk.image && run.offset + run.length === offset && run.length + piece.length <= this.maxWrite) {
          run.pieces.push(piece);
          run.length += piece.length;
        } else {
          if (run) this.emit(run, code);
          run = { image: blk.image, offset, length: piece.length, pieces: [piece] };
        }
        i = j;
      }
      blk.counts[code] = 0;
      this.cleanIfDone(blk);
    }
    if (run) this.emit(run, code);
  }

  private emit(run: { image: number; offset: number; length: number; pieces: Buffer[] }, code: number): void {
    let data = run.pieces[0] as Buffer;
    if (run.pieces.length > 1) {
      let at = 0;
      for (const p of run.pieces) at += p.copy(this.scratch, at);
      data = this.scratch.subarray(0, at);
      this.stats.combined += run.pieces.length - 1;
    }
    this.providerWrite(run.image, run.offset, data, code);
  }

  /** Appends pending undo records to the log; with `sync`, makes the log durable. */
  private flushUndo(sync: boolean): void {
    if (this.pending.length > 0) {
      this.log ??= new UndoLogWriter(this.store, this.undoPath, this.undoImages(), this.registry);
      const log = this.log;
      const nonce = log.nonce;
      const buf = Buffer.concat(this.pending.map((r) => encodeRecord(nonce, r.image, r.offset, r.length, r.old)));
      let n: number;
      try {
        n = log.append(buf);
      } catch (err) {
        if (err instanceof RegistryError) {
          // Before the log and any image: nothing to roll back, and the error says what to fix.
          this.failure = err;
          throw err;
        }
        throw this.fail(err, log.path, 'write', undefined);
      }
      this.stats.writes.UNDO++;
      this.stats.writeBytes.UNDO += n;
      this.stats.undoRecords += this.pending.length;
      this.stats.undoBytes += buf.length;
      this.pending = [];
      this.pendingBytes = 0;
    }
    if (sync && this.log) {
      const log = this.log;
      try {
        this.stats.barriers += log.sync();
      } catch (err) {
        throw this.fail(err, log.path, 'fsync', undefined);
      }
    }
  }

  private undoImages(): UndoImage[] {
    return this.images.map(({ provider: p }) => ({ path: p.path, abs: realPath(p.path) ?? nodePath.resolve(p.path), size: p.size, dev: p.identity.dev, ino: p.identity.ino }));
  }

  private recordUndo(image: number, offset: number, old: Buffer): void {
    const last = this.pending[this.pending.length - 1];
    if (isZero(old)) {
      // All-zero old bytes (a fresh map) need no payload, and neighbours share one record.
      if (last && last.old === undefined && last.image === image && last.offset + last.length === offset) {
        last.length += old.length;
        return;
      }
      this.pending.push({ image, offset, length: old.length, old: undefined });
      this.pendingBytes += RECORD_HEADER;
      return;
    }
    this.pending.push({ image, offset, length: old.length, old: Buffer.from(old) });
    this.pendingBytes += RECORD_HEADER + old.length;
  }

  /**
   * Keeps memory under the limit: evict clean blocks (LRU); then write DATA
   * early; then append the pending undo; then run a whole cycle without its
   * commit point, so metadata reaches the images only after its undo is durable
   * and the log keeps growing until the transaction commits.
   */
  private reclaim(): void {
    if (this.memory() <= this.limit) return;
    const low = Math.floor(this.limit / 2);
    this.evictClean(low);
    if (this.memory() <= this.limit || this.failure) return;
    if (this.trees[DATA]!.size > 0) {
      this.flushType(DATA);
      this.evictClean(low);
      if (this.memory() <= this.limit) return;
    }
    if (this.pending.length > 0) {
      this.flushUndo(false);
      if (this.memory() <= this.limit) return;
    }
    if (this.trees[META]!.size + this.trees[VOLUME]!.size > 0) {
      this.cycle(false);
      this.evictClean(low);
    }
  }

  private memory(): number {
    return this.cached + this.pendingBytes;
  }

  private evictClean(target: number): void {
    for (const blk of this.lru) {
      if (this.memory() <= target) return;
      this.lru.delete(blk);
      (this.images[blk.image] as ImageState).blocks.delete(blk.start);
      this.cached -= blk.bytes.length;
      this.stats.evictions++;
      if (blk.bytes.length === this.standardBlock && this.freeBlocks.length < 32) this.freeBlocks.push(blk.bytes);
    }
  }

  // --- blocks ---------------------------------------------------------------

  /** The block holding `offset`: [start, length]. */
  private blockAt(st: ImageState, offset: number): [number, number] {
    if (offset >= st.lastSector) return [st.lastSector, st.ss];
    const start = offset - (offset % st.blockSize);
    return [start, Math.min(start + st.blockSize, st.lastSector) - start];
  }

  private load(image: number, st: ImageState, start: number, len: number, read: boolean): Block {
    this.stats.cacheMisses++;
    const bytes = len === this.standardBlock && this.freeBlocks.length > 0 ? (this.freeBlocks.pop() as Buffer) : Buffer.allocUnsafe(len);
    if (read) this.providerRead(st, start, bytes);
    const blk: Block = { image, start, bytes, dirty: undefined, counts: [0, 0, 0, 0] };
    st.blocks.set(start, blk);
    this.lru.add(blk);
    this.cached += len;
    return blk;
  }

  private touch(blk: Block): void {
    if (blk.dirty) return;
    this.lru.delete(blk);
    this.lru.add(blk);
  }

  private markDirty(blk: Block, ss: number, from: number, to: number, code: number): void {
    let d = blk.dirty;
    if (!d) {
      d = blk.dirty = new Uint8Array(blk.bytes.length / ss);
      this.lru.delete(blk);
    }
    for (let i = from; i < to; i++) {
      const old = d[i] as number;
      if (old >= code) continue;
      if (old !== CLEAN) this.count(blk, old, -1);
      d[i] = code;
      this.count(blk, code, 1);
    }
  }

  private markClean(blk: Block, from: number, to: number): void {
    const d = blk.dirty as Uint8Array;
    for (let i = from; i < to; i++) {
      const old = d[i] as number;
      if (old === CLEAN) continue;
      d[i] = CLEAN;
      this.count(blk, old, -1);
    }
    this.cleanIfDone(blk);
  }

  private count(blk: Block, code: number, delta: number): void {
    const n = (blk.counts[code] as number) + delta;
    blk.counts[code] = n;
    if (delta > 0 && n === 1) this.trees[code]!.insert(blk);
    else if (n === 0) this.trees[code]!.remove(blk);
  }

  private cleanIfDone(blk: Block): void {
    if (blk.counts[DATA] || blk.counts[META] || blk.counts[VOLUME]) return;
    blk.dirty = undefined;
    this.lru.add(blk);
  }

  // --- I/O and failure --------------------------------------------------------

  private providerRead(st: ImageState, offset: number, target: Buffer): void {
    st.provider.readInto(offset, target);
    this.stats.reads++;
    this.stats.readBytes += target.length;
  }

  /** `code` 0 is an ordered write. */
  private providerWrite(image: number, offset: number, data: Buffer, code: number): void {
    const st = this.images[image] as ImageState;
    // Set first: a failed write may still have put part of its bytes on the disk.
    if (code >= META) this.metaOnDisk = true;
    try {
      st.provider.write(offset, data);
    } catch (err) {
      throw this.fail(err, st.provider.path, 'write', offset);
    }
    const kind = NAME[code] as keyof EngineStats['writes'];
    this.stats.writes[kind]++;
    this.stats.writeBytes[kind] += data.length;
    (code === 0 ? this.orderedWritten : this.flushed).add(image);
  }

  private barrierImages(list: number[]): void {
    for (const i of list) {
      const st = this.images[i] as ImageState;
      try {
        st.provider.barrier();
      } catch (err) {
        throw this.fail(err, st.provider.path, 'fsync', undefined);
      }
      this.stats.barriers++;
      this.flushed.delete(i);
      this.orderedWritten.delete(i);
    }
  }

  /** hammer_critical_error: remember the failure, write nothing more, and say what happens next. */
  private fail(err: unknown, path: string, op: string, offset: number | undefined): IoError {
    const errno = err instanceof IoError ? err.errno : errnoOf(err);
    const space = errno === 'ENOSPC' ? 'free space on its file system; ' : '';
    const hint = this.log?.created
      ? `${space}the next geomctl command on these images rolls this one back (undo log ${this.log.path})`
      : `${space}geomctl wrote nothing more; fix the cause and run the command again`;
    const e = new IoError(path, op, offset, errno, hint);
    this.failure = e;
    return e;
  }

  private checkUsable(): void {
    if (this.closed) throw new GeomError('CRITICAL', `the engine of ${this.images[0]?.provider.path} is closed`);
    const f = this.failure;
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
