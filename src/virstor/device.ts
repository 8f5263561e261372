// Opening a virstor device by name (virstor.md, "open"): what the kernel does
// in g_virstor_taste, add_provider_to_geom and virstor_check_and_run
// (sys/geom/virstor/g_virstor.c), for image files, but refusing clearly where
// the kernel logs and gives up, and safer where a crashed kernel leaves stale
// metadata:
//
//  - taste every candidate, keep the images whose metadata names the device,
//    ignore (with a warning) those whose provsize or hardcoded name does not
//    match the image, group by md_id, order by `no`;
//  - two sets under one name: use the complete one, warn about the other;
//  - for writing, when the taste finds no usable set, roll back the crashed
//    transactions covering any candidate and taste again: their images may
//    carry a name they are about to lose;
//  - lock the chosen images through a session (which rolls back a hot undo
//    log), re-read their metadata under the lock, and taste again if anything
//    changed;
//  - stream the map once (never whole in memory: 1 PiB of 4 MiB chunks is a
//    2 GiB map, and only the parts of a sparse image that hold data are
//    read) to validate every entry and recompute each component's
//    chunk_next as max(chunk_reserved, 1 + highest allocated chunk).

import { GeomError, CorruptError, UsageError } from '../errors.js';
import type { Engine } from '../engine/types.js';
import type { Provider, ProviderIdentity } from '../provider/provider.js';
import { alignedDataRegions } from '../provider/holes.js';
import { alignedBuffer } from '../aligned.js';
import { tasteProvider } from '../taste.js';
import { ChunkAllocator, type AllocComponent } from './allocator.js';
import { MapView } from './mapview.js';
import { MAP_ENTRY, mapGeometry, VIRSTOR_MAP_ALLOCATED, VIRSTOR_MAP_ENTRY_SIZE, type MapEntry, type MapGeometry } from './map.js';
import {
  decodeVirstorMetadata,
  encodeVirstorMetadata,
  VIRSTOR_METADATA_SIZE,
  VIRSTOR_PROVIDER_ALLOCATED,
  VIRSTOR_PROVIDER_CURRENT,
  type VirstorMetadata,
} from './metadata.js';
import { identityKey } from '../util/identity.js';

/** What openVirstor needs of a session (src/session.ts's Session has it). */
export interface VirstorSession {
  readonly engine: Engine;
  readonly providers: readonly Provider[];
  /** Undo logs rolled back while opening: the images changed under the taste. */
  readonly recovered: readonly string[];
  close(): void;
}

/** What tasting needs: the candidates and a way to read them. */
export interface TasteHost {
  /** Candidate image paths (cli.md, "Tasting"): named images and the -d directories' files. */
  readonly candidates: readonly string[];
  /** Opens an image read-only for tasting: no lock, no recovery. The caller closes it. */
  probe(path: string): Provider;
  /** -H: accept components whose hardcoded provider name differs from the image name. */
  readonly ignoreHardcoded: boolean;
}

/** Where a device's images come from: the command line, the -d directories, the session layer. */
export interface VirstorHost extends TasteHost {
  /**
   * Opens the images of the command through the flush engine (locks,
   * recovery). `above`: the provider the device offers, virstor/<name> — a
   * component lying on it would be a loop (src/geom/stack.ts).
   */
  openSession(paths: string[], opts: { write: boolean; above?: string }): VirstorSession;
  /**
   * Rolls back the crashed transactions that cover candidates (src/session.ts,
   * rollBackCandidates); returns the undo logs rolled back. A host whose
   * sessions keep no undo logs beside the candidates needs none.
   */
  rollBackCandidates?(): readonly string[];
  /** The crashed transactions covering candidates (src/session.ts, unfinishedCovering). */
  unfinished?(): readonly { log: string; paths: readonly string[] }[];
}

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
  onProgress?: (done: number, total: number) => void;
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

/** A tasted image that carries this device's name. */
export interface Member {
  path: string;
  name: string;
  identity: ProviderIdentity;
  size: number;
  sectorSize: number;
  sector: Buffer;
  md: VirstorMetadata;
}

/**
 * A virstor image that tasting passes over, as the kernel does (logging
 * why): its metadata does not decode, or its provsize or hardcoded name does
 * not match the image.
 */
export interface IgnoredImage {
  path: string;
  error: GeomError;
}

export interface TasteOutcome {
  /** The complete set to open, in component order. */
  chosen?: Member[];
  /** Why no set can be opened (thrown after giving recovery its chance). */
  refusal?: GeomError;
  /** Every image that carries the name (recovery must see them all). */
  all: Member[];
  /** Images carrying the name that the kernel would ignore. */
  ignored: IgnoredImage[];
  /** Other warnings (stale components passed over). */
  warnings: string[];
}


/**
 * Tastes every candidate and keeps those carrying the device's name (every
 * virstor image when `name` is undefined), applying the kernel's ignore rules.
 */
function tasteMembers(host: TasteHost, name: string | undefined, ignored: IgnoredImage[], undecodable: IgnoredImage[]): Member[] {
  const members: Member[] = [];
  const seen = new Set<string>();
  for (const path of host.candidates) {
    let provider: Provider;
    try {
      provider = host.probe(path);
    } catch {
      continue; // not an image (or unreadable): not a candidate of this device
    }
    try {
      const key = identityKey(provider.identity);
      if (seen.has(key)) continue;
      seen.add(key);
      const tasted = tasteProvider(provider);
      if (!tasted || tasted.className !== 'VIRSTOR') continue;
      let md: VirstorMetadata;
      try {
        md = decodeVirstorMetadata(tasted.sector, path);
      } catch (err) {
        if (err instanceof GeomError) undecodable.push({ path, error: err });
        continue;
      }
      if (name !== undefined && md.name !== name) continue;
      if (md.provsize !== BigInt(provider.size)) {
        const error = new GeomError('MISMATCH', `${path}: ignored: its metadata records provsize ${md.provsize} but the image has ${provider.size} bytes (the kernel ignores it too)`);
        ignored.push({ path, error });
        continue;
      }
      if (md.provider !== '' && md.provider !== provider.name && !host.ignoreHardcoded) {
        ignored.push({ path, error: new GeomError('MISMATCH', `${path}: ignored: its metadata hardcodes provider '${md.provider}', not '${provider.name}' (use -H to accept it)`) });
        continue;
      }
      members.push({ path, name: provider.name, identity: provider.identity, size: provider.size, sectorSize: tasted.sectorSize, sector: tasted.sector, md });
    } finally {
      provider.close();
    }
  }
  return members;
}

/** Why a set of members with one id is not a complete device, or undefined when it is. */
function setProblem(name: string, set: Member[]): GeomError | undefined {
  const first = set[0] as Member;
  for (const m of set) {
    const differs: string[] = [];
    if (m.md.virsize !== first.md.virsize) differs.push(`virsize ${m.md.virsize} vs ${first.md.virsize}`);
    if (m.md.chunkSize !== first.md.chunkSize) differs.push(`chunk size ${m.md.chunkSize} vs ${first.md.chunkSize}`);
    if (m.md.count !== first.md.count) differs.push(`component count ${m.md.count} vs ${first.md.count}`);
    if (m.sectorSize !== first.sectorSize) differs.push(`sector size ${m.sectorSize} vs ${first.sectorSize}`);
    if (differs.length) {
      return new GeomError('MISMATCH', `virstor ${name}: components ${first.path} and ${m.path} disagree: ${differs.join(', ')}`, 'run \'geomctl virstor check\' or clear the stale component');
    }
  }
  const duplicate = duplicateClaim(name, set);
  if (duplicate) return duplicate;
  const present = new Set(set.map((m) => m.md.no));
  for (let i = 0; i < first.md.count; i++) {
    if (!present.has(i)) {
      return new GeomError('NOT_FOUND', `virstor ${name} is incomplete: component ${i} of ${first.md.count} not found`, 'name the directory that holds it with -d DIR');
    }
  }
  return undefined;
}

/**
 * Two images of one set claiming the same component index (a copied
 * component image, say): nothing says which one the device uses, so it
 * cannot be used, read or listed as if it could.
 */
export function duplicateClaim(name: string, set: readonly Member[]): GeomError | undefined {
  const byNo = new Map<number, Member>();
  for (const m of set) {
    const other = byNo.get(m.md.no);
    if (other) {
      return new GeomError(
        'MISMATCH',
        `virstor ${name}: ${other.path} and ${m.path} both claim component ${m.md.no}`,
        "move the copy out of the directories tasted, or clear the stale one with 'geomctl virstor clear'",
      );
    }
    byNo.set(m.md.no, m);
  }
  return undefined;
}

function describeSet(set: Member[]): string {
  return `id ${(set[0] as Member).md.id} (${set.map((m) => m.path).join(', ')})`;
}

/**
 * The names of the virstor devices among the candidates, in the order first
 * found; the images the kernel would ignore (any name) are added to `ignored`.
 */
export function virstorNames(host: VirstorHost, ignored: IgnoredImage[] = []): string[] {
  return [...new Set(tasteMembers(host, undefined, ignored, ignored).map((m) => m.md.name))];
}

/** Taste for one device: its images, the set to use, or why none can be used. Opens no session. */
export function tasteDevice(host: TasteHost, name: string): TasteOutcome {
  const ignored: IgnoredImage[] = [];
  const undecodable: IgnoredImage[] = [];
  const all = tasteMembers(host, name, ignored, undecodable);
  const warnings: string[] = [];
  // An image ignored, or whose metadata does not decode, may be the missing component: say so.
  const notes = [...ignored.map((i) => i.error.message), ...undecodable.map((u) => `unreadable metadata: ${u.error.message}`)];
  if (all.length === 0) {
    // Every image of the name may have been ignored (provsize, hardcoded name): that is the reason to give.
    const extra = notes.length ? ` (${notes.join('; ')})` : '';
    return {
      all,
      ignored,
      warnings,
      refusal: new GeomError('NOT_FOUND', `no virstor device named ${name} found${extra}`, 'name the directory that holds its images with -d DIR'),
    };
  }
  const sets = new Map<number, Member[]>();
  for (const m of all) {
    const list = sets.get(m.md.id) ?? [];
    list.push(m);
    sets.set(m.md.id, list);
  }
  const judged = [...sets.values()].map((set) => ({ set, problem: setProblem(name, set) }));
  const complete = judged.filter((j) => !j.problem);
  if (judged.length === 1) {
    const only = judged[0] as { set: Member[]; problem: GeomError | undefined };
    if (only.problem) {
      const refusal = notes.length
        ? new GeomError(only.problem.code, `${only.problem.message} (${notes.join('; ')})`, only.problem.hint)
        : only.problem;
      return { all, ignored, warnings, refusal };
    }
  } else if (complete.length !== 1) {
    const listing = judged.map((j) => describeSet(j.set)).join(' and ');
    const state = complete.length === 0 ? 'none of them is complete' : 'each of them is complete';
    return {
      all,
      ignored,
      warnings,
      refusal: new GeomError('MISMATCH', `virstor ${name}: components with different ids: ${listing}; ${state}`, "clear the stale components with 'geomctl virstor clear'"),
    };
  } else {
    for (const j of judged) {
      if (j.problem) warnings.push(`virstor ${name}: ignoring stale components ${describeSet(j.set)}; clear them with 'geomctl virstor clear'`);
    }
  }
  const chosen = [...(complete[0] as { set: Member[] }).set].sort((a, b) => a.md.no - b.md.no);
  return { all, ignored, warnings, chosen };
}

/**
 * The session opens each image once (by device and inode), so an extra image
 * must be none of the components and named once: refuse before opening.
 */
function checkExtras(host: VirstorHost, name: string, members: Member[], extra: string[]): void {
  const seen = new Map<string, string>();
  for (const m of members) seen.set(identityKey(m.identity), m.path);
  for (const path of extra) {
    const p = host.probe(path);
    try {
      const key = identityKey(p.identity);
      const member = members.find((m) => identityKey(m.identity) === key);
      if (member) throw new GeomError('REFUSED', `${path} is already a component of virstor ${name} (component ${member.md.no}, ${member.path})`);
      const other = seen.get(key);
      if (other !== undefined) throw new UsageError(`${path} is named twice${other !== path ? ` (also as ${other})` : ''}`);
      seen.set(key, path);
    } finally {
      p.close();
    }
  }
}

/**
 * The taste of an open. A refusal may be an unfinished transaction's doing:
 * a killed relabel of the device's images leaves them (or some of them)
 * carrying the new name, and the session that would roll it back is never
 * opened over images that no longer carry this one. A writing open then
 * rolls back the transactions covering any candidate and tastes again. Only
 * on a refusal: a device that is found gets a session over its images, whose
 * recovery rolls back what concerns them, and other devices' transactions
 * are left to their own commands.
 */
function tasteForOpen(host: VirstorHost, name: string, write: boolean): TasteOutcome {
  const outcome = tasteDevice(host, name);
  if (!outcome.refusal) return outcome;
  if (write) return host.rollBackCandidates && host.rollBackCandidates().length > 0 ? tasteDevice(host, name) : outcome;
  // A read-only open cannot roll back: say that the names it tasted may be half changed.
  const crashed = host.unfinished?.()[0];
  if (!crashed) return outcome;
  const image = crashed.paths[0] as string;
  const refusal = new GeomError(
    'UNFINISHED',
    `${outcome.refusal.message}, and ${image} has an unfinished transaction (${crashed.log}) that may have changed its names`,
    `run a writing command to roll it back (e.g. 'geomctl virstor stop ${name}'), then try again`,
  );
  return { ...outcome, refusal };
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
    const session = host.openSession([...members.map((m) => m.path), ...extra], { write: opts.write, above: `virstor/${name}` });
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

/** Map bytes read per engine call while scanning. */
const SCAN_BLOCK = 1 << 20;
/** The map's data regions are widened to this: fewer, larger reads; an isolated 4 KiB of entries costs one. */
const REGION_ALIGN = 64 * 1024;
/** Zero runs are skipped this many bytes at a time (a native compare). */
const ZERO_STRIDE = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(ZERO_STRIDE);


/** A problem found in the map while opening leniently. */
export interface MapProblem {
  virtualChunk: number;
  message: string;
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
    if (opts.scan) this.scan(opts.lenient === true, opts.onProgress);
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

  /**
   * One pass over the map: every entry in range (the kernel's "Invalid
   * entry"), per component allocated count and highest chunk, then chunk_next
   * and ALLOCATED recomputed (virstor.md, "open").
   */
  private scan(lenient: boolean, onProgress: ((done: number, total: number) => void) | undefined): void {
    const comps = this.components;
    const { flags: flagsOf, providerNo, providerChunk } = MAP_ENTRY.get;
    for (const [block, p, v] of this.nonZeroEntries(onProgress)) {
      const flags = flagsOf(block, p);
      const no = providerNo(block, p);
      const chunk = providerChunk(block, p);
      const message = this.invalidEntry(v, no, chunk);
      if (message) {
        if (!lenient) throw new CorruptError(`virstor ${this.name}: invalid ${message}`, "run 'geomctl virstor check'");
        this.mapProblems.push({ virtualChunk: v, message });
        continue;
      }
      if ((flags & VIRSTOR_MAP_ALLOCATED) === 0) continue;
      const c = comps[no] as VirstorComponent;
      c.allocated++;
      if (chunk > c.highest) c.highest = chunk;
    }
    // The flags the kernel would have written had it closed the device: a
    // component holding chunks is ALLOCATED, and CURRENT marks the last one
    // that does (component 0 holds the map) — a crash leaves both stale.
    let last = 0;
    for (const c of comps) {
      c.chunkNext = Math.max(c.chunkReserved, c.highest + 1);
      if (c.allocated > 0) {
        c.flags |= VIRSTOR_PROVIDER_ALLOCATED;
        last = c.index;
      }
    }
    for (const c of comps) c.flags = c.index === last ? c.flags | VIRSTOR_PROVIDER_CURRENT : c.flags & ~VIRSTOR_PROVIDER_CURRENT;
    this.alloc = new ChunkAllocator(this.name, comps);
  }

  /**
   * The map streamed in blocks through the engine: [first virtual chunk,
   * bytes], in map order. The buffer is reused: it is valid until the next
   * block. `onProgress` gets the map bytes passed (read or skipped) and the
   * map's size.
   *
   * Blocks that lie in holes of component 0's image are skipped: a hole reads
   * as zeros, which are unallocated entries, so skipping it is exact as long
   * as the image holds the map. It does whenever no map change waits in the
   * engine's cache — at open (a fresh engine: recovery rolled back before it
   * was made, so nothing in it is dirty) and after a commit, which is when
   * the verbs stream the map. A map changed since then is read whole through
   * the engine, whose dirty buffers win over the disk.
   */
  *mapBlocks(onProgress?: (done: number, total: number) => void): Generator<[number, Buffer]> {
    const { mapSize } = this.geometry;
    const regions: Iterable<readonly [number, number]> = this.map.uncommitted
      ? [[0, mapSize]]
      : alignedDataRegions(this.engine.providers[0] as Provider, 0, mapSize, REGION_ALIGN);
    const buf = alignedBuffer(Math.min(SCAN_BLOCK, mapSize));
    let done = 0;
    for (const [start, end] of regions) {
      for (let off = start; off < end; off += SCAN_BLOCK) {
        const block = buf.subarray(0, Math.min(SCAN_BLOCK, end - off));
        this.engine.readInto(0, off, block);
        yield [off / VIRSTOR_MAP_ENTRY_SIZE, block];
        done = off + block.length;
        onProgress?.(done, mapSize);
      }
    }
    if (done < mapSize) onProgress?.(mapSize, mapSize);
  }

  /**
   * Every map entry that is not all zeros, as [block, byte offset in it,
   * virtual chunk], skipping zero runs with a native compare (a thin device's
   * map is mostly zeros). The block is reused: decode before the next one.
   */
  *nonZeroEntries(onProgress?: (done: number, total: number) => void): Generator<[Buffer, number, number]> {
    for (const [firstChunk, block] of this.mapBlocks(onProgress)) {
      for (let off = 0; off < block.length; off += ZERO_STRIDE) {
        const end = Math.min(off + ZERO_STRIDE, block.length);
        if (block.subarray(off, end).equals(ZERO_BLOCK.subarray(0, end - off))) continue;
        for (let p = off; p < end; p += VIRSTOR_MAP_ENTRY_SIZE) {
          if (block.readUInt32LE(p) === 0 && block.readUInt32LE(p + 4) === 0) continue;
          yield [block, p, firstChunk + p / VIRSTOR_MAP_ENTRY_SIZE];
        }
      }
    }
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
