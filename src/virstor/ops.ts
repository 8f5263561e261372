// The virstor verbs beyond read and write (virstor.md, "add, remove, stop",
// "check, map, export"): virstor_ctl_add, virstor_ctl_remove and
// virstor_ctl_stop of g_virstor.c for image files, without their bugs (add's
// last chunk over the metadata, remove's lost renumbering), each one engine
// transaction; and geomctl's own check, map and export.

import { GeomError, UsageError } from '../errors.js';
import { refuseRelabel } from '../geom-owner.js';
import { openVirstor, type VirstorComponent, type VirstorDevice } from './device.js';
import type { VirstorHost } from './host.js';
import { nonZeroEntries } from './map-scan.js';
import { duplicateClaim, tasteDevice, tasteMembers, type IgnoredImage, type Member } from './taste.js';
import { OutputFile, refuseImageAsOutput } from '../output-file.js';
import type { VirstorListingDevice } from './listing.js';
import { MAP_ENTRY, MAP_ENTRY_SWAPPED, VIRSTOR_MAP_ALLOCATED } from './map.js';
import { alignedBuffer } from '../aligned.js';
import { PLAIN, type TextStyle } from '../style.js';
import {
  newVirstorMetadata,
  VIRSTOR_NAME_MAX,
  VIRSTOR_PROVIDER_ALLOCATED,
  VIRSTOR_PROVIDER_CURRENT,
} from './metadata.js';
import { isZero } from '../util/zero.js';
import { identityKey } from '../util/identity.js';

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

/** Chunks of a component of `size` bytes: label's rule, without a chunk over the last sector. */
export function componentChunkCount(size: number, chunkSize: number, sectorSize: number): number {
  const whole = Math.floor(size / chunkSize);
  return whole * chunkSize > size - sectorSize ? whole - 1 : whole;
}

export interface AddOptions {
  /** -h: record each new image's provider name. */
  hardcode: boolean;
  /** -f: overwrite GEOM metadata found on a new image. */
  force: boolean;
}

export interface AddResult {
  added: { path: string; index: number; chunkCount: number }[];
  warnings: string[];
}

interface NewImage {
  path: string;
  name: string;
  size: number;
  chunkCount: number;
}

/** Everything add refuses about one image, checked before the device is opened for writing. */
function inspectNewImage(host: VirstorHost, path: string, dev: VirstorDevice, opts: AddOptions): NewImage {
  const p = host.probe(path);
  try {
    const ss = dev.sectorSize;
    if (p.mediaSectorSize > ss || p.size % ss !== 0) {
      throw new GeomError('MISMATCH', `Sector size doesn't fit for ${path}: virstor ${dev.name} uses ${ss}-byte sectors`);
    }
    if (opts.hardcode && Buffer.byteLength(p.name, 'utf8') > VIRSTOR_NAME_MAX) {
      throw new GeomError('REFUSED', `cannot hardcode ${path}: its name '${p.name}' is longer than ${VIRSTOR_NAME_MAX} bytes`, 'rename the image or add without -h');
    }
    const chunkCount = componentChunkCount(p.size, dev.chunkSize, ss);
    if (chunkCount < 4) {
      throw new GeomError(
        'REFUSED',
        `Provider too small: ${path} holds ${Math.max(chunkCount, 0)} chunks of ${dev.chunkSize} bytes, a component needs at least 4`,
        `use an image of at least ${4 * dev.chunkSize + ss} bytes`,
      );
    }
    if (chunkCount > U32_MAX) throw new GeomError('REFUSED', `${path} holds ${chunkCount} chunks, more than chunk_count (u32) holds`);
    // Label's refusal: the geom the image belongs to, and what it would lose.
    if (!opts.force) refuseRelabel(p, path, host);
    return { path, name: p.name, size: p.size, chunkCount };
  } finally {
    p.close();
  }
}

/**
 * virstor_ctl_add: new components at the end, then md_count on every
 * component — one transaction. The device must be complete (open refuses
 * otherwise).
 */
export function addComponents(host: VirstorHost, name: string, paths: string[], opts: AddOptions): AddResult {
  if (paths.length === 0) throw new UsageError('virstor add needs at least one image');
  const dev = openVirstor(host, name, { write: true, scan: true, extraPaths: paths });
  try {
    const images = paths.map((path) => inspectNewImage(host, path, dev, opts));
    const total = dev.components.length + images.length;
    if (total > U16_MAX) throw new GeomError('REFUSED', `virstor ${name} would have ${total} components, more than md_count (u16) holds`);
    const added: AddResult['added'] = [];
    images.forEach((img, k) => {
      const index = dev.components.length + k;
      const md = newVirstorMetadata({
        name: dev.name,
        virsize: dev.virsize,
        chunkSize: dev.chunkSize,
        id: dev.id,
        count: total,
        provider: opts.hardcode ? img.name : '',
        no: index,
        provsize: BigInt(img.size),
        chunkCount: img.chunkCount,
        chunkNext: 0,
        chunkReserved: 0,
        flags: 0,
      });
      dev.writeMetadata(dev.extraImages[k] as number, img.size, md);
      added.push({ path: img.path, index, chunkCount: img.chunkCount });
    });
    for (const c of dev.components) dev.writeMetadata(c.index, c.size, { ...dev.metadataOf(c), count: total });
    dev.engine.commit();
    return { added, warnings: dev.warnings };
  } finally {
    dev.close();
  }
}

export interface RemoveResult {
  removed: string[];
  /** The remaining components, in their new order. */
  remaining: string[];
  warnings: string[];
}

function holdsData(c: VirstorComponent): boolean {
  return c.allocated > 0 || (c.flags & VIRSTOR_PROVIDER_ALLOCATED) !== 0;
}

/**
 * virstor_ctl_remove, fixed: refuses the whole command if any named image is
 * not a component or holds data; renumbers the remaining components 0..n-1
 * in their old order, rewrites every one's `no` and md_count, and clears the
 * removed images' metadata — one transaction.
 */
export function removeComponents(host: VirstorHost, name: string, paths: string[]): RemoveResult {
  if (paths.length === 0) throw new UsageError('virstor remove needs at least one image');
  const dev = openVirstor(host, name, { write: true, scan: true });
  try {
    const byIdentity = new Map(dev.components.map((c) => [identityKey(c.identity), c]));
    const removed = new Set<VirstorComponent>();
    for (const path of paths) {
      const p = host.probe(path);
      let c: VirstorComponent | undefined;
      try {
        c = byIdentity.get(identityKey(p.identity));
      } finally {
        p.close();
      }
      if (!c) throw new GeomError('REFUSED', `${path} is not a component of virstor ${name}`, `'geomctl virstor list ${name}' shows its components`);
      if (c.index === 0) throw new GeomError('REFUSED', `component ${path} of ${name} holds the allocation map and cannot be removed`);
      if (holdsData(c)) throw new GeomError('REFUSED', `component ${path} of ${name} holds data and cannot be removed`);
      removed.add(c);
    }
    // Map entries name components by index: none may point past a removed one.
    const firstRemoved = Math.min(...[...removed].map((c) => c.index));
    const later = dev.components.find((c) => c.index > firstRemoved && !removed.has(c) && c.allocated > 0);
    if (later) {
      throw new GeomError('REFUSED', `cannot remove components before ${later.path}: it holds data mapped by component index`, "run 'geomctl virstor check'");
    }
    const remaining = dev.components.filter((c) => !removed.has(c));
    remaining.forEach((c, j) => {
      dev.writeMetadata(c.index, c.size, { ...dev.metadataOf(c), no: j, count: remaining.length });
    });
    for (const c of removed) dev.engine.write(c.index, c.size - dev.sectorSize, Buffer.alloc(dev.sectorSize), 'VOLUME');
    dev.engine.commit();
    return { removed: [...removed].map((c) => c.path), remaining: remaining.map((c) => c.path), warnings: dev.warnings };
  } finally {
    dev.close();
  }
}

/** Progress of a pass over the map: bytes done out of total (virstor check and map show it). */
export type MapProgress = (done: number, total: number) => void;

export interface MapReport {
  /** Allocated virtual chunks. */
  allocated: number;
  errors: string[];
  warnings: string[];
}

/** A set of (component, chunk) pairs in pages allocated on demand: memory follows what is mapped. */
class ChunkSet {
  private readonly pages = new Map<number, Uint8Array>();
  private static readonly PAGE_BITS = 1 << 16;

  /** Adds; returns false when the pair was already there. */
  add(component: number, chunk: number): boolean {
    const key = component * 0x10000 + Math.floor(chunk / ChunkSet.PAGE_BITS);
    let page = this.pages.get(key);
    if (!page) {
      page = new Uint8Array(ChunkSet.PAGE_BITS / 8);
      this.pages.set(key, page);
    }
    const bit = chunk % ChunkSet.PAGE_BITS;
    const mask = 1 << (bit & 7);
    if ((page[bit >> 3] as number) & mask) return false;
    page[bit >> 3] = (page[bit >> 3] as number) | mask;
    return true;
  }
}

/** Reports stop only the first few of a kind, then how many more. */
const REPORT_LIMIT = 20;

function capped(list: string[], kind: string): string[] {
  if (list.length <= REPORT_LIMIT) return list;
  return [...list.slice(0, REPORT_LIMIT), `... and ${list.length - REPORT_LIMIT} more ${kind}`];
}

/**
 * The map against the metadata (the kernel's INVARIANTS check, and check's
 * map rules): no physical chunk mapped twice, none in component 0's map area
 * or over a component's last sector, components holding chunks a prefix of
 * the list, leaked chunks below chunk_next.
 */
export function analyzeMap(dev: VirstorDevice, onProgress?: MapProgress): MapReport {
  const errors: string[] = [];
  const warnings: string[] = [];
  const seen = new ChunkSet();
  const c0 = dev.components[0] as VirstorComponent;
  let allocated = 0;
  const duplicates: string[] = [];
  const reserved: string[] = [];
  const overlap: string[] = [];
  const { flags, providerNo, providerChunk } = MAP_ENTRY.get;
  for (const [block, p, v] of nonZeroEntries(dev, onProgress)) {
    if ((flags(block, p) & VIRSTOR_MAP_ALLOCATED) === 0) continue;
    const no = providerNo(block, p);
    const chunk = providerChunk(block, p);
    const c = dev.components[no];
    if (!c || chunk >= c.md.chunkCount) continue; // out of range: reported by the scan
    allocated++;
    if (!seen.add(no, chunk)) duplicates.push(`map entry ${v} maps to chunk ${chunk} of component ${no} (${c.path}), which an earlier entry maps too`);
    if (no === 0 && chunk < c0.chunkReserved) reserved.push(`map entry ${v} maps to chunk ${chunk} of component 0, inside the ${c0.chunkReserved} chunks reserved for the map`);
    if (chunk >= c.usable) overlap.push(`map entry ${v} maps to chunk ${chunk} of ${c.path}, which overlaps its metadata sector`);
  }
  errors.push(...capped(duplicates, 'doubly mapped chunks'), ...capped(reserved, 'entries in the reserved area'), ...capped(overlap, 'entries over a metadata sector'));
  // Component 0 always holds the map; the others fill in order.
  let gap: VirstorComponent | undefined;
  for (const c of dev.components.slice(1)) {
    if (c.allocated === 0) gap ??= c;
    else if (gap) errors.push(`component ${c.index} (${c.path}) holds chunks but component ${gap.index} (${gap.path}) before it holds none`);
  }
  for (const c of dev.components) {
    const leaked = c.chunkNext - c.chunkReserved - c.allocated;
    if (leaked > 0 && duplicates.length === 0) {
      warnings.push(`component ${c.index} (${c.path}): ${leaked} leaked chunks below chunk_next ${c.chunkNext} (allocated but not mapped, e.g. after a crash)`);
    }
  }
  return { allocated, errors, warnings };
}

export interface StopResult extends MapReport {
  name: string;
}

/** virstor_ctl_stop: update_metadata, then the INVARIANTS map check; reports the allocated count. */
export function stopDevice(host: VirstorHost, name: string): StopResult {
  const dev = openVirstor(host, name, { write: true, scan: true });
  try {
    dev.commit();
    const report = analyzeMap(dev);
    return { name, ...report, warnings: [...dev.warnings, ...report.warnings] };
  } finally {
    dev.close();
  }
}

export interface CheckReport extends MapReport {
  name: string;
}

/**
 * Would the map make sense read big-endian (written by a big-endian
 * machine)? Only if every non-zero entry then reads as allocated and in range.
 */
function swappedMakesSense(dev: VirstorDevice): boolean {
  let entries = 0;
  const { flags, providerNo, providerChunk } = MAP_ENTRY_SWAPPED.get;
  for (const [block, p] of nonZeroEntries(dev)) {
    const c = dev.components[providerNo(block, p)];
    if ((flags(block, p) & VIRSTOR_MAP_ALLOCATED) === 0 || !c || providerChunk(block, p) >= c.md.chunkCount) return false;
    entries++;
  }
  return entries > 0;
}

/**
 * check (like thin_check): the metadata of every component, the map, their
 * agreement. Errors make the device unsafe to use; warnings are the normal
 * leftovers of a kernel crash. Read-only. The map is streamed twice (open's
 * scan, then the analysis): `onProgress` counts both passes.
 */
export function checkDevice(host: VirstorHost, name: string, onProgress?: MapProgress): CheckReport {
  let dev: VirstorDevice;
  try {
    const onScan = onProgress && ((done: number, total: number) => onProgress(done, 2 * total));
    dev = openVirstor(host, name, { write: false, scan: true, lenient: true, onProgress: onScan });
  } catch (err) {
    if (err instanceof GeomError && (err.code === 'CORRUPT' || err.code === 'MISMATCH' || err.code === 'NOT_FOUND')) {
      return { name, allocated: 0, errors: [err.message], warnings: [] };
    }
    throw err;
  }
  try {
    const errors: string[] = [];
    const warnings = [...dev.warnings];
    const c0 = dev.components[0] as VirstorComponent;
    if (c0.md.chunkReserved < dev.geometry.mapChunks) {
      errors.push(`component 0 (${c0.path}) reserves ${c0.md.chunkReserved} chunks, but the map occupies ${dev.geometry.mapChunks}`);
    }
    const problems = dev.mapProblems.map((p) => `invalid ${p.message}`);
    errors.push(...capped(problems, 'invalid map entries'));
    if (problems.length && swappedMakesSense(dev)) {
      errors.push('the map makes sense only byte-swapped: it was written by a big-endian machine; geomctl reads little-endian maps only');
    }
    const map = analyzeMap(dev, onProgress && ((done, total) => onProgress(total + done, 2 * total)));
    errors.push(...map.errors);
    warnings.push(...map.warnings);
    let staleCurrent = false;
    for (const c of dev.components) {
      if (c.md.chunkNext !== c.chunkNext) {
        warnings.push(`component ${c.index} (${c.path}): chunk_next on disk is ${c.md.chunkNext}, the map says ${c.chunkNext} (stale after a kernel crash; fixed by the next write or stop)`);
      }
      if (c.allocated > 0 && (c.md.flags & VIRSTOR_PROVIDER_ALLOCATED) === 0) {
        warnings.push(`component ${c.index} (${c.path}) holds ${c.allocated} chunks but lacks the ALLOCATED flag (stale after a kernel crash; fixed by the next write or stop)`);
      }
      if ((c.md.flags & VIRSTOR_PROVIDER_CURRENT) !== (c.flags & VIRSTOR_PROVIDER_CURRENT)) staleCurrent = true;
    }
    if (staleCurrent) {
      const current = dev.components.find((c) => c.flags & VIRSTOR_PROVIDER_CURRENT) as VirstorComponent;
      warnings.push(`the CURRENT flag is stale: the last component holding chunks is ${current.index} (${current.path}) (fixed by the next write or stop)`);
    }
    return { name, allocated: map.allocated, errors, warnings };
  } finally {
    dev.close();
  }
}

/** One run of virtual chunks mapped to consecutive chunks of one component. */
export interface MapExtent {
  virtualChunk: number;
  chunks: number;
  component: number;
  path: string;
  physicalChunk: number;
  /** Byte offset in the virtual device, length, and byte offset in the component. */
  offset: number;
  length: number;
  physicalOffset: number;
}

/** The allocated extents, coalesced, in virtual order; streamed (the map may be huge). */
export function* mapExtents(dev: VirstorDevice, onProgress?: MapProgress): Generator<MapExtent> {
  const cs = dev.chunkSize;
  let run: MapExtent | undefined;
  const make = (v: number, no: number, chunk: number): MapExtent => {
    const c = dev.components[no] as VirstorComponent;
    return { virtualChunk: v, chunks: 1, component: no, path: c.path, physicalChunk: chunk, offset: v * cs, length: cs, physicalOffset: chunk * cs };
  };
  const { flags, providerNo, providerChunk } = MAP_ENTRY.get;
  for (const [block, p, v] of nonZeroEntries(dev, onProgress)) {
    if ((flags(block, p) & VIRSTOR_MAP_ALLOCATED) === 0) continue;
    const no = providerNo(block, p);
    const chunk = providerChunk(block, p);
    const problem = dev.invalidEntry(v, no, chunk);
    if (problem) throw new GeomError('CORRUPT', `virstor ${dev.name}: invalid ${problem}`, "run 'geomctl virstor check'");
    if (run && run.component === no && run.virtualChunk + run.chunks === v && run.physicalChunk + run.chunks === chunk) {
      run.chunks++;
      run.length += cs;
      continue;
    }
    if (run) yield run;
    run = make(v, no, chunk);
  }
  if (run) yield run;
}

/** qemu-img map's "%#-16" PRIx64 column, with at least one space after it (offsets past 2^56 fill all 16). */
function hexColumn(n: number, index: number, style: TextStyle): string {
  const value = n === 0 ? '0' : `0x${n.toString(16)}`;
  return `${style.column(value, index)}${' '.repeat(Math.max(1, 16 - value.length))}`;
}

export const MAP_HEADER = 'Offset          Length          Mapped to       File';

/**
 * One extent as a line of `qemu-img map` (file = the component image), chunk
 * ranges appended; `style` tells the columns apart on a terminal.
 */
export function formatExtent(e: MapExtent, style: TextStyle = PLAIN): string {
  const last = (first: number): string => (e.chunks === 1 ? `${first}` : `${first}-${first + e.chunks - 1}`);
  const columns = `${hexColumn(e.offset, 0, style)}${hexColumn(e.length, 1, style)}${hexColumn(e.physicalOffset, 2, style)}`;
  return `${columns}${style.column(e.path, 3)} (chunks ${last(e.virtualChunk)} -> component ${e.component} chunks ${last(e.physicalChunk)})`;
}

export interface ExportResult {
  bytes: number;
  allocatedChunks: number;
}

/** Export writes in blocks of this size and leaves all-zero blocks as holes. */
const EXPORT_BLOCK = 1 << 20;

/**
 * A sparse flat file of the device's virtual size: allocated chunks copied,
 * everything else (unallocated chunks, zero blocks) left as holes. A failure
 * removes the file: a partial export must not pass for a whole one.
 */
export function exportVirstor(dev: VirstorDevice, outPath: string, onProgress?: (done: number, total: number) => void): ExportResult {
  refuseImageAsOutput(outPath, dev.engine.providers, `virstor ${dev.name}`);
  const size = dev.size;
  const out = new OutputFile(outPath);
  let allocatedChunks = 0;
  const buf = alignedBuffer(EXPORT_BLOCK);
  let complete = false;
  try {
    out.truncate(size);
    for (const e of mapExtents(dev)) {
      allocatedChunks += e.chunks;
      for (let done = 0; done < e.length; done += EXPORT_BLOCK) {
        const n = Math.min(EXPORT_BLOCK, e.length - done);
        const data = buf.subarray(0, n);
        dev.engine.readInto(e.component, e.physicalOffset + done, data);
        if (!isZero(data)) out.write(data, e.offset + done);
        onProgress?.(e.offset + done + n, size);
      }
    }
    out.sync();
    complete = true;
  } finally {
    if (complete) out.close();
    else out.discard();
  }
  return { bytes: size, allocatedChunks };
}

/** A complete device as list/status show it: the kernel's in-memory counters (chunk_next recomputed). */
export function listingOf(dev: VirstorDevice): VirstorListingDevice {
  return {
    name: dev.name,
    componentCount: dev.components.length,
    chunkSize: dev.chunkSize,
    virsize: dev.virsize,
    sectorSize: dev.sectorSize,
    components: dev.components.map((c) => ({
      index: c.index,
      providerName: c.name,
      path: c.path,
      mediasize: c.size,
      sectorSize: dev.sectorSize,
      chunkCount: c.md.chunkCount,
      chunkNext: c.chunkNext,
      chunkReserved: c.md.chunkReserved,
    })),
  };
}

/** An incomplete device: what its present components' metadata say. */
function listingOfMembers(members: Member[]): VirstorListingDevice {
  const first = members[0] as Member;
  return {
    name: first.md.name,
    componentCount: first.md.count,
    chunkSize: first.md.chunkSize,
    virsize: first.md.virsize,
    sectorSize: first.sectorSize,
    components: members.map((m) => ({
      index: m.md.no,
      providerName: m.name,
      path: m.path,
      mediasize: m.size,
      sectorSize: m.sectorSize,
      chunkCount: m.md.chunkCount,
      chunkNext: m.md.chunkNext,
      chunkReserved: m.md.chunkReserved,
    })),
  };
}

/** A device list and status could not show, and the images that carry its name. */
export interface ListFailure {
  error: GeomError;
  images: string[];
  /** The device is listed all the same, marked not usable (a duplicate claim): a failure wherever it is listed. */
  listed?: boolean;
}

export interface ListResult {
  devices: VirstorListingDevice[];
  /** Images the kernel would ignore (metadata that does not decode, provsize or hardcoded name), each once. */
  ignored: IgnoredImage[];
  warnings: string[];
  /** Devices that could not be listed (named but absent, ambiguous sets, unfinished transactions). */
  failures: ListFailure[];
}

/**
 * The names of the virstor devices among the candidates, in the order first
 * found; the images the kernel would ignore (any name) are added to `ignored`.
 */
export function virstorNames(host: VirstorHost, ignored: IgnoredImage[] = []): string[] {
  return [...new Set(tasteMembers(host, undefined, ignored, ignored).map((m) => m.md.name))];
}

/**
 * list / status: every virstor device among the candidates (or the named
 * ones). Complete devices are opened read-only and their map scanned, so the
 * counters are the kernel's; incomplete ones show their present components.
 */
export function listVirstor(host: VirstorHost, names: string[]): ListResult {
  const result: ListResult = { devices: [], ignored: [], warnings: [], failures: [] };
  // Images the kernel would ignore are reported even when no device is left.
  const ignored: IgnoredImage[] = [];
  for (const name of names.length ? names : virstorNames(host, ignored)) {
    let images: string[] = [];
    try {
      const outcome = tasteDevice(host, name);
      images = outcome.all.map((m) => m.path);
      ignored.push(...outcome.ignored);
      result.warnings.push(...outcome.warnings);
      if (!outcome.chosen) {
        const ids = new Set(outcome.all.map((m) => m.md.id));
        if (outcome.all.length === 0 || ids.size !== 1) throw outcome.refusal as GeomError;
        // Its images may be half way through a transaction (a crashed label or add):
        // a read-only session refuses them then, as it does a complete device's.
        host.openSession(images, { write: false }).close();
        // Two images claiming one index: listed (both shown) as not usable, and a failure, as a read is.
        const duplicate = duplicateClaim(name, outcome.all);
        result.devices.push(listingOfMembers(outcome.all));
        if (duplicate) result.failures.push({ error: duplicate, images, listed: true });
        continue;
      }
      const dev = openVirstor(host, name, { write: false, scan: true, lenient: true });
      try {
        result.devices.push(listingOf(dev));
      } finally {
        dev.close();
      }
    } catch (err) {
      if (!(err instanceof GeomError)) throw err;
      result.failures.push({ error: err, images });
    }
  }
  const seen = new Set<string>();
  for (const i of ignored) {
    if (seen.has(i.error.message)) continue;
    seen.add(i.error.message);
    result.ignored.push(i);
  }
  result.warnings = [...new Set(result.warnings)];
  return result;
}
