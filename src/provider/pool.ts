// One open per image per command (issue 10: "every candidate image opened
// once"). Tasting, provider-name lookups and the command's sessions all ask
// the pool, which opens an image the first time and lends the same
// descriptor afterwards, matched by device and inode, so `geomctl list`
// opens each image once whatever path reaches it. A session needing to write
// an image tasted read-only reopens it read-write: the only second open.
//
// Locks belong to the open file description (flock), so a lent descriptor
// carries the lock of the session that holds it: a session's view drops its
// lock when the session closes; a taste's view never locks and closes
// nothing. The descriptors close when the process ends (or closeAll()).

import { statSync } from 'node:fs';
import nodePath from 'node:path';
import { openImage, type FileProvider } from './file.js';
import { providerView, type Provider } from './provider.js';
import { unlockImage, type Lockable } from '../platform/lock.js';
import { identityKey } from '../util/identity.js';

export class ImagePool {
  private readonly open = new Map<string, FileProvider>();
  private readonly all: FileProvider[] = [];

  private get(path: string, write: boolean): FileProvider {
    let key: string;
    try {
      key = identityKey(statSync(path));
    } catch {
      return openImage(path, { write }); // says what is wrong with the path
    }
    const have = this.open.get(key);
    if (have && (have.writable || !write)) return have;
    const p = openImage(path, { write });
    this.open.set(identityKey(p.identity), p);
    this.all.push(p);
    return p;
  }

  /** For tasting: read-only, unlocked; close() gives nothing back. */
  probe(path: string): Provider {
    return lend(this.get(path, false), path, false);
  }

  /** For a session: lockable; close() drops the lock the session took. */
  session(path: string, write: boolean): Provider & Lockable {
    return lend(this.get(path, write), path, true);
  }

  closeAll(): void {
    for (const p of this.all.splice(0)) p.close();
    this.open.clear();
  }
}

/** `p` as reached by `path` (messages name the path given). */
function lend(p: FileProvider, path: string, locks: boolean): Provider & Lockable {
  const closers: (() => void)[] = [];
  let closed = false;
  const view: Provider & Lockable = {
    ...providerView(p, {
      path,
      name: nodePath.basename(path),
      close() {
        if (closed) return;
        closed = true;
        if (locks) unlockImage(view);
        for (const release of closers.splice(0)) release();
      },
    }),
    fd: p.fd,
    onClose: (release) => closers.push(release),
  };
  return view;
}
