// Provider names on the command line (providers.md, "Naming a provider on
// the command line"): FreeBSD users name what a geom offers, not the files
// below it — `gjournal stop data.img.journal`, `gvirstor list virstor/thin`,
// either with a leading /dev/. A name that is an existing file is that file;
// otherwise it is looked up among the providers of the geoms found by
// tasting. One place for both classes and the top-level verbs, so that a
// name means the same thing to every verb.

import { statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { DEV_PREFIX, JOURNAL_SUFFIX, VIRSTOR_PREFIX, withoutDev } from './device-name.js';
import { GeomError } from '../errors.js';
import { candidateImages, dirsWithNamed } from './candidates.js';
import { openImage } from '../provider/file.js';
import { tasteProvider, type Tasted } from './taste.js';
import type { Provider } from '../provider/provider.js';
import { decodeJournalMetadata, GJ_TYPE_DATA } from '../journal/metadata.js';
import { decodeVirstorMetadata } from '../virstor/metadata.js';


/** A provider name as written, with /dev/ dropped, and what it names. */
type ProviderSyntax =
  | { kind: 'journal'; name: string; dataName: string; dir: string | undefined }
  | { kind: 'virstor'; name: string; device: string };

/**
 * The provider `arg` would name, by its form alone: "virstor/<name>" or
 * "<data provider>.journal", either after /dev/. A journal provider may carry
 * the directory its data image lies in ("imgs/data.img.journal"), which is
 * then where it is looked for: GEOM names have none, but a path is what a
 * user of image files types.
 */
function providerSyntax(arg: string): ProviderSyntax | undefined {
  const name = withoutDev(arg);
  if (name.startsWith(VIRSTOR_PREFIX)) {
    const device = name.slice(VIRSTOR_PREFIX.length);
    return device && !device.includes('/') ? { kind: 'virstor', name, device } : undefined;
  }
  if (name.endsWith(JOURNAL_SUFFIX) && basename(name).length > JOURNAL_SUFFIX.length) {
    const data = name.slice(0, -JOURNAL_SUFFIX.length);
    const dir = arg.startsWith(DEV_PREFIX) || dirname(data) === '.' ? undefined : dirname(data);
    return { kind: 'journal', name: basename(name), dataName: basename(data), dir };
  }
  return undefined;
}

/** Which class's provider `arg` names by its form ("virstor/NAME", "IMAGE.journal", either after /dev/), if any. */
export function providerKind(arg: string): 'journal' | 'virstor' | undefined {
  return providerSyntax(arg)?.kind;
}

/** The device name a virstor verb is given: "thin", "virstor/thin" and "/dev/virstor/thin" are one. */
export function virstorDeviceName(arg: string): string {
  const p = providerSyntax(arg);
  return p?.kind === 'virstor' ? p.device : arg;
}

/** A name that is an existing file (not a directory) is that file, whatever its form. */
export function isFile(path: string): boolean {
  try {
    return !statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** How an image is opened for tasting: read-only, unlocked (the command's pool, or a plain open). */
export type OpenForTaste = (path: string) => Provider;

const openFile: OpenForTaste = (path) => openImage(path, { write: false });

/** The last sector of an image, tasted read-only (no lock: nothing is changed, and the verb locks what it uses). */
function taste(path: string, open: OpenForTaste): Tasted | undefined {
  let p: Provider | undefined;
  try {
    p = open(path);
    return tasteProvider(p);
  } catch (err) {
    if (err instanceof GeomError) return undefined;
    throw err;
  } finally {
    p?.close();
  }
}

/**
 * The data images offering the journal provider `p`: images of that base
 * name whose journal metadata has the DATA role. One whose metadata does not
 * decode counts too: the verb then says what is wrong with it.
 */
function journalProviderImages(p: Extract<ProviderSyntax, { kind: 'journal' }>, candidates: string[], open: OpenForTaste): string[] {
  return candidates.filter((path) => {
    if (basename(path) !== p.dataName) return false;
    const t = taste(path, open);
    if (t?.className !== 'JOURNAL') return false;
    try {
      return (decodeJournalMetadata(t.sector, path).type & GJ_TYPE_DATA) !== 0;
    } catch (err) {
      if (err instanceof GeomError) return true;
      throw err;
    }
  });
}

/** The images carrying the metadata of virstor device `device` (every component found, complete or not). */
function virstorProviderImages(device: string, candidates: string[], open: OpenForTaste): string[] {
  return candidates.filter((path) => {
    const t = taste(path, open);
    if (t?.className !== 'VIRSTOR') return false;
    try {
      return decodeVirstorMetadata(t.sector, path).name === device;
    } catch (err) {
      if (err instanceof GeomError) return false;
      throw err;
    }
  });
}

/** What a provider name stands for: the images below it. */
type ProviderImages =
  | { kind: 'journal'; provider: string; /** The data image: the journal verbs find its journal image. */ data: string }
  | { kind: 'virstor'; provider: string; device: string; /** Its components found. */ images: string[] };

/**
 * The provider `p` among the geoms tasted in `dirs` — in its own directory
 * only, when it names one; undefined when none offers it.
 */
function lookUp(p: ProviderSyntax, dirs: string[], open: OpenForTaste): { found?: ProviderImages; where: string[] } {
  const where = p.kind === 'journal' && p.dir !== undefined ? [p.dir] : dirs;
  const candidates = candidateImages([], where);
  if (p.kind === 'virstor') {
    const images = virstorProviderImages(p.device, candidates, open);
    return { found: images.length ? { kind: 'virstor', provider: p.name, device: p.device, images } : undefined, where };
  }
  const images = journalProviderImages(p, candidates, open);
  if (images.length > 1) {
    throw new GeomError('MISMATCH', `${p.name}: ${images.length} data images offer this provider (${images.join(', ')})`, 'name the data image itself');
  }
  const data = images[0];
  return { found: data === undefined ? undefined : { kind: 'journal', provider: p.name, data }, where };
}

/** A command-line name resolved: the file itself, or the images below the provider it names. */
type Resolved = { kind: 'file'; path: string; warning?: string } | ProviderImages;

/**
 * Resolves one name given where a verb takes an existing image (journal
 * verbs, top-level list and status). `dirs` are the places the command
 * tastes. An existing file is the file (with a warning when a provider of
 * that name exists too); a provider name is looked up; anything else is
 * left to the verb, whose open says what is wrong with the path. A name that
 * has a provider's form and names none is refused here — not with the
 * advice to create a file of that name.
 */
function resolveName(arg: string, dirs: string[], open: OpenForTaste): Resolved {
  const syntax = providerSyntax(arg);
  if (isFile(arg)) {
    if (!syntax) return { kind: 'file', path: arg };
    let found: ProviderImages | undefined;
    try {
      ({ found } = lookUp(syntax, dirsWithNamed([arg], dirs), open));
    } catch (err) {
      // Several images offer the name: the file is still what was named.
      if (!(err instanceof GeomError)) throw err;
    }
    if (!found) return { kind: 'file', path: arg };
    return { kind: 'file', path: arg, warning: `${arg} is a file, used as given; the provider ${found.provider} (${describe(found)}) is not: name its image to use it` };
  }
  if (!syntax) return { kind: 'file', path: arg };
  const { found, where } = lookUp(syntax, dirs, open);
  if (found) return found;
  throw new GeomError(
    'NOT_FOUND',
    `${arg}: no such file, and no geom found in ${where.join(', ')} offers provider ${syntax.name}`,
    "'geomctl status' lists the providers found; name the directory that holds its images with -d DIR",
  );
}

function describe(p: ProviderImages): string {
  return p.kind === 'journal' ? `journal on ${p.data}` : `virstor ${p.device} on ${p.images.join(', ')}`;
}

/** For the journal verbs: the data image (or image) `arg` names — an image, or a journal provider. */
export function journalImageOf(arg: string, dirs: string[], open: OpenForTaste = openFile): { path: string; warning?: string } {
  const r = resolveName(arg, dirs, open);
  if (r.kind === 'file') return r.warning === undefined ? { path: r.path } : { path: r.path, warning: r.warning };
  if (r.kind === 'journal') return { path: r.data };
  throw new GeomError('REFUSED', `${arg} is the provider of virstor ${r.device}, not of a journal`, "name a journal's image or its provider (<data image>.journal)");
}

/** For the top-level list and status: the images `arg` names — an image, or every image below a provider. */
export function imagesOf(arg: string, dirs: string[], open: OpenForTaste = openFile): { paths: string[]; warning?: string } {
  const r = resolveName(arg, dirs, open);
  if (r.kind === 'file') return r.warning === undefined ? { paths: [r.path] } : { paths: [r.path], warning: r.warning };
  return { paths: r.kind === 'journal' ? [r.data] : r.images };
}
