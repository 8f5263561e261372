// One image of the virstor class, on its own: its metadata read (dump),
// cleared (gvirstor clear), and judged as the kernel's taste judges it
// (g_virstor_taste: a recorded provsize that is not the provider's size, or a
// hardcoded name that is not the provider's, and the kernel passes it over).

import type { Engine } from '../engine/types.js';
import { GeomError } from '../errors.js';
import { sameProviderName } from '../geom/device-name.js';
import type { Provider } from '../provider/provider.js';
import { tasteProvider, type Tasted } from '../geom/taste.js';
import { decodeVirstorMetadata, type VirstorMetadata } from './metadata.js';

/** An image that holds no virstor metadata: what it holds instead, and where to look. */
export function notVirstor(path: string, tasted: Tasted | undefined): GeomError {
  if (tasted) {
    const cls = tasted.className.toLowerCase();
    return new GeomError('NO_METADATA', `${path}: ${cls} metadata, not virstor`, `use 'geomctl ${cls}' verbs or 'geomctl dump ${path}'`);
  }
  return new GeomError('NO_METADATA', `${path}: no virstor metadata`, `'geomctl taste ${path}' shows what it holds; 'geomctl virstor label' makes a component`);
}

/** The virstor metadata of `provider` (named `path`) and the sector size it was found at. */
export function readVirstorMetadata(provider: Provider, path: string): { md: VirstorMetadata; sectorSize: number } {
  const tasted = tasteProvider(provider);
  if (!tasted || tasted.className !== 'VIRSTOR') throw notVirstor(path, tasted);
  return { md: decodeVirstorMetadata(tasted.sector, path), sectorSize: tasted.sectorSize };
}

/**
 * gvirstor clear of image `index` of `engine`: its last sector (at the sector
 * size its metadata was found at) zeroed, committed. Refuses an image
 * without virstor metadata, changing nothing.
 */
export function clearVirstor(engine: Engine, index: number, path: string): void {
  const provider = engine.providers[index];
  const tasted = provider ? tasteProvider(provider) : undefined;
  if (!provider || !tasted || tasted.className !== 'VIRSTOR') throw notVirstor(path, tasted);
  engine.write(index, provider.size - tasted.sectorSize, Buffer.alloc(tasted.sectorSize), 'VOLUME');
  engine.commit();
}

/** Why the kernel would pass over the image `md` was read from, or undefined when it takes it. */
export function ignoreReason(md: VirstorMetadata, image: { name: string; size: number }, ignoreHardcoded: boolean): string | undefined {
  if (md.provsize !== BigInt(image.size)) return `its metadata records provsize ${md.provsize} but the image has ${image.size} bytes (the kernel ignores it too)`;
  if (md.provider !== '' && !ignoreHardcoded && !sameProviderName(md.provider, image.name)) {
    return `its metadata hardcodes provider '${md.provider}', not '${image.name}' (use -H to accept it)`;
  }
  return undefined;
}

/** For `geomctl taste`: the device a tasted virstor image belongs to, and why the kernel would ignore it. */
export function virstorTasteVerdict(md: VirstorMetadata, image: { name: string; size: number }, ignoreHardcoded: boolean): { name: string; ignored?: string } {
  const ignored = ignoreReason(md, image, ignoreHardcoded);
  return ignored === undefined ? { name: md.name } : { name: md.name, ignored };
}
