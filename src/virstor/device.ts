// Opening a virstor device by name (virstor.md, "open"): what the kernel does
// in virstor_check_and_run (sys/geom/virstor/g_virstor.c) once taste.ts has
// chosen the device's images:
//
//  - lock the chosen images through a session (which rolls back a hot undo
//    log), re-read their metadata under the lock, and taste again if anything
//    changed;
//  - check the geometry the metadata gives (map size, sector size, chunks
//    over the metadata sector), and scan the map when the command allocates
//    (map-scan.ts) — chunk_next and the flags recomputed as the kernel keeps
//    them in memory;
//  - hold the session for the verb: map entries, metadata updates, commit.

import { virstorProviderName } from '../geom/device-name.js';
import { GeomError, CorruptError } from '../errors.js';
import type { Engine } from '../engine/types.js';
import type { ProviderIdentity } from '../provider/provider.js';
import { ChunkAllocator, type AllocComponent } from './allocator.js';
import type { VirstorHost, VirstorSession } from './host.js';
import { MapView } from './mapview.js';
import { mapGeometry, VIRSTOR_MAP_ENTRY_SIZE, type MapEntry, type MapGeometry } from './map.js';
import { scanMap, type MapProblem, type MapProgress } from './map-scan.js';
import { encodeVirstorMetadata, VIRSTOR_METADATA_SIZE, type VirstorMetadata } from './metadata.js';
import { checkExtras, tasteForOpen, type Member } from './taste.js';

export interface OpenVirstorOptions {
  write: boolean;
  /** Stream the map: validate it, recompute chunk_next, set up the allocator. Needed to allocate. */
  scan: boolean;
  /** Images opened in the same session after the components (add's new images). */
  extraPaths?: string[];
  /**
   * Open the device even when a map entry is out of range, recording the
   * problem instead of refusing (check reports it).
   */
  lenient?: boolean;
  /** The scan's progress: map bytes passed (read or skipped as holes) and the map's size. */
  onProgress?: MapProgress;
}

export interface VirstorComponent extends AllocComponent {
  /** Component index (`no`); also the component's image index in the session's engine. */
  readonly index: number;
  readonly path: string;
  readonly identity: ProviderIdentity;
  /** The image's media size (== provsize). */
  readonly size: number;
  /** The metadata as found on disk. */
  readonly md: VirstorMetadata;
  /** Allocated map entries pointing here (after a scan). */
  allocated: number;
  /** The highest allocated chunk, -1 for none (after a scan). */
  highest: number;
}

/** How often open re-tastes after a recovery or a change under its feet before giving up. */
const OPEN_ATTEMPTS = 3;

/**
 * Finds, locks and validates the device `name`. Throws a GeomError naming the
 * component and field for every refusal of virstor.md "open". The returned
 * device owns the session: close() it.
 */
export function openVirstor(host: VirstorHost, name: string, opts: OpenVirstorOptions): VirstorDevice {
  for (let attempt = 1; ; attempt++) {
    const outcome = tasteForOpen(host, name, opts.write);
    const members = outcome.chosen ?? outcome.all;
    if (members.length === 0) throw outcome.refusal as GeomError;
    const extra = opts.extraPaths ?? [];
    checkExtras(host, name, members, extra);
    const session = host.openSession([...members.map((m) => m.path), ...extra], { write: opts.write, above: virstorProviderName(name) });
    let keep = false;
    try {
      // A rolled-back transaction, or another process between taste and lock, changed the images.
      const changed =
        session.recovered.length > 0 ||
        members.some((m, i) => !session.engine.read(i, m.size - m.sectorSize, m.sectorSize).equals(m.sector));
      if (changed && attempt < OPEN_ATTEMPTS) continue;
      if (changed) throw new GeomError('LOCKED', `virstor ${name} keeps changing while geomctl opens it`, 'wait for the other process to finish');
      if (outcome.refusal || !outcome.chosen) throw outcome.refusal as GeomError;
      const warnings = [...outcome.ignored.map((i) => i.error.message), ...outcome.warnings];
      const device = new VirstorDevice(name, session, outcome.chosen, extra.length, opts, warnings);
      keep = true;
      return device;
    } finally {
      if (!keep) session.close();
    }
  }
}

export class VirstorDevice {
  readonly id: number;
  readonly virsize: bigint;
  readonly chunkSize: number;
  readonly sectorSize: number;
  readonly geometry: MapGeometry;
  readonly components: VirstorComponent[];
  readonly engine: Engine;
  readonly writable: boolean;
  /** Warnings for the user (src/ never prints): ignored images, stale sets, odd metadata. */
  readonly warnings: string[];
  /** Map entries out of range, when opened leniently. */
  readonly mapProblems: MapProblem[] = [];
  /** Engine image indices of the session's extra images (add's new ones). */
  readonly extraImages: number[];
  readonly map: MapView;
  private alloc: ChunkAllocator | undefined;

  constructor(
    readonly name: string,
    private readonly session: VirstorSession,
    members: Member[],
    extraCount: number,
    opts: OpenVirstorOptions,
    warnings: string[],
  ) {
    const first = (members[0] as Member).md;
    this.id = first.id;
    this.virsize = first.virsize;
    this.chunkSize = first.chunkSize;
    this.sectorSize = (members[0] as Member).sectorSize;
    this.engine = session.engine;
    this.writable = opts.write;
    this.warnings = warnings;
    this.extraImages = Array.from({ length: extraCount }, (_v, k) => members.length + k);
    try {
      this.geometry = mapGeometry(this.virsize, this.chunkSize, this.sectorSize);
    } catch (err) {
      throw new CorruptError(`virstor ${this.name}: ${(err as Error).message}`);
    }
    if (this.virsize % BigInt(this.chunkSize) !== 0n) {
      warnings.push(`virstor ${this.name}: virsize ${this.virsize} is not a multiple of the chunk size; the device is truncated to ${BigInt(this.geometry.virtualChunks) * BigInt(this.chunkSize)} bytes (as the kernel does)`);
    }
    if (this.sectorSize % VIRSTOR_MAP_ENTRY_SIZE !== 0) {
      throw new CorruptError(`virstor ${this.name}: map entries do not fit exactly in a ${this.sectorSize}-byte sector`);
    }
    this.components = members.map((m, i) => this.component(m, i));
    const c0 = this.components[0] as VirstorComponent;
    if (this.geometry.mapSize > c0.size - this.sectorSize) {
      throw new CorruptError(`virstor ${this.name}: component 0 (${c0.path}) cannot hold the ${this.geometry.mapSize}-byte map`);
    }
    this.map = new MapView(this.engine, this.sectorSize, this.geometry);
    if (opts.scan) {
      this.mapProblems = scanMap(this, opts.lenient === true, opts.onProgress);
      this.alloc = new ChunkAllocator(this.name, this.components);
    }
  }

  private component(m: Member, index: number): VirstorComponent {
    const md = m.md;
    // Chunk k covers [k*chunk, (k+1)*chunk): it must end before the metadata sector.
    const fit = Math.floor((m.size - this.sectorSize) / this.chunkSize);
    const usable = Math.min(md.chunkCount, fit);
    if (md.chunkCount > fit) {
      this.warnings.push(`${m.path}: chunk_count ${md.chunkCount} includes the chunk that overlaps the metadata sector; geomctl never allocates it`);
    }
    // Component 0's map area is reserved whatever chunk_reserved says.
    const reserved = index === 0 ? Math.max(md.chunkReserved, this.geometry.mapChunks) : md.chunkReserved;
    return {
      index,
      name: m.name,
      path: m.path,
      identity: m.identity,
      size: m.size,
      md,
      usable,
      chunkReserved: reserved,
      chunkNext: Math.max(md.chunkNext, reserved),
      flags: md.flags,
      allocated: 0,
      highest: -1,
    };
  }

  /** Why a map entry is out of range (the kernel's "Invalid entry"), or undefined. */
  invalidEntry(v: number, providerNo: number, providerChunk: number): string | undefined {
    const n = this.components.length;
    if (providerNo >= n) return `map entry ${v} points to component ${providerNo}, but the device has ${n}`;
    const count = (this.components[providerNo] as VirstorComponent).md.chunkCount;
    if (providerChunk >= count) return `map entry ${v} points to chunk ${providerChunk} of component ${providerNo}, which has ${count}`;
    return undefined;
  }

  /**
   * The map entry of a virtual chunk, checked: a device opened without a scan
   * validates the entries it uses, as the scan validates them all.
   */
  entry(v: number): MapEntry {
    const e = this.map.get(v);
    const problem = this.invalidEntry(v, e.providerNo, e.providerChunk);
    if (problem) throw new CorruptError(`virstor ${this.name}: invalid ${problem}`, "run 'geomctl virstor check'");
    return e;
  }

  /** The allocator (the device must have been opened with scan). */
  get allocator(): ChunkAllocator {
    if (!this.alloc) throw new Error('virstor device opened without a map scan');
    return this.alloc;
  }

  get scanned(): boolean {
    return this.alloc !== undefined;
  }

  /** The virtual size in bytes the device serves (virsize truncated to whole chunks). */
  get size(): number {
    return this.geometry.virtualChunks * this.chunkSize;
  }

  /** The metadata a component gets at the next update (update_metadata: chunk_next, flags, md_count). */
  metadataOf(c: VirstorComponent): VirstorMetadata {
    return { ...c.md, chunkNext: c.chunkNext, flags: c.flags, count: this.components.length, no: c.index };
  }

  /** Writes a component's metadata sector (VOLUME) when it differs from what is on disk. */
  writeMetadata(image: number, size: number, md: VirstorMetadata): void {
    const offset = size - this.sectorSize;
    const current = this.engine.read(image, offset, this.sectorSize);
    const sector = encodeVirstorMetadata(md, Buffer.alloc(this.sectorSize));
    if (current.subarray(0, VIRSTOR_METADATA_SIZE).equals(sector.subarray(0, VIRSTOR_METADATA_SIZE))) return;
    this.engine.write(image, offset, sector, 'VOLUME');
  }

  /** update_metadata on every component (only changed sectors are written). */
  updateMetadata(): void {
    for (const c of this.components) this.writeMetadata(c.index, c.size, this.metadataOf(c));
  }

  /** Ends the command's transaction: pending map sector, metadata, commit. */
  commit(): void {
    this.map.flush();
    if (this.scanned) this.updateMetadata();
    this.engine.commit();
    this.map.committed();
  }

  /** Releases the images (uncommitted changes are dropped). */
  close(): void {
    this.session.close();
  }
}
