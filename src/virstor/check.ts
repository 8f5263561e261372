// Verifying a device (virstor.md, "add, remove, stop", "check, map,
// export"): the map against the metadata as the kernel's INVARIANTS check
// does at virstor_ctl_stop, and geomctl's own check (like thin_check), which
// also reads what a crashed kernel leaves stale.

import { GeomError } from '../errors.js';
import { openVirstor, type VirstorComponent, type VirstorDevice } from './device.js';
import type { VirstorHost } from './host.js';
import { MAP_ENTRY, MAP_ENTRY_SWAPPED, VIRSTOR_MAP_ALLOCATED } from './map.js';
import { nonZeroEntries, type MapProgress } from './map-scan.js';
import { VIRSTOR_PROVIDER_ALLOCATED, VIRSTOR_PROVIDER_CURRENT } from './metadata.js';

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
