// What a journal image holds, for the refusals of src/geom/owner.ts: the
// journaled provider it belongs to (FreeBSD's <data>.journal) and whether
// that journal is DIRTY — journals terminated but not yet copied to the data
// area, which `journal sync` keeps and a relabel would lose. Only the data
// image's metadata carries the live flags (the kernel never updates the
// journal image's after label), so a journal image's state is its data
// image's, found by tasting. Read through unlocked probes: the answer only
// words a message, the decision to refuse is the metadata's presence.

import { GeomError } from '../errors.js';
import type { Provider } from '../provider/provider.js';
import { tasteProvider, type Tasted } from '../geom/taste.js';
import type { GeomOwner } from '../geom/owner.js';
import type { TasteHost } from '../virstor/host.js';
import { decodeJournalMetadata, GJ_TYPE_COMPLETE, GJ_TYPE_DATA, isClean, type JournalMetadata } from './metadata.js';
import { sameFile } from '../util/identity.js';

/** The data image of the journal whose journal image is `journal`, among the candidates. */
function findDataImage(journal: Provider, md: JournalMetadata, host: TasteHost): { path: string; name: string; md: JournalMetadata } | undefined {
  for (const path of host.candidates) {
    let p: Provider;
    try {
      p = host.probe(path);
    } catch {
      continue;
    }
    try {
      if (sameFile(p.identity, journal.identity)) continue;
      const tasted = tasteProvider(p);
      if (tasted?.className !== 'JOURNAL') continue;
      const other = decodeJournalMetadata(tasted.sector, path);
      if (other.id === md.id && other.type === GJ_TYPE_DATA) return { path, name: p.name, md: other };
    } catch (err) {
      if (!(err instanceof GeomError)) throw err;
    } finally {
      p.close();
    }
  }
  return undefined;
}

/** The journal `provider` (at `path`) belongs to, and whether journals on it are pending. */
export function describeJournalImage(path: string, provider: Provider, tasted: Tasted, host: TasteHost): GeomOwner {
  let md: JournalMetadata;
  try {
    md = decodeJournalMetadata(tasted.sector, path);
  } catch (err) {
    if (!(err instanceof GeomError)) throw err;
    return { what: `${path} holds GEOM journal metadata that does not decode (${err.message})` };
  }
  let role: string;
  let data: { path: string; name: string; md: JournalMetadata };
  let sync: string;
  if (md.type === GJ_TYPE_COMPLETE || md.type === GJ_TYPE_DATA) {
    role = md.type === GJ_TYPE_COMPLETE ? 'the image' : 'the data image';
    data = { path, name: provider.name, md };
    sync = `geomctl journal sync ${path}`;
  } else {
    role = 'the journal image';
    const found = findDataImage(provider, md, host);
    if (!found) {
      return { what: `${path} is the journal image of journal ${md.id}, whose data image is not found here to tell whether journals are pending (name its directory with -d DIR)` };
    }
    data = found;
    sync = `geomctl journal sync ${found.path} ${path}`;
  }
  const journal = `${path} is ${role} of journal ${data.name}.journal`;
  if (isClean(data.md)) return { what: `${journal}, which is CLEAN (nothing pending)`, relabelKeepsData: true };
  return { what: `${journal}, which is DIRTY: journals not yet copied to its data area`, keepFirst: sync };
}
