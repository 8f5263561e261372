// What every command does before it touches an image (flush-engine.md,
// "Locks" and "Recovery"): open each image once (flock belongs to the open
// file description, so a second descriptor would conflict with the first;
// two paths naming one image are refused), lock it — exclusive for writing, shared for reading — roll back any
// hot undo log that names one of the images (write sessions) or refuse
// (read-only ones), and hand out one flush engine over the images.
//
// Classes resolve every path a command needs before opening its session (the
// virstor class tastes its components first, the journal class takes both
// images from the command line): a session never grows, because an image
// added after recovery could still carry an unrolled-back transaction.
//
// GEOMCTL_FAULT (a testing hook, read once per process) wraps the images and
// the undo log so that the N-th write or barrier kills geomctl or fails.

import { GeomError, UsageError } from './errors.js';
import { lockImage, type Lockable } from './lock.js';
import { openImage } from './provider/file.js';
import { faultFromEnv, withFaults } from './provider/fault.js';
import type { Provider } from './provider/provider.js';
import type { Engine } from './engine/types.js';
import { createEngine, type FlushEngine } from './engine/engine.js';
import { recoverImages, type RecoveryProgress } from './engine/recovery.js';
import { fileLogStore, withLogFaults, type LogStore, type UndoImage } from './engine/undo-log.js';

export interface SessionOptions {
  write: boolean;
  /** --wait: seconds to wait for another process's lock. */
  wait: number;
  /** --cache-limit, bytes. */
  cacheLimit: number;
  /** The tasted directories: undo logs there that name one of the images concern this command too. */
  dirs: string[];
  /** Tests: where undo logs live (default: files next to the images). */
  logStore?: LogStore;
  /** Tests: how an image is opened (default: provider/file.ts's openImage). */
  open?: (path: string, write: boolean) => Provider & Lockable;
  /** Tests: the environment GEOMCTL_FAULT is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Reports a rollback's progress (cli.md, "Progress": recovery on open). */
  progress?: RecoveryProgress;
}

export interface Session {
  /** The engine over `providers`, in the same order (openSession's is a FlushEngine). */
  engine: Engine;
  /** One provider per path, in the order given. */
  providers: Provider[];
  /** Undo logs rolled back while opening. */
  recovered: string[];
  /** Closes the images (dropping their locks); uncommitted changes are dropped. */
  close(): void;
}

const defaultOpen = (path: string, write: boolean): Provider & Lockable => openImage(path, { write });

/**
 * Opens, locks and recovers the images named by `paths`. Two paths naming one
 * image (same device and inode) are a usage error: every image is opened once,
 * and the engine's image numbers are the paths' positions.
 */
export function openSession(paths: string[], opts: SessionOptions): Session & { engine: FlushEngine } {
  const open = opts.open ?? defaultOpen;
  const counter = faultFromEnv(opts.env ?? process.env);
  const wrap = (p: Provider): Provider => (counter ? withFaults(p, counter) : p);
  const store = counter ? withLogFaults(opts.logStore ?? fileLogStore, counter) : (opts.logStore ?? fileLogStore);
  const mode = opts.write ? 'exclusive' : 'shared';

  const opened: Provider[] = [];
  try {
    for (const path of paths) {
      const p = open(path, opts.write);
      const same = opened.find((q) => q.identity.dev === p.identity.dev && q.identity.ino === p.identity.ino);
      if (same) {
        p.close();
        throw new UsageError(`${path} is named twice${same.path !== path ? ` (also as ${same.path})` : ''}`, 'name each image once');
      }
      opened.push(p);
      lockImage(p, mode, opts.wait);
    }
    const providers = opened.map(wrap);
    const openExtra = (img: UndoImage): Provider => {
      let p: (Provider & Lockable) | undefined;
      for (const candidate of [img.abs, img.path]) {
        try {
          p = open(candidate, true);
        } catch {
          continue;
        }
        if (p.identity.dev === img.dev && p.identity.ino === img.ino) break;
        p.close();
        p = undefined;
      }
      if (!p) throw new GeomError('RECOVERY', `${img.path}, an image of an unfinished transaction, is not found (or is another file now)`, 'put it back where it was and run the command again');
      try {
        lockImage(p, 'exclusive', opts.wait);
      } catch (err) {
        p.close();
        throw err;
      }
      return wrap(p);
    };
    const { recovered } = recoverImages({ store, providers, dirs: opts.dirs, write: opts.write, openExtra, ...(opts.progress ? { progress: opts.progress } : {}) });
    const engine = createEngine({ providers, cacheLimit: opts.cacheLimit, logStore: store });
    return { engine, providers, recovered, close: () => engine.close() };
  } catch (err) {
    for (const p of opened) p.close();
    throw err;
  }
}
