// The journal class's discovery policy (issue 10: `discover(tasted) → geoms`,
// one per class in src/<class>/): from the images tasted as JOURNAL, the
// devices the kernel would create (g_journal_taste pairing a data image with
// the journal image of the same md_id: resolve.ts groupJournalImages), which
// of them a command naming `named` shows, and what it says about the rest. What the kernel
// would log and pass over (metadata that does not decode, a half without its
// other half, a device that does not open) fails the command when it
// concerns an image the user named, and is a warning otherwise, as the
// kernel's log line is. The virstor class's counterpart is
// src/virstor/discover.ts.

import { statSync } from 'node:fs';
import type { GeomError } from '../errors.js';
import type { Provider } from '../provider/provider.js';
import { identityKey } from '../util/identity.js';
import { groupJournalImages, type JournalGroup } from './resolve.js';

export interface JournalDiscovery {
  /** The devices to show: every one found, or those holding a named image. */
  groups: JournalGroup[];
  /** Problems concerning a named image: the command fails after showing the rest. */
  failures: GeomError[];
  /** Problems the kernel would only log. */
  warnings: string[];
  /** Whether a problem with these images fails the command (a device that does not open, say). */
  concernsNamed(images: readonly string[]): boolean;
}

/** An image's identity, so that "./a.img" and "a.img" are one; the name itself for a provider (or a path that cannot be stat()ed). */
function imageKey(path: string): string {
  try {
    return identityKey(statSync(path));
  } catch {
    return path;
  }
}

/**
 * The journal devices among `paths` (images and providers tasted as
 * JOURNAL), read through `open`; with images `named`, only those they belong
 * to. `untasted`: candidates that could not be read, named when a device
 * lacks an image, since it may be one of them.
 */
export function discoverJournals(paths: string[], named: readonly string[], untasted: GeomError[], open: (path: string) => Provider): JournalDiscovery {
  const wanted = new Set(named.map(imageKey));
  const concernsNamed = (images: readonly string[]): boolean => images.some((p) => wanted.has(imageKey(p)));
  const failures: GeomError[] = [];
  const warnings: string[] = [];
  const { groups, problems } = groupJournalImages(paths, untasted, open);
  for (const p of problems) {
    const mine = concernsNamed(p.paths);
    if (named.length && !mine) continue;
    if (mine && !p.warning) failures.push(p.error);
    else warnings.push(p.error.line);
  }
  const shown = groups.filter((g) => !named.length || concernsNamed(g.journal ? [g.data, g.journal] : [g.data]));
  return { groups: shown, failures, warnings, concernsNamed };
}
