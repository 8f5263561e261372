// Which images make a journal device (cli.md: "When jimg is not given for a
// two-provider journal, the journal image is found by tasting (same md_id,
// type JOURNAL)"), decided before the session opens and locks them.

import { GeomError } from '../errors.js';
import { candidateImages, dirsWithNamed } from '../geom/candidates.js';
import { openImage } from '../provider/file.js';
import type { Provider } from '../provider/provider.js';
import { GJ_TYPE_DATA, GJ_TYPE_JOURNAL, readJournalMetadata, type JournalMetadata } from './metadata.js';
import { sameFile } from '../util/identity.js';

/** An image's journal metadata, or the error that says why it has none to use. */
type Probe = { md: JournalMetadata; dev: number; ino: number; error?: undefined } | { error: GeomError };

/** How an image (or a provider, for a stack) is opened for tasting: read-only, unlocked. */
type Open = (path: string) => Provider;

const openFile: Open = (path) => openImage(path, { write: false });

function probe(path: string, open: Open): Probe {
  let p: Provider | undefined;
  try {
    p = open(path);
    return { md: readJournalMetadata(p).md, dev: p.identity.dev, ino: p.identity.ino };
  } catch (err) {
    if (err instanceof GeomError) return { error: err };
    throw err;
  } finally {
    p?.close();
  }
}

/**
 * Whether an image that failed to taste could still be the image looked for:
 * one that cannot be read, or whose journal metadata does not decode (not one
 * without journal metadata, or not an image at all).
 */
function mayHideJournal(err: GeomError): boolean {
  return err.code === 'PERMISSION' || err.code === 'IO' || err.code === 'CORRUPT';
}

/** " (not tasted: a.img: permission denied (...), ...)": the images a search could not look into, for its message. */
export function notTasted(errors: GeomError[]): string {
  if (errors.length === 0) return '';
  const shown = errors.slice(0, 3).map((e) => e.message);
  return ` (not tasted: ${shown.join(', ')}${errors.length > 3 ? `, and ${errors.length - 3} more` : ''})`;
}

/**
 * [dataimg] or [dataimg, jimg]: the journal image as given, else, for a
 * data image of a two-image journal, the image with the same md_id and type
 * JOURNAL in `dirs` or beside the data image. Errors about the data image itself are left to the open;
 * images that could not be tasted are named when nothing is found, since the
 * journal image may be one of them.
 */
export function journalImages(dataPath: string, journalPath: string | undefined, dirs: string[], open: Open = openFile): string[] {
  if (journalPath !== undefined) return [dataPath, journalPath];
  const data = probe(dataPath, open);
  if (data.error || data.md.type !== GJ_TYPE_DATA) return [dataPath];
  const unusable: GeomError[] = [];
  const where = dirsWithNamed([dataPath], dirs);
  for (const path of candidateImages([], where)) {
    const m = probe(path, open);
    if (m.error) {
      if (mayHideJournal(m.error)) unusable.push(m.error);
      continue;
    }
    if (sameFile(m, data)) continue;
    if (m.md.id === data.md.id && m.md.type === GJ_TYPE_JOURNAL) return [dataPath, path];
  }
  const first = unusable[0];
  throw new GeomError(
    'NOT_FOUND',
    `${dataPath} is the data image of journal ${data.md.id}, and no image with its journal was found in ${where.join(', ')}${notTasted(unusable)}`,
    first?.code === 'PERMISSION' && first.hint
      ? `${first.hint}, or give the journal image as the second argument`
      : 'give the journal image as the second argument, or -d DIR where it lies',
  );
}

/** The images of one journal device found by tasting. */
export interface JournalGroup {
  id: number;
  data: string;
  /** The journal image of a two-image device. */
  journal?: string;
}

/** Something about tasted images that the kernel would log (and then ignore them). */
export interface JournalProblem {
  /** The images it concerns. */
  paths: string[];
  error: GeomError;
  /** The device is still found (with another image): a warning even when a concerned image was named. */
  warning?: boolean;
}

/**
 * Groups tasted journal images into devices by md_id (the kernel's
 * g_journal_create pairing): a one-image device alone, a data image with the
 * journal image of the same id. Images whose metadata does not decode, and
 * halves without their other half (the kernel would keep waiting for them),
 * are problems; `untasted` (images that could not be read) are named with a
 * lone half, since its other half may be among them.
 */
export function groupJournalImages(paths: string[], untasted: GeomError[] = [], open: Open = openFile): { groups: JournalGroup[]; problems: JournalProblem[] } {
  const byId = new Map<number, { data?: string; journal?: string; both?: string }>();
  const problems: JournalProblem[] = [];
  for (const path of paths) {
    const m = probe(path, open);
    if (m.error) {
      problems.push({ paths: [path], error: m.error });
      continue;
    }
    const g = byId.get(m.md.id) ?? {};
    const slot = m.md.type === GJ_TYPE_DATA ? 'data' : m.md.type === GJ_TYPE_JOURNAL ? 'journal' : 'both';
    const taken = g[slot];
    if (taken !== undefined) {
      const what = slot === 'both' ? 'image' : `${slot} image`;
      problems.push({ paths: [path], warning: true, error: new GeomError('MISMATCH', `${path} and ${taken} both claim to be the ${what} of journal ${m.md.id}; using ${taken}`) });
      continue;
    }
    g[slot] = path;
    byId.set(m.md.id, g);
  }
  const groups: JournalGroup[] = [];
  const where = notTasted(untasted);
  for (const [id, g] of byId) {
    if (g.both !== undefined) groups.push({ id, data: g.both });
    if (g.data !== undefined && g.journal !== undefined) groups.push({ id, data: g.data, journal: g.journal });
    else if (g.data !== undefined) {
      problems.push({ paths: [g.data], error: new GeomError('NOT_FOUND', `${g.data}: data image of journal ${id} without its journal image${where}`, 'name the directory where its journal image lies with -d DIR') });
    } else if (g.journal !== undefined) {
      problems.push({ paths: [g.journal], error: new GeomError('NOT_FOUND', `${g.journal}: journal image of journal ${id} without its data image${where}`, 'name the directory where its data image lies with -d DIR') });
    }
  }
  return { groups, problems };
}
