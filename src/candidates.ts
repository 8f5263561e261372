// Which files are candidates for tasting (cli.md, "Tasting"): the images named
// on the command line plus every regular file (and, on Linux, block device)
// directly inside the -d directories — the current directory when none is
// given — and the GEOMCTL_PATH directories. geomctl's own undo logs are never
// candidates.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const UNDO_SUFFIX = '.geomctl-undo';

/** The directories to taste: -d values (or "."), then GEOMCTL_PATH's entries. */
export function tasteDirs(dirs: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = (env.GEOMCTL_PATH ?? '').split(':').filter(Boolean);
  const chosen = dirs.length ? dirs : ['.'];
  return [...new Set([...chosen, ...fromEnv])];
}

/** Regular files and block devices directly inside `dir`, sorted by name; unreadable dirs yield nothing. */
export function filesIn(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    if (name.endsWith(UNDO_SUFFIX)) continue;
    const path = dir === '.' ? name : join(dir, name);
    try {
      const st = statSync(path);
      if (st.isFile() || st.isBlockDevice()) out.push(path);
    } catch {
      // vanished or unreadable: not a candidate
    }
  }
  return out;
}

/**
 * The candidate images: named paths first (as given), then the directories'
 * files, each file once (by device and inode, so "./a.img" and "a.img" are one).
 */
export function candidateImages(named: string[], dirs: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const path of [...named, ...dirs.flatMap(filesIn)]) {
    let key = path;
    try {
      const st = statSync(path);
      key = `${st.dev}:${st.ino}`;
    } catch {
      // a named path that does not exist is kept so that opening it reports the error
    }
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(path);
  }
  return out;
}
