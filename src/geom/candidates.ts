// Which files are candidates for tasting (cli.md, "Tasting"): the images named
// on the command line plus every regular file (and, on Linux, block device)
// directly inside the places tasted — the current directory, the -d
// directories, the GEOMCTL_PATH directories, and the directories of the
// images named. -d adds a place, it replaces none: an administrator who
// keeps a journal image in j/ runs `geomctl -d j journal status` beside the
// data image and expects both found. geomctl's own undo logs are never
// candidates.

import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { identityKey } from '../util/identity.js';
import { UNDO_SUFFIX } from '../engine/undo-store.js';


/**
 * The directories to taste: the -d values, ".", then GEOMCTL_PATH's entries
 * — the -d ones first, so that an image found through both is named as the
 * user's -d names it.
 */
export function tasteDirs(dirs: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = (env.GEOMCTL_PATH ?? '').split(':').filter(Boolean);
  return [...new Set([...dirs, '.', ...fromEnv])];
}

/** `dirs` and then the directories of the `named` images: where a command looks for the rest of a device. */
export function dirsWithNamed(named: readonly string[], dirs: readonly string[]): string[] {
  return [...new Set([...dirs, ...named.map((p) => dirname(p))])];
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
 * The candidate images: named paths first (as given), then the files of the
 * directories and of the named images' directories, each file once (by
 * device and inode, so "./a.img" and "a.img" are one).
 */
export function candidateImages(named: string[], dirs: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const path of [...named, ...dirsWithNamed(named, dirs).flatMap(filesIn)]) {
    let key = path;
    try {
      const st = statSync(path);
      key = identityKey(st);
    } catch {
      // a named path that does not exist is kept so that opening it reports the error
    }
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(path);
  }
  return out;
}
