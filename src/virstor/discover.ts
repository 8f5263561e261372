// The virstor class's discovery policy (issue 10: `discover(tasted) → geoms`,
// one per class in src/<class>/; journal's is src/journal/discover.ts): the
// devices among the candidates, each judged (taste.ts judgeDevice) from one
// taste of them all, as list and status show them —
// complete ones opened read-only with their map scanned, so the counters are
// the kernel's in-memory ones; incomplete ones as their present components'
// metadata describe them — and what the kernel would log and pass over;
// then which of them a listing shows, by device name (virstor list, status)
// or by image (the top-level list, status).

import { GeomError } from '../errors.js';
import { openVirstor, type VirstorDevice } from './device.js';
import type { VirstorHost } from './host.js';
import { virstorStatusRow, type VirstorListingDevice } from './listing.js';
import { duplicateClaim, judgeDevice, tasteCandidates, type IgnoredImage, type Member } from './taste.js';

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
export interface DiscoveryFailure {
  error: GeomError;
  images: string[];
  /** The device is listed all the same, marked not usable (a duplicate claim): a failure wherever it is listed. */
  listed?: boolean;
}

export interface VirstorDiscovery {
  /** Every device found: complete ones as opened, incomplete ones as their present components say. */
  devices: VirstorListingDevice[];
  /** Images the kernel would ignore (metadata that does not decode, provsize or hardcoded name), each once. */
  ignored: IgnoredImage[];
  warnings: string[];
  /** Devices that could not be listed (named but absent, ambiguous sets, unfinished transactions). */
  failures: DiscoveryFailure[];
}

/**
 * The discovery step: every virstor device among the candidates (or the
 * named ones). Complete devices are opened read-only and their map scanned,
 * so the counters are the kernel's; incomplete ones show their present
 * components.
 */
export function discoverVirstor(host: VirstorHost, names: readonly string[]): VirstorDiscovery {
  const result: VirstorDiscovery = { devices: [], ignored: [], warnings: [], failures: [] };
  // One taste of every candidate; each device is judged from it.
  const tasting = tasteCandidates(host);
  // Images the kernel would ignore are reported even when no device is left.
  const ignored: IgnoredImage[] = names.length ? [] : [...tasting.passedOver];
  // The devices in the order first found.
  for (const name of names.length ? names : new Set(tasting.members.map((m) => m.md.name))) {
    let images: string[] = [];
    try {
      const outcome = judgeDevice(tasting, name);
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

/**
 * The devices list and status show: with names given, the devices named
 * (whatever they offer); otherwise those with a provider, and with -a every
 * one — an incomplete virstor device has no provider until its last
 * component is found, and geom(8) passes over it unless asked.
 */
export function shownDevices(devices: readonly VirstorListingDevice[], named: readonly string[], all: boolean): VirstorListingDevice[] {
  return named.length > 0 || all ? [...devices] : devices.filter((d) => virstorStatusRow(d).hasProvider);
}

/** What the top-level list and status show of the virstor class, and what they say about the rest. */
export interface DevicesAmongImages {
  devices: VirstorListingDevice[];
  /** Problems concerning a named image: the command fails after showing the rest. */
  failures: GeomError[];
  /** Problems the kernel would only log, in the order found. */
  warnings: string[];
}

/**
 * The devices of `found` with a component among the images `named` (every
 * one shown when none is named), for the top-level list and status. What the
 * kernel would log and ignore (an image it passes over, a device that does
 * not open) is a failure when it concerns a named image — the user asked for
 * it — and, when no image is named, a warning, as the kernel's log line is;
 * images not named are not asked about (journal's discover.ts does the same).
 */
export function devicesAmongImages(found: VirstorDiscovery, named: readonly string[], all: boolean): DevicesAmongImages {
  const wanted = new Set(named);
  const failures: GeomError[] = [];
  const warnings: string[] = [];
  const report = (error: GeomError, images: string[]): void => {
    if (images.some((p) => wanted.has(p))) failures.push(error);
    else if (named.length === 0) warnings.push(error.line);
  };
  for (const i of found.ignored) report(i.error, [i.path]);
  warnings.push(...found.warnings);
  const devices = named.length === 0 ? shownDevices(found.devices, named, all) : found.devices.filter((d) => d.components.some((c) => wanted.has(c.path)));
  for (const f of found.failures) {
    // A device listed as not usable fails the listing wherever it is shown.
    if (f.listed && f.images.some((p) => devices.some((d) => d.components.some((c) => c.path === p)))) failures.push(f.error);
    else report(f.error, f.images);
  }
  return { devices, failures, warnings };
}
