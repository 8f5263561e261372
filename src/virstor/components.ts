// Adding and removing components (virstor.md, "add, remove, stop"):
// virstor_ctl_add and virstor_ctl_remove of g_virstor.c for image files,
// without their bugs (add's last chunk over the metadata, remove's lost
// renumbering), each one engine transaction.

import { GeomError, UsageError } from '../errors.js';
import { refuseRelabel } from '../geom/owner.js';
import { identityKey } from '../util/identity.js';
import { openVirstor, type VirstorComponent, type VirstorDevice } from './device.js';
import type { VirstorHost } from './host.js';
import { newVirstorMetadata, VIRSTOR_NAME_MAX, VIRSTOR_PROVIDER_ALLOCATED } from './metadata.js';

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
