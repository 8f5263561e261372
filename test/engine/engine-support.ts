// Shared pieces of the flush engine's tests: simulated images and logs in one
// CrashWorld, recovery of a crash state, and random multi-image transactions
// with a byte model of what the images must hold afterwards.

import { createEngine, type FlushEngine } from '../../src/engine/engine.js';
import { CrashWorld, MemoryLogStore, type WorldState } from '../sim/memory-log.js';
import { recoverImages } from '../../src/engine/recovery.js';
import type { LogStore } from '../../src/engine/undo-store.js';
import { withFaults, withLogFaults, type FaultCounter } from '../../src/provider/fault.js';
import type { Provider } from '../../src/provider/provider.js';
import type { BufferType } from '../../src/engine/types.js';

export const DIR = '/sim';

export interface ImageSpec {
  size: number;
  sectorSize?: number;
  /** Fill: 'zero', or a seed for pseudo-random bytes. */
  fill: 'zero' | number;
}

export function filled(size: number, fill: 'zero' | number): Buffer {
  const b = Buffer.alloc(size);
  if (fill === 'zero') return b;
  let x = fill >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export interface World {
  world: CrashWorld;
  providers: Provider[];
  initial: Buffer[];
  sectorSizes: number[];
}

export function makeWorld(specs: ImageSpec[]): World {
  const world = new CrashWorld();
  const initial = specs.map((s) => filled(s.size, s.fill));
  const providers = specs.map((s, i) => world.sim.addImage(`${DIR}/c${i}.img`, initial[i] as Buffer, s.sectorSize ?? 512));
  return { world, providers, initial, sectorSizes: specs.map((s) => s.sectorSize ?? 512) };
}

export interface EngineSetup {
  cacheLimit: number;
  blockSize?: number;
  maxWrite?: number;
  directWrite?: number;
  faults?: FaultCounter;
}

export function engineOver(w: World, setup: EngineSetup, store: LogStore = w.world.logs): FlushEngine {
  const providers = setup.faults ? w.providers.map((p) => withFaults(p, setup.faults as FaultCounter)) : w.providers;
  const logStore = setup.faults ? withLogFaults(store, setup.faults) : store;
  return createEngine({ providers, cacheLimit: setup.cacheLimit, blockSize: setup.blockSize ?? 4096, maxWrite: setup.maxWrite ?? 16384, directWrite: setup.directWrite ?? 8192, logStore });
}

/** Runs recovery on a crash state (as the next command would) and returns the images afterwards. */
export function recoverState(w: World, state: Pick<WorldState, 'images' | 'logs'>): { images: Buffer[]; recovered: string[]; logsLeft: number } {
  const store = new MemoryLogStore(() => 0, state.logs);
  const providers = w.world.sim.reopen(state.images);
  const { recovered } = recoverImages({ store, providers, dirs: [], write: true });
  return { images: state.images, recovered, logsLeft: store.files.size };
}

// --- random transactions ----------------------------------------------------

export interface Op {
  image: number;
  offset: number;
  data: Buffer;
  type: BufferType;
}

/**
 * Layout of every image: the first half is metadata (META), the rest up to
 * the last sector is user data (DATA), the last sector is VOLUME.
 */
export function regions(size: number, ss: number): { metaEnd: number; last: number } {
  return { metaEnd: Math.floor(size / 2 / ss) * ss, last: size - ss };
}

export function randomOps(rng: () => number, w: World, count: number): Op[] {
  const ops: Op[] = [];
  for (let k = 0; k < count; k++) {
    const image = Math.floor(rng() * w.providers.length);
    const p = w.providers[image] as Provider;
    const ss = p.mediaSectorSize;
    const { metaEnd, last } = regions(p.size, ss);
    const r = rng();
    const type: BufferType = r < 0.15 ? 'VOLUME' : r < 0.7 ? 'META' : 'DATA';
    let offset: number;
    let sectors: number;
    if (type === 'VOLUME') {
      offset = last;
      sectors = 1;
    } else {
      const [lo, hi] = type === 'META' ? [0, metaEnd] : [metaEnd, last];
      const span = (hi - lo) / ss;
      sectors = 1 + Math.floor(rng() * Math.min(span, rng() < 0.8 ? 4 : 40));
      offset = lo + Math.floor(rng() * (span - sectors + 1)) * ss;
    }
    const data = rng() < 0.2 ? Buffer.alloc(sectors * ss) : filled(sectors * ss, Math.floor(rng() * 2 ** 31) + 1);
    ops.push({ image, offset, data, type });
  }
  return ops;
}

/** The images after `ops`, applied to copies of `before`. */
export function applyOps(before: Buffer[], ops: Op[]): Buffer[] {
  const out = before.map((b) => Buffer.from(b));
  for (const op of ops) op.data.copy(out[op.image] as Buffer, op.offset);
  return out;
}

/** The bytes all-or-nothing covers: everything but the DATA region. */
export function protectedBytes(img: Buffer, ss: number): Buffer {
  const { metaEnd, last } = regions(img.length, ss);
  return Buffer.concat([img.subarray(0, metaEnd), img.subarray(last)]);
}

export type Verdict = 'before' | 'after' | 'neither';

export function verdict(images: Buffer[], before: Buffer[], after: Buffer[], sectorSizes: number[]): Verdict {
  const eq = (want: Buffer[]): boolean =>
    images.every((img, i) => protectedBytes(img, sectorSizes[i] as number).equals(protectedBytes(want[i] as Buffer, sectorSizes[i] as number)));
  if (eq(before)) return 'before';
  if (eq(after)) return 'after';
  return 'neither';
}

/** A provider seen under another identity (a crash state reopened must keep the inode numbers its undo log names). */
export function withIdentity(p: Provider, identity: Provider['identity']): Provider {
  return {
    path: p.path,
    name: p.name,
    size: p.size,
    mediaSectorSize: p.mediaSectorSize,
    writable: p.writable,
    identity,
    read: (o, l) => p.read(o, l),
    readInto: (o, t) => p.readInto(o, t),
    write: (o, d) => p.write(o, d),
    barrier: () => p.barrier(),
    close: () => p.close(),
  };
}
