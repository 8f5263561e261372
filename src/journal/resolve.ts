// Which images make a journal device (cli.md: "When jimg is not given for a
// two-provider journal, the journal image is found by tasting (same md_id,
// type JOURNAL)"), decided before the session opens and locks them.

import { GeomError } from '../errors.js';
import { candidateImages } from '../candidates.js';
import { openImage } from '../provider/file.js';
import { GJ_TYPE_DATA, GJ_TYPE_JOURNAL, readJournalMetadata, type JournalMetadata } from './metadata.js';

/** Reads an image's journal metadata, or undefined when it has none (or cannot be read). */
function metadataOf(path: string): { md: JournalMetadata; dev: number; ino: number } | undefined {
  let p: ReturnType<typeof openImage> | undefined;
  try {
    p = openImage(path, { write: false });
    return { md: readJournalMetadata(p).md, dev: p.identity.dev, ino: p.identity.ino };
  } catch (err) {
    if (err instanceof GeomError) return undefined;
    throw err;
  } finally {
    p?.close();
  }
}

/**
 * [dataimg] or [dataimg, jimg]: the journal image as given, else, for a
 * data image of a two-image journal, the image in `dirs` with the same md_id
 * and type JOURNAL. Errors about the data image itself are left to the open.
 */
export function journalImages(dataPath: string, journalPath: string | undefined, dirs: string[]): string[] {
  if (journalPath !== undefined) return [dataPath, journalPath];
  const data = metadataOf(dataPath);
  if (!data || data.md.type !== GJ_TYPE_DATA) return [dataPath];
  for (const path of candidateImages([], dirs)) {
    const m = metadataOf(path);
    if (!m || (m.dev === data.dev && m.ino === data.ino)) continue;
    if (m.md.id === data.md.id && m.md.type === GJ_TYPE_JOURNAL) return [dataPath, path];
  }
  throw new GeomError(
    'NOT_FOUND',
    `${dataPath} is the data image of journal ${data.md.id}, and no image with its journal was found in ${dirs.join(', ')}`,
    'give the journal image as the second argument, or -d DIR where it lies',
  );
}

/** The images of one journal device found by tasting. */
export interface JournalGroup {
  id: number;
  data: string;
  /** The journal image of a two-image device. */
  journal?: string;
}

/**
 * Groups tasted journal images into devices by md_id (the kernel's
 * g_journal_create pairing): a one-image device alone, a data image with the
 * journal image of the same id. Halves without their other half are reported,
 * as the kernel would keep waiting for them.
 */
export function groupJournalImages(paths: string[]): { groups: JournalGroup[]; warnings: string[] } {
  const byId = new Map<number, { data?: string; journal?: string; both?: string }>();
  const warnings: string[] = [];
  for (const path of paths) {
    const m = metadataOf(path);
    if (!m) continue;
    const g = byId.get(m.md.id) ?? {};
    const slot = m.md.type === GJ_TYPE_DATA ? 'data' : m.md.type === GJ_TYPE_JOURNAL ? 'journal' : 'both';
    if (g[slot] !== undefined) {
      warnings.push(`${path} and ${g[slot]} both claim to be the ${slot === 'both' ? 'image' : `${slot} image`} of journal ${m.md.id}; using ${g[slot]}`);
      continue;
    }
    g[slot] = path;
    byId.set(m.md.id, g);
  }
  const groups: JournalGroup[] = [];
  for (const [id, g] of byId) {
    if (g.both !== undefined) groups.push({ id, data: g.both });
    if (g.data !== undefined && g.journal !== undefined) groups.push({ id, data: g.data, journal: g.journal });
    else if (g.data !== undefined) warnings.push(`${g.data}: data image of journal ${id} without its journal image`);
    else if (g.journal !== undefined) warnings.push(`${g.journal}: journal image of journal ${id} without its data image`);
  }
  return { groups, warnings };
}
