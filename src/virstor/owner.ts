// What a virstor image holds, for the refusals of src/geom/owner.ts: the
// device it is a component of and how many chunks that device has allocated
// (all of them are lost when one component is relabelled or overwritten: the
// device no longer opens). Read through unlocked probes: the answer only
// words a message, the decision to refuse is the metadata's presence.

import { GeomError } from '../errors.js';
import type { Provider } from '../provider/provider.js';
import { alignedDataRegions } from '../provider/holes.js';
import { alignedBuffer } from '../util/aligned.js';
import type { Tasted } from '../geom/taste.js';
import type { GeomOwner } from '../geom/owner.js';
import type { TasteHost } from './host.js';
import { tasteDevice } from './taste.js';
import { MAP_ENTRY, mapGeometry, VIRSTOR_MAP_ALLOCATED, VIRSTOR_MAP_ENTRY_SIZE } from './map.js';
import { decodeVirstorMetadata, type VirstorMetadata } from './metadata.js';
import { sameFile } from '../util/identity.js';

const MAP_BLOCK = 1 << 20;
const REGION_ALIGN = 64 * 1024;

/** The allocated entries of the map at offset 0 of `c0` (holes of a sparse image are not read). */
function allocatedChunks(c0: Provider, md: VirstorMetadata, sectorSize: number): number {
  const { mapSize } = mapGeometry(md.virsize, md.chunkSize, sectorSize);
  const buf = alignedBuffer(MAP_BLOCK);
  let count = 0;
  const flags = MAP_ENTRY.get.flags;
  for (const [start, end] of alignedDataRegions(c0, 0, mapSize, REGION_ALIGN)) {
    for (let off = start; off < end; off += MAP_BLOCK) {
      const block = buf.subarray(0, Math.min(MAP_BLOCK, end - off));
      c0.readInto(off, block);
      for (let e = 0; e < block.length; e += VIRSTOR_MAP_ENTRY_SIZE) {
        if ((flags(block, e) & VIRSTOR_MAP_ALLOCATED) !== 0) count++;
      }
    }
  }
  return count;
}

function chunks(n: number): string {
  return n === 0 ? 'no allocated chunks' : `${n} allocated chunk${n === 1 ? '' : 's'}`;
}

/** The virstor device `provider` (at `path`) is a component of, and what it holds. */
export function describeVirstorImage(path: string, provider: Provider, tasted: Tasted, host: TasteHost): GeomOwner {
  let md: VirstorMetadata;
  try {
    md = decodeVirstorMetadata(tasted.sector, path);
  } catch (err) {
    if (!(err instanceof GeomError)) throw err;
    return { what: `${path} holds GEOM virstor metadata that does not decode (${err.message})` };
  }
  const component = `${path} is component ${md.no} of virstor ${md.name}`;
  // Not a spread: a host may be a class whose probe is a method.
  const outcome = tasteDevice({ candidates: [path, ...host.candidates], probe: (p) => host.probe(p), ignoreHardcoded: host.ignoreHardcoded }, md.name);
  const mine = (m: { identity: { dev: number; ino: number } }): boolean => sameFile(m.identity, provider.identity);
  const first = outcome.chosen?.find((m) => m.md.no === 0);
  if (!outcome.chosen?.some(mine) || !first) {
    return { what: `${component}, whose other components are not all found here` };
  }
  let held: number;
  let c0: Provider | undefined;
  try {
    c0 = mine(first) ? provider : host.probe(first.path);
    held = allocatedChunks(c0, first.md, first.sectorSize);
  } catch (err) {
    if (!(err instanceof GeomError || err instanceof RangeError)) throw err;
    return { what: `${component}, whose map cannot be read (${err.message})` };
  } finally {
    if (c0 && c0 !== provider) c0.close();
  }
  return { what: `${component}, which holds ${chunks(held)}` };
}
