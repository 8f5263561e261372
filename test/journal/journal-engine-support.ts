// Shared helpers of the journal engine tests: images labeled by the kernel
// model on memory providers, and an Engine over providers for the tests that
// do not exercise the flush engine itself (ordered writes go straight to the
// provider, VOLUME/META/DATA wait for commit(); no undo log).

import type { BufferType, Engine, EngineStats } from '../../src/engine/types.js';
import { MemoryProvider } from '../sim/memory.js';
import type { Provider } from '../../src/provider/provider.js';
import { JournalDevice } from '../../src/journal/device.js';
import { kLabel, kRandom, kRandomBytes, kRandomWrites, type KDisk } from '../model/journal-kernel.js';

/** Random bytes and random kernel writes (the model's helpers, under the names these tests use). */
export const randomBytes = kRandomBytes;
export const modelWrites = kRandomWrites;

export const K = 1024;
export const M = 1024 * 1024;

export function emptyStats(): EngineStats {
  const z = (): Record<BufferType | 'UNDO' | 'ORDERED', number> => ({ VOLUME: 0, META: 0, DATA: 0, UNDO: 0, ORDERED: 0 });
  return { reads: 0, readBytes: 0, writes: z(), writeBytes: z(), barriers: 0, undoRecords: 0, undoBytes: 0, cacheHits: 0, cacheMisses: 0, evictions: 0, combined: 0 };
}

/** The Engine contract over providers, without an undo log. */
export class DirectEngine implements Engine {
  readonly stats = emptyStats();
  readonly critical = false;
  private pending: { image: number; offset: number; data: Buffer; type: BufferType }[] = [];
  /** Every barrier, as [image] entries, for ordering assertions. */
  readonly log: ({ kind: 'write'; image: number; offset: number; length: number } | { kind: 'barrier'; image: number })[] = [];

  constructor(readonly providers: Provider[]) {}

  read(image: number, offset: number, length: number): Buffer {
    const out = (this.providers[image] as Provider).read(offset, length);
    for (const w of this.pending) {
      if (w.image !== image) continue;
      const s = Math.max(offset, w.offset);
      const e = Math.min(offset + length, w.offset + w.data.length);
      if (s < e) w.data.copy(out, s - offset, s - w.offset, e - w.offset);
    }
    this.stats.reads++;
    this.stats.readBytes += length;
    return out;
  }

  readInto(image: number, offset: number, target: Buffer): void {
    this.read(image, offset, target.length).copy(target);
  }

  abort(): void {
    this.pending = [];
  }

  write(image: number, offset: number, data: Buffer, type: BufferType): void {
    this.pending.push({ image, offset, data: Buffer.from(data), type });
  }

  writeOrdered(image: number, offset: number, data: Buffer): void {
    (this.providers[image] as Provider).write(offset, data);
    this.log.push({ kind: 'write', image, offset, length: data.length });
    this.stats.writes.ORDERED++;
    this.stats.writeBytes.ORDERED += data.length;
  }

  barrier(images?: number[]): void {
    for (const i of images ?? this.providers.map((_p, i) => i)) {
      (this.providers[i] as Provider).barrier();
      this.log.push({ kind: 'barrier', image: i });
      this.stats.barriers++;
    }
  }

  commit(): void {
    const order: BufferType[] = ['DATA', 'META', 'VOLUME'];
    for (const type of order) {
      for (const w of this.pending.filter((p) => p.type === type)) {
        (this.providers[w.image] as Provider).write(w.offset, w.data);
        this.stats.writes[type]++;
      }
      if (type === 'DATA') this.barrier();
    }
    this.barrier();
    this.pending = [];
  }

  close(): void {
    for (const p of this.providers) p.close();
  }
}

/** Memory providers over a model disk (the same Buffers: what the device writes, the model sees). */
export function providersOf(disk: KDisk): MemoryProvider[] {
  const d = new MemoryProvider('data.img', disk.d, { mediaSectorSize: 512 });
  if (disk.d === disk.j) return [d];
  return [d, new MemoryProvider('journal.img', disk.j, { mediaSectorSize: 512 })];
}

export interface Layout {
  two: boolean;
  /** Data area size. */
  dataSize: number;
  /** Journal space size. */
  jsize: number;
  checksum?: boolean;
  sectorSize?: number;
}

/** A fresh labeled journal (gjournal label, by the model). */
export function labeled(l: Layout, id = 0x5eed): KDisk {
  const ss = l.sectorSize ?? 512;
  return l.two
    ? kLabel({ size: l.dataSize + ss, journalImageSize: l.jsize + ss, id, checksum: l.checksum, sectorSize: ss })
    : kLabel({ size: l.dataSize + l.jsize + ss, jsize: l.jsize, id, checksum: l.checksum, sectorSize: ss });
}

export function openDevice(disk: KDisk, opts: { maxphys?: number; cacheLimit?: number; seed?: number } = {}): { dev: JournalDevice; engine: DirectEngine } {
  const engine = new DirectEngine(providersOf(disk));
  const dev = JournalDevice.open(engine, { maxphys: opts.maxphys, cacheLimit: opts.cacheLimit ?? 64 * M, random: kRandom(opts.seed ?? 1) });
  return { dev, engine };
}


