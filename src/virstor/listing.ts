// `list` and `status` for virstor devices: the kernel's g_virstor_dumpconf
// fields (FreeBSD sys/geom/virstor/g_virstor.c) laid out as geom(8) does
// (virstor.md, "list / status"). The kernel divides by counts an incomplete
// device does not have yet and computes percentages in u_int; geomctl guards
// the divisions and clamps the percentages to 0..100.

import { virstorProviderName } from '../geom/device-name.js';
import { OFFLINE_MODE, renderGeom, type GeomNode } from '../geom/listing.js';
import { u64Json } from '../util/json.js';
import { PLAIN, type Tone, type TextStyle } from '../util/style.js';
import { CHUNK_WATERMARK } from './allocator.js';

/** Under this much physical space free a device is running out of it, however many chunks that still is. */
const LOW_FREE_PERCENT = 10;

/** One component found for a device, with the counts the device layer computed. */
export interface VirstorListingComponent {
  /** ComponentIndex: md.no. */
  index: number;
  /** The provider name: the image's base name. */
  providerName: string;
  path: string;
  mediasize: number;
  sectorSize: number;
  chunkCount: number;
  /** The kernel's chunk_next (reserved chunks included), shown as ChunksUsed. */
  chunkNext: number;
  chunkReserved: number;
}

export interface VirstorListingDevice {
  name: string;
  /** md_count: how many components the device has. */
  componentCount: number;
  /** The components found, any order (listed by index). */
  components: VirstorListingComponent[];
  chunkSize: number;
  virsize: bigint;
  sectorSize: number;
}

/** 100 - used * 100 / count, as the kernel prints it, without its division by zero or u_int wrap. */
function percentFree(used: number, count: number): number {
  if (used === 0) return 100;
  if (count === 0) return 0;
  return Math.max(0, 100 - Math.floor((used * 100) / count));
}

interface Figures {
  /** Every component index is present. */
  complete: boolean;
  /** Complete, and no index claimed twice: the kernel's provider exists. */
  usable: boolean;
  online: VirstorListingComponent[];
  /** Distinct component indexes present (Online). */
  onlineCount: number;
  /** The first component index two images claim (a copied image): the device cannot be used. */
  claimedTwice?: { index: number; paths: string[] };
  physicalCount: number;
  used: number;
  backingSize: number;
  /** sc->chunk_count: computed by the kernel only once every component is there. */
  virtualCount: number;
  physicalFree: number;
  physicalBacking: number;
}

function figures(dev: VirstorListingDevice): Figures {
  const online = [...dev.components].sort((a, b) => a.index - b.index);
  let physicalCount = 0;
  let used = 0;
  let backingSize = 0;
  for (const c of online) {
    physicalCount += c.chunkCount;
    used += c.chunkNext + c.chunkReserved;
    backingSize += c.mediasize;
  }
  const indexes = new Set(online.map((c) => c.index));
  const twice = online.find((c, i) => online[i + 1]?.index === c.index);
  const claimedTwice = twice && { index: twice.index, paths: online.filter((c) => c.index === twice.index).map((c) => c.path) };
  const complete = indexes.size === dev.componentCount;
  const virtualCount = complete ? Number(dev.virsize / BigInt(dev.chunkSize)) : 0;
  return {
    complete,
    usable: complete && !claimedTwice,
    online,
    onlineCount: indexes.size,
    ...(claimedTwice ? { claimedTwice } : {}),
    physicalCount,
    used,
    backingSize,
    virtualCount,
    physicalFree: percentFree(used, physicalCount),
    physicalBacking: virtualCount === 0 ? 0 : Math.floor((physicalCount * 100) / virtualCount),
  };
}

function componentStorageFree(c: VirstorListingComponent): number {
  return c.chunkNext > 0 ? percentFree(c.chunkNext + c.chunkReserved, c.chunkCount) : 100;
}

/** "c0.img and c0-backup.img both claim component 0" (three or more: "a, b and c all claim"). */
function claimText(c: { index: number; paths: string[] }): string {
  const last = c.paths[c.paths.length - 1] as string;
  const who = c.paths.length === 2 ? `${c.paths[0] as string} and ${last} both` : `${c.paths.slice(0, -1).join(', ')} and ${last} all`;
  return `${who} claim component ${c.index}`;
}

/** "State: N% physical free", or why the device cannot be used: also the Status column of `status`. */
function stateText(f: Figures): string {
  if (f.claimedTwice) return `not usable: component ${f.claimedTwice.index} claimed twice`;
  return `${f.physicalFree}% physical free`;
}

/**
 * What the State means to the user: a device that cannot be used (a component
 * missing or claimed twice) is bad; one running out of space — fewer free
 * chunks than the kernel's chunk_watermark, at which it starts warning, or
 * under LOW_FREE_PERCENT free — asks for a component soon (virstor add).
 */
function stateTone(f: Figures): Tone {
  if (!f.usable) return 'bad';
  const freeChunks = f.physicalCount - f.used;
  return freeChunks < CHUNK_WATERMARK || f.physicalFree < LOW_FREE_PERCENT ? 'caution' : 'good';
}

function geomNode(dev: VirstorListingDevice): GeomNode {
  const f = figures(dev);
  return {
    name: dev.name,
    config: [
      ['Status', `Components=${dev.componentCount}, Online=${f.onlineCount}`, f.complete ? 'good' : 'bad'],
      ['State', stateText(f), stateTone(f)],
      ['ChunkSize', String(dev.chunkSize)],
      ['PhysicalFree', `${f.physicalFree}%`],
      ['ChunkPhysicalCount', String(f.physicalCount)],
      ['ChunkVirtualCount', String(f.virtualCount)],
      ['PhysicalBacking', `${f.physicalBacking}%`],
      ['PhysicalBackingSize', String(f.backingSize)],
      ['VirtualSize', String(dev.virsize)],
    ],
    // The kernel creates virstor/<name> only when every component is present (and geomctl not while two claim one index).
    providers: f.usable ? [{ name: providerName(dev), mediasize: dev.virsize, sectorsize: dev.sectorSize, mode: OFFLINE_MODE, config: [] }] : [],
    consumers: f.online.map((c) => ({
      name: c.providerName,
      mediasize: c.mediasize,
      sectorsize: c.sectorSize,
      mode: OFFLINE_MODE,
      config: [
        ['ComponentIndex', String(c.index)],
        ['ChunkCount', String(c.chunkCount)],
        ['ChunksUsed', String(c.chunkNext)],
        ['ChunksReserved', String(c.chunkReserved)],
        ['StorageFree', `${componentStorageFree(c)}%`],
      ],
    })),
  };
}

function providerName(dev: Pick<VirstorListingDevice, 'name'>): string {
  return virstorProviderName(dev.name);
}

/** geom(8) list text for the devices, in the order given (each block ends with a blank line). */
export function renderVirstorList(devices: readonly VirstorListingDevice[], style: TextStyle = PLAIN): string {
  return devices.map((d) => renderGeom(geomNode(d), style)).join('');
}

/** One row of geom(8)'s status table: the provider (or, incomplete, the geom) name, State, components. */
export function virstorStatusRow(dev: VirstorListingDevice): { name: string; geom: string; hasProvider: boolean; status: string; tone: Tone; components: string[] } {
  const f = figures(dev);
  return {
    name: f.usable ? providerName(dev) : dev.name,
    geom: dev.name,
    // A complete device whose component is claimed twice is shown (and fails the listing), not hidden as incomplete.
    hasProvider: f.complete,
    status: stateText(f),
    tone: stateTone(f),
    components: f.online.map((c) => c.providerName),
  };
}

/** The JSON form of one device for list and status. */
export function virstorListingJson(dev: VirstorListingDevice): Record<string, unknown> {
  const f = figures(dev);
  return {
    name: dev.name,
    provider: f.usable ? { name: providerName(dev), mediasize: u64Json(dev.virsize), sectorsize: dev.sectorSize, mode: OFFLINE_MODE } : null,
    componentsTotal: dev.componentCount,
    componentsOnline: f.onlineCount,
    complete: f.complete,
    usable: f.usable,
    ...(f.claimedTwice ? { problem: claimText(f.claimedTwice) } : {}),
    state: stateText(f),
    chunkSize: dev.chunkSize,
    physicalFreePercent: f.physicalFree,
    chunkPhysicalCount: f.physicalCount,
    chunkVirtualCount: f.virtualCount,
    physicalBackingPercent: f.physicalBacking,
    physicalBackingSize: f.backingSize,
    virtualSize: u64Json(dev.virsize),
    consumers: f.online.map((c) => ({
      name: c.providerName,
      path: c.path,
      mediasize: c.mediasize,
      sectorsize: c.sectorSize,
      mode: OFFLINE_MODE,
      componentIndex: c.index,
      chunkCount: c.chunkCount,
      chunksUsed: c.chunkNext,
      chunksReserved: c.chunkReserved,
      storageFreePercent: componentStorageFree(c),
    })),
  };
}
