// The flush engine's block cache (flush-engine.md, "Buffers"), after HAMMER's
// hammer_buffer: each image is cached in blocks, the last sector in a block
// of its own (the VOLUME buffer). Every modified sector carries the type code
// it was modified as, and each type has its own tree of modified blocks
// ordered by (image, offset), which the flusher drains in disk order. Clean
// blocks sit in an LRU list that memory pressure evicts from.

import type { Provider } from '../provider/provider.js';
import type { BufferType, EngineStats } from './types.js';
import { SortedList } from './sorted.js';

// Sector type codes; a sector modified as two types keeps the higher one, so a
// sector covered by the undo log is never written before its undo is durable.
export const CLEAN = 0;
export const DATA = 1;
export const META = 2;
export const VOLUME = 3;
export const TYPE_CODE: Record<BufferType, number> = { DATA, META, VOLUME };

export interface Block {
  readonly image: number;
  readonly start: number;
  readonly bytes: Buffer;
  /** Per sector: CLEAN or the type code it was modified as; undefined while the block is clean. */
  dirty: Uint8Array | undefined;
  /** How many sectors are dirty, per type code. */
  readonly counts: number[];
}

export interface ImageState {
  readonly provider: Provider;
  readonly ss: number;
  readonly blockSize: number;
  /** The last sector is a block of its own: the VOLUME buffer. */
  readonly lastSector: number;
  readonly blocks: Map<number, Block>;
}

/** An image's cache state, with `blockSize` rounded up to whole media sectors. */
export function imageState(provider: Provider, blockSize: number): ImageState {
  const ss = provider.mediaSectorSize;
  return {
    provider,
    ss,
    blockSize: Math.ceil(blockSize / ss) * ss,
    lastSector: Math.floor(provider.size / ss) * ss - ss,
    blocks: new Map(),
  };
}

/** The block holding `offset`: [start, length]. */
export function blockAt(st: ImageState, offset: number): [number, number] {
  if (offset >= st.lastSector) return [st.lastSector, st.ss];
  const start = offset - (offset % st.blockSize);
  return [start, Math.min(start + st.blockSize, st.lastSector) - start];
}

function compareBlocks(a: Block, b: Block): number {
  return a.image - b.image || a.start - b.start;
}

export class BlockCache {
  /** Modified blocks per type code (index CLEAN unused). */
  private readonly trees = [0, 1, 2, 3].map(() => new SortedList<Block>(compareBlocks));
  /** Clean blocks, least recently used first; dirty blocks live in the trees instead. */
  private readonly lru = new Set<Block>();
  private readonly freeBlocks: Buffer[] = [];
  private bytesHeld = 0;

  constructor(
    private readonly images: readonly ImageState[],
    /** The configured block size: buffers of this size are recycled. */
    private readonly standardBlock: number,
    private readonly stats: EngineStats,
    /** Reads an image's bytes from its medium (counted by the caller). */
    private readonly readMedium: (st: ImageState, offset: number, target: Buffer) => void,
  ) {}

  /** Bytes held in cached blocks, clean and dirty. */
  get cached(): number {
    return this.bytesHeld;
  }

  /** How many blocks hold sectors modified as `code`. */
  dirtyBlocks(code: number): number {
    return this.trees[code]!.size;
  }

  /** Whether any block holds a modified sector. */
  get anyDirty(): boolean {
    return this.trees.some((t) => t.size > 0);
  }

  /** Caches the block [start, start + len) of `image`, its bytes read from the medium when `read`. */
  load(image: number, st: ImageState, start: number, len: number, read: boolean): Block {
    this.stats.cacheMisses++;
    const bytes = len === this.standardBlock && this.freeBlocks.length > 0 ? (this.freeBlocks.pop() as Buffer) : Buffer.allocUnsafe(len);
    if (read) this.readMedium(st, start, bytes);
    const blk: Block = { image, start, bytes, dirty: undefined, counts: [0, 0, 0, 0] };
    st.blocks.set(start, blk);
    this.lru.add(blk);
    this.bytesHeld += len;
    return blk;
  }

  /** A clean block was used: it becomes the most recently used. */
  touch(blk: Block): void {
    if (blk.dirty) return;
    this.lru.delete(blk);
    this.lru.add(blk);
  }

  /** Takes a block out of the cache, its changes forgotten (the medium now holds newer bytes). */
  drop(st: ImageState, blk: Block): void {
    if (blk.dirty) this.markClean(blk, 0, blk.dirty.length);
    this.lru.delete(blk);
    st.blocks.delete(blk.start);
    this.bytesHeld -= blk.bytes.length;
  }

  /** Takes every block with changes out of the cache (an aborted transaction). */
  dropDirty(): void {
    const dropped = new Set<Block>();
    for (const t of this.trees) for (const blk of t.drain()) dropped.add(blk);
    for (const blk of dropped) {
      const st = this.images[blk.image] as ImageState;
      st.blocks.delete(blk.start);
      this.bytesHeld -= blk.bytes.length;
    }
  }

  /** Evicts clean blocks, least recently used first, until the cache holds at most `target` bytes. */
  evictClean(target: number): void {
    for (const blk of this.lru) {
      if (this.bytesHeld <= target) return;
      this.lru.delete(blk);
      (this.images[blk.image] as ImageState).blocks.delete(blk.start);
      this.bytesHeld -= blk.bytes.length;
      this.stats.evictions++;
      if (blk.bytes.length === this.standardBlock && this.freeBlocks.length < 32) this.freeBlocks.push(blk.bytes);
    }
  }

  /** Marks sectors [from, to) of the block as modified as `code` (a higher type already there stays). */
  markDirty(blk: Block, ss: number, from: number, to: number, code: number): void {
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

  /** Marks sectors [from, to) of a dirty block as matching the medium. */
  markClean(blk: Block, from: number, to: number): void {
    const d = blk.dirty as Uint8Array;
    for (let i = from; i < to; i++) {
      const old = d[i] as number;
      if (old === CLEAN) continue;
      d[i] = CLEAN;
      this.count(blk, old, -1);
    }
    this.cleanIfDone(blk);
  }

  /**
   * Empties the tree of `code`: for each of its blocks in (image, offset)
   * order, each run of sectors modified as `code` is marked clean and handed
   * to `write` (image, offset, bytes). The block's other types stay dirty.
   */
  drainDirty(code: number, write: (image: number, offset: number, bytes: Buffer) => void): void {
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
        write(blk.image, blk.start + i * ss, blk.bytes.subarray(i * ss, j * ss));
        i = j;
      }
      blk.counts[code] = 0;
      this.cleanIfDone(blk);
    }
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
}
