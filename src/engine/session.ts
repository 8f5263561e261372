// What every command does before it touches an image (flush-engine.md,
// "Locks" and "Recovery"): open each image once (flock belongs to the open
// file description, so a second descriptor would conflict with the first;
// two paths naming one image are refused), lock it — exclusive for writing, shared for reading — roll back any
// hot undo log that names one of the images (write sessions) or refuse
// (read-only ones), and hand out one flush engine over the images.
//
// Classes resolve every path a command needs before opening its session (the
// virstor class tastes its components first, the journal class takes both
// images from the command line or tastes for the journal image): a session
// never grows, because an image added after recovery could still carry an
// unrolled-back transaction. Tasting reads images too, and half way through a
// transaction they may carry names they are about to lose: writing commands
// whose tasting finds nothing usable roll back what covers the candidates and
// taste again (rollBackCandidates).
//
// GEOMCTL_FAULT (a testing hook, read once per process) wraps the images and
// the undo log so that the N-th write or barrier kills geomctl or fails.

import { statSync } from 'node:fs';
import { GeomError, UsageError } from '../errors.js';
import { lockImage, type Lockable } from '../platform/lock.js';
import { openImage } from '../provider/file.js';
import { faultFromEnv, withFaults, withLogFaults } from '../provider/fault.js';
import type { Provider } from '../provider/provider.js';
import type { Engine } from './types.js';
import { createEngine, type FlushEngine } from './engine.js';
import { findLogs, headerOf, recoverImages, type ImageRef, type RecoveryProgress } from './recovery.js';
import type { UndoImage } from './undo-format.js';
import { fileLogStore, type LogStore } from './undo-store.js';
import { fileRegistry, registryDir, type UndoRegistry } from './undo-registry.js';
import { sameFile } from '../util/identity.js';

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
  /** Tests: the environment GEOMCTL_FAULT and GEOMCTL_STATE_DIR are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Tests: the undo log registry (default: undo-registry.ts's directory for `env`). */
  registry?: UndoRegistry;
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

/** The registry of the user's state directory (GEOMCTL_STATE_DIR, ...: undo-registry.ts). */
export const defaultRegistry = (env: NodeJS.ProcessEnv = process.env): UndoRegistry => fileRegistry(registryDir(env));

/**
 * Opens, locks and recovers the images named by `paths`. Two paths naming one
 * image (same device and inode) are a usage error: every image is opened once,
 * and the engine's image numbers are the paths' positions.
 */
export function openSession(paths: string[], opts: SessionOptions): Session & { engine: FlushEngine } {
  const open = opts.open ?? defaultOpen;
  const env = opts.env ?? process.env;
  const counter = faultFromEnv(env);
  const registry = opts.registry ?? defaultRegistry(env);
  const wrap = (p: Provider): Provider => (counter ? withFaults(p, counter) : p);
  const store = counter ? withLogFaults(opts.logStore ?? fileLogStore, counter) : (opts.logStore ?? fileLogStore);
  const mode = opts.write ? 'exclusive' : 'shared';

  const opened: Provider[] = [];
  try {
    for (const path of paths) {
      const p = open(path, opts.write);
      const same = opened.find((q) => sameFile(q.identity, p.identity));
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
        if (sameFile(p.identity, img)) break;
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
    const { recovered } = recoverImages({ store, providers, dirs: opts.dirs, registry, write: opts.write, openExtra, ...(opts.progress ? { progress: opts.progress } : {}) });
    const engine = createEngine({ providers, cacheLimit: opts.cacheLimit, logStore: store, registry });
    return { engine, providers, recovered, close: () => engine.close() };
  } catch (err) {
    for (const p of opened) p.close();
    throw err;
  }
}

/**
 * The crashed transactions that cover one of `candidates` (logs searched next
 * to them, in `dirs`, and where the registry points them), each with the
 * candidates it names: what a read-only command that finds nothing by name
 * reports instead of "not found".
 */
export function unfinishedCovering(candidates: readonly string[], dirs: readonly string[], store: LogStore = fileLogStore, registry: UndoRegistry = defaultRegistry()): { log: string; paths: string[] }[] {
  const images: ImageRef[] = [];
  for (const path of candidates) {
    try {
      const { dev, ino } = statSync(path);
      if (!images.some((img) => sameFile(img.identity, { dev, ino }))) images.push({ path, identity: { dev, ino } });
    } catch {
      // not there (or not readable): opening it reports that, if it is needed
    }
  }
  const out: { log: string; paths: string[] }[] = [];
  for (const log of findLogs(store, images, dirs, registry)) {
    const header = headerOf(store, log);
    const paths = (header?.images ?? []).flatMap((h) => images.filter((img) => sameFile(h, img.identity)).map((img) => img.path));
    if (paths.length) out.push({ log, paths });
  }
  return out;
}

/**
 * For a writing command that resolves its images by tasting (a virstor device
 * by its name, a journal's journal image by its id) and finds nothing usable:
 * rolls back every crashed transaction that covers one of the `candidates`,
 * so that it can taste again — through `open`, a write session over the
 * candidates a hot log names (its recovery rolls back, and opens the log's
 * other images itself). The tasting saw the names of the unfinished
 * transaction: a killed relabel of device OLD leaves its images carrying the
 * new name, and `virstor stop OLD` would find nothing to open, so no session
 * to roll it back.
 *
 * The logs are searched next to the candidates and in `dirs`, as a session's
 * recovery searches. A log whose images another geomctl holds locked belongs
 * to a command still running, not to a crash: it is left to that command
 * (the session the caller then opens waits for those locks if it needs them).
 * Returns the logs rolled back.
 */
export function rollBackCandidates(
  candidates: readonly string[],
  dirs: readonly string[],
  open: (paths: string[]) => Pick<Session, 'recovered' | 'close'>,
  store: LogStore = fileLogStore,
  registry: UndoRegistry = defaultRegistry(),
): string[] {
  const recovered: string[] = [];
  for (const { log, paths } of unfinishedCovering(candidates, dirs, store, registry)) {
    // An earlier session's recovery may have rolled this log back already.
    if (recovered.includes(log)) continue;
    let session: Pick<Session, 'recovered' | 'close'>;
    try {
      session = open(paths);
    } catch (err) {
      if (err instanceof GeomError && err.code === 'LOCKED') continue;
      throw err;
    }
    recovered.push(...session.recovered);
    session.close();
  }
  return recovered;
}
