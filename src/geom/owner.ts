// Which geom an image belongs to, and what overwriting it would lose: what
// label and virstor add say before they relabel an image, and read/export
// before -O overwrites one (issue 9's trust rule: a relabel or an -O that
// would destroy a geom's data is refused without -f, saying what would be
// lost; a message never offers -f where another command keeps the data).
//
// FreeBSD gets the same refusal from GEOM itself: a tasted image is held open
// exclusively by its geom, so gjournal/gvirstor label over it fails with
// EBUSY until the geom is stopped or cleared. Offline nothing holds the image
// open, so geomctl asks the metadata instead, and -f stands for "I stopped it".

import { GeomError } from '../errors.js';
import { tasteProvider } from './taste.js';
import { candidateImages } from './candidates.js';
import { openImage } from '../provider/file.js';
import type { Provider } from '../provider/provider.js';
import type { TasteHost } from '../virstor/host.js';
import { describeVirstorImage } from '../virstor/owner.js';
import { describeJournalImage } from '../journal/owner.js';

/** The candidates tasted to find the rest of an image's geom, and how to read them. */
export type GeomLookup = TasteHost;

/** The lookup of a command: the images it names and the tasted directories' files (cli.md, "Tasting"), read unlocked. */
export function fileLookup(named: readonly string[], dirs: readonly string[], ignoreHardcoded: boolean, probe: (path: string) => Provider = (path) => openImage(path, { write: false })): GeomLookup {
  return { candidates: candidateImages([...named], [...dirs]), probe, ignoreHardcoded };
}

/** An image's geom, as a user would want it named before losing it. */
export interface GeomOwner {
  /** "c0.img is component 0 of virstor thin, which holds 1 allocated chunk": the geom and what it holds. */
  what: string;
  /** A command that keeps what a relabel would lose (a DIRTY journal's sync): run it first. */
  keepFirst?: string;
  /** A relabel loses no data (a CLEAN journal: the data area stays where it was). */
  relabelKeepsData?: boolean;
}

/** The hint when only -f goes on, and nothing keeps what it overwrites. */
const FORCE_DESTROYS = '-f destroys it';

/** What to do instead of relabelling without -f; -f is offered only where nothing else keeps the data. */
function beforeRelabel(owner: GeomOwner): string {
  if (owner.keepFirst) return `run '${owner.keepFirst}' first (-f would discard them)`;
  return owner.relabelKeepsData ? 'use -f to relabel it' : FORCE_DESTROYS;
}

/** The geom whose metadata is in `provider`'s last sector (at `path`), or undefined for an image without any. */
export function geomOwner(provider: Provider, path: string, lookup: GeomLookup): GeomOwner | undefined {
  const tasted = tasteProvider(provider);
  if (!tasted) return undefined;
  return tasted.className === 'VIRSTOR' ? describeVirstorImage(path, provider, tasted, lookup) : describeJournalImage(path, provider, tasted, lookup);
}

/** Refuses to relabel an image that holds GEOM metadata of either class (label, virstor add): the caller's -f skips this. */
export function refuseRelabel(provider: Provider, path: string, lookup: GeomLookup): void {
  const owner = geomOwner(provider, path, lookup);
  if (owner) throw new GeomError('REFUSED', owner.what, beforeRelabel(owner));
}

/**
 * Refuses to overwrite an existing file at `path` that holds GEOM metadata
 * (read -O, export -O): the caller's -f skips this. A path that does not
 * exist, is not an image (a pipe, /dev/null, a file smaller than a sector)
 * or holds no metadata is left to the caller.
 */
export function refuseOverwrite(path: string, lookup: GeomLookup): void {
  let provider: Provider;
  try {
    provider = lookup.probe(path);
  } catch {
    return;
  }
  try {
    const owner = geomOwner(provider, path, lookup);
    if (owner) throw new GeomError('REFUSED', owner.what, FORCE_DESTROYS);
  } finally {
    provider.close();
  }
}
