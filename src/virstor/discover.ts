// The virstor class's discovery policy (issue 10: `discover(tasted) → geoms`,
// one per class in src/<class>/; journal's is src/journal/discover.ts): the
// devices among the tasted candidates, as list and status show them —
// complete ones opened read-only with their map scanned, so the counters are
// the kernel's in-memory ones; incomplete ones as their present components'
// metadata describe them — and what the kernel would log and pass over.

import { GeomError } from '../errors.js';
import { openVirstor, type VirstorDevice } from './device.js';
import type { VirstorHost } from './host.js';
import type { VirstorListingDevice } from './listing.js';
import { duplicateClaim, tasteDevice, tasteMembers, type IgnoredImage, type Member } from './taste.js';

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
