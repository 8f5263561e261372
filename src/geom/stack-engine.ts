// One command's engine over a stack of geoms (providers.md, "Crash safety
// across layers"). A class opened on a stack gets an Engine like any other:
// image i is either an image of the bottom flush engine or the provider of a
// geom below (a Layer), and the class never knows which. Every layer writes
// through the one bottom engine, so one command is one transaction over the
// images at the bottom: the undo log holds every layer's metadata (a layer
// passes the buffer type down with the bytes), a barrier of an upper class is
// a barrier of every image below it, and commit lets each layer put its own
// pending state (a virstor map sector, a journal to terminate) into the
// transaction before the bottom engine commits it.

import type { Provider } from '../provider/provider.js';
import type { BufferType, Engine, EngineStats } from '../engine/types.js';

/** A geom's provider as a consumer above it uses it: GEOM's bio over the geom's own engines. */
export interface Layer {
  /** What the class above sees: name, media size, sector size (Provider.read goes through the layer). */
  readonly provider: Provider;
  readInto(offset: number, target: Buffer): void;
  /** A change of the given type: the layer keeps the type for the bytes it puts below (undo coverage). */
  write(offset: number, data: Buffer, type: BufferType): void;
  /** Written at once, in call order, durable at the next barrier: what HAMMER's ordered writes promise. */
  writeOrdered(offset: number, data: Buffer): void;
  /** Every write issued to the layer before it is durable. */
  barrier(): void;
  /** Where the range may hold data (allocated chunks, the data image's regions). */
  dataRegions(offset: number, length: number): (readonly [number, number])[];
  /** Puts the layer's own pending changes into the transaction: called before the bottom commits. */
  prepareCommit(): void;
  /** After the bottom committed: work a layer does once its consumer's changes are durable (a journal's copy). */
  afterCommit(): void;
}

type Route = { image: number } | { layer: Layer };

export class StackEngine implements Engine {
  readonly providers: readonly Provider[];

  /**
   * `bottom` is the flush engine over the images at the bottom; `routes[i]`
   * says what image i of this engine is; `layers` are every layer of the
   * stack, lowest first (they prepare their commits top-down).
   */
  constructor(
    private readonly bottom: Engine,
    private readonly routes: readonly Route[],
    private readonly layers: readonly Layer[],
  ) {
    this.providers = routes.map((r) => ('image' in r ? (bottom.providers[r.image] as Provider) : r.layer.provider));
  }

  get stats(): EngineStats {
    return this.bottom.stats;
  }

  get critical(): boolean {
    return this.bottom.critical;
  }

  private route(image: number): Route {
    const r = this.routes[image];
    if (!r) throw new RangeError(`no image ${image} in this stack`);
    return r;
  }

  read(image: number, offset: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.readInto(image, offset, out);
    return out;
  }

  readInto(image: number, offset: number, target: Buffer): void {
    const r = this.route(image);
    if ('image' in r) this.bottom.readInto(r.image, offset, target);
    else r.layer.readInto(offset, target);
  }

  /** A layer has no cache of this engine's to bypass: its reads go through the layer. */
  readUncached(image: number, offset: number, target: Buffer): void {
    const r = this.route(image);
    if ('layer' in r) r.layer.readInto(offset, target);
    else if (this.bottom.readUncached) this.bottom.readUncached(r.image, offset, target);
    else this.bottom.readInto(r.image, offset, target);
  }

  write(image: number, offset: number, data: Buffer, type: BufferType): void {
    const r = this.route(image);
    if ('image' in r) this.bottom.write(r.image, offset, data, type);
    else r.layer.write(offset, data, type);
  }

  writeOrdered(image: number, offset: number, data: Buffer): void {
    const r = this.route(image);
    if ('image' in r) this.bottom.writeOrdered(r.image, offset, data);
    else r.layer.writeOrdered(offset, data);
  }

  barrier(images?: number[]): void {
    const list = images ?? this.routes.map((_r, i) => i);
    const bottomImages: number[] = [];
    for (const i of list) {
      const r = this.route(i);
      if ('image' in r) bottomImages.push(r.image);
      else r.layer.barrier();
    }
    if (bottomImages.length > 0 || images === undefined) this.bottom.barrier(images === undefined ? undefined : bottomImages);
  }

  dataRegions(image: number, offset: number, length: number): (readonly [number, number])[] {
    const r = this.route(image);
    if ('layer' in r) return r.layer.dataRegions(offset, length);
    return this.bottom.dataRegions?.(r.image, offset, length) ?? [[offset, offset + length]];
  }

  commit(): void {
    // Upper layers first: what a layer does writes into the layers below it.
    // The first bottom commit is the command's commit point; a layer's work
    // after it (a journal's copy and CLEAN mark) changes the layers below,
    // which commit in turn: one more round per layer settles the stack.
    const topDown = [...this.layers].reverse();
    for (let round = 0; round <= this.layers.length; round++) {
      for (const l of topDown) l.prepareCommit();
      this.bottom.commit();
      for (const l of topDown) l.afterCommit();
    }
  }

  abort(): void {
    this.bottom.abort();
  }

  close(): void {
    this.bottom.close();
  }
}

/** Identities of layer providers: no file has them (dev -1), one per provider name in this process. */
const layerInodes = new Map<string, number>();

/** A Provider for a layer: what tasting and the classes read of it; writes go through the engine only. */
export function layerProvider(o: { name: string; path: string; size: number; sectorSize: number; writable: boolean }, layer: () => Layer): Provider {
  let ino = layerInodes.get(o.path);
  if (ino === undefined) {
    ino = layerInodes.size + 1;
    layerInodes.set(o.path, ino);
  }
  return {
    path: o.path,
    name: o.name,
    size: o.size,
    mediaSectorSize: o.sectorSize,
    writable: o.writable,
    identity: { dev: -1, ino },
    read(offset, length) {
      const out = Buffer.alloc(length);
      layer().readInto(offset, out);
      return out;
    },
    readInto: (offset, target) => layer().readInto(offset, target),
    write() {
      throw new Error(`${o.name}: a layer provider is written through its stack's engine`);
    },
    dataRegions: (offset, length) => layer().dataRegions(offset, length),
    barrier: () => layer().barrier(),
    close() {
      // The stack's bottom session owns the images.
    },
  };
}
