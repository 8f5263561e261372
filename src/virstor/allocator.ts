// The virstor chunk allocator: the kernel's allocate_chunk (g_virstor.c) and
// its watermarks, over the components' chunk counters. Allocation is strictly
// sequential: the current component's chunk_next++, and when it is full the
// next component becomes current, its reserved chunks skipped. A component is
// never revisited, so every component before the current one is full.
//
// Divergences from the kernel (virstor.md, "open"): the allocator never hands
// out a chunk that overlaps a component's last sector (`usable` excludes it),
// and whenever it allocates from a component that lacks ALLOCATED|CURRENT
// (a device whose current component was chosen at open, not by a switch) it
// sets them, so a component that holds chunks is always flagged ALLOCATED.

import { VIRSTOR_PROVIDER_ALLOCATED, VIRSTOR_PROVIDER_CURRENT } from './metadata.js';

/** kern.geom.virstor.chunk_watermark: warn when a component has fewer free chunks. */
export const CHUNK_WATERMARK = 100;
/** kern.geom.virstor.component_watermark: warn when this few components remain after the current one. */
export const COMPONENT_WATERMARK = 1;

export interface AllocComponent {
  /** The provider name, for messages. */
  readonly name: string;
  /** Chunks that may hold data: chunk_count without a chunk over the last sector. */
  readonly usable: number;
  readonly chunkReserved: number;
  /** Next chunk to hand out (mutated by the allocator). */
  chunkNext: number;
  /** VIRSTOR_PROVIDER_* flags (mutated by the allocator). */
  flags: number;
}

export interface Allocation {
  component: number;
  chunk: number;
}

/** Free chunks of one component from the allocator's point of view. */
function freeOf(c: AllocComponent): number {
  return Math.max(0, c.usable - Math.max(c.chunkNext, c.chunkReserved));
}

export class ChunkAllocator {
  private cur: number;
  private readonly events: string[] = [];

  constructor(
    readonly deviceName: string,
    readonly components: AllocComponent[],
  ) {
    if (components.length === 0) throw new RangeError('a virstor device has at least one component');
    this.cur = ChunkAllocator.firstCurrent(components);
  }

  /** virstor_check_and_run: the first component with free chunks, else the last one. */
  static firstCurrent(components: readonly AllocComponent[]): number {
    const i = components.findIndex((c) => freeOf(c) > 0);
    return i < 0 ? components.length - 1 : i;
  }

  get current(): number {
    return this.cur;
  }

  /** Chunks the allocator can still hand out (the current component and every later one). */
  freeChunks(): number {
    let n = 0;
    for (let i = this.cur; i < this.components.length; i++) n += freeOf(this.components[i] as AllocComponent);
    return n;
  }

  /**
   * allocate_chunk. Throws RangeError when every component is full: callers
   * count the chunks a request needs against freeChunks() first.
   */
  allocate(): Allocation {
    let comp = this.components[this.cur] as AllocComponent;
    // Reserved chunks (component 0's map area) are never handed out.
    if (comp.chunkNext < comp.chunkReserved) comp.chunkNext = comp.chunkReserved;
    while (comp.chunkNext >= comp.usable) {
      if (this.cur >= this.components.length - 1) throw new RangeError(`all physical space allocated for ${this.deviceName}`);
      comp.flags &= ~VIRSTOR_PROVIDER_CURRENT;
      this.cur++;
      comp = this.components[this.cur] as AllocComponent;
      if (this.cur >= this.components.length - COMPONENT_WATERMARK - 1) {
        this.events.push(`Device ${this.deviceName} running out of components (switching to ${this.cur + 1}/${this.components.length}: ${comp.name})`);
      }
      if (comp.chunkNext < comp.chunkReserved) comp.chunkNext = comp.chunkReserved;
    }
    const wanted = VIRSTOR_PROVIDER_ALLOCATED | VIRSTOR_PROVIDER_CURRENT;
    if ((comp.flags & wanted) !== wanted) {
      for (const other of this.components) other.flags &= ~VIRSTOR_PROVIDER_CURRENT;
      comp.flags |= wanted;
    }
    return { component: this.cur, chunk: comp.chunkNext++ };
  }

  /**
   * The kernel's watermark messages for what was allocated so far: every
   * switch into the last components, then the current component's
   * chunk_watermark. Drains the switch messages.
   */
  takeWarnings(): string[] {
    const out = this.events.splice(0);
    const comp = this.components[this.cur] as AllocComponent;
    const left = freeOf(comp);
    if (left < CHUNK_WATERMARK) {
      out.push(`Component ${comp.name} of ${this.deviceName} is running out of free space (${left} chunks left)`);
    }
    return out;
  }
}
