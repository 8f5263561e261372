// Rolling back hot undo logs before a command touches its images
// (flush-engine.md, "Recovery"; HAMMER's hammer_recover.c runs the UNDO FIFO
// backwards the same way). A log with a valid header is hot: its valid
// records are applied newest first, restoring the bytes every range held
// before the crashed transaction, then the images are barriered and the log
// is deleted. Applying a record twice does no harm, so a crash during
// recovery is repaired by running it again. A log whose header is not valid
// was torn while it was being created, before any record could be trusted
// and so before any metadata it would cover was written: it is stale.
//
// A log belongs to the files it names, not to the paths that named them
// (providers.md, "Crash safety across layers"): it is looked for beside each
// image's path and real path, in the tasted directories, and where the
// registry points each image (by device and inode: hard links, bind mounts),
// and it concerns this command when its header names one of the images by
// device and inode, whatever path reached them.

import { statSync } from 'node:fs';
import nodePath from 'node:path';
import { GeomError } from '../errors.js';
import type { Provider, ProviderIdentity } from '../provider/provider.js';
import { decodeHeader, readerRange, scanRecords, type UndoHeader, type UndoImage } from './undo-format.js';
import { UNDO_SUFFIX, realPath, type LogReader, type LogStore } from './undo-store.js';
import type { UndoRegistry } from './undo-registry.js';
import { sameFile } from '../util/identity.js';

/**
 * Starts a progress report (a spinner, commands/output.ts) of `total` bytes:
 * a rollback restores as many bytes as the crashed transaction modified,
 * which for a virstor map can be hundreds of MiB (seconds of writing).
 */
export type RecoveryProgress = (label: string, total: number) => { update(done: number): void; stop(): void };

export interface RecoveryOptions {
  store: LogStore;
  /** The command's images, opened (for writing in write sessions) and locked. */
  providers: readonly Provider[];
  /** Directories to search besides the images' own (the tasted ones). */
  dirs: readonly string[];
  /** Where each image's pointer to its log is (undo-registry.ts); none in tests. */
  registry?: UndoRegistry;
  /** Read-only commands never roll back: they refuse with UNFINISHED. */
  write: boolean;
  /**
   * Opens and locks, for writing, an image a hot log names that the command
   * did not open (e.g. `c0.img` of a log found by `dump c2.img`). Throws a
   * GeomError when it cannot; the caller closes what it returns.
   */
  openExtra?: (image: UndoImage) => Provider;
  /** Reports the bytes each rollback has restored. */
  progress?: RecoveryProgress;
}

export interface RecoveryResult {
  /** The logs rolled back. */
  recovered: string[];
  /** Stale logs (torn headers) removed. */
  removedStale: string[];
}

/** An image a log may name: its path (for messages and directories) and its identity (what matches). */
export interface ImageRef {
  readonly path: string;
  readonly identity: ProviderIdentity;
}

const sameImage = (p: ImageRef, img: ProviderIdentity): boolean => sameFile(p.identity, img);

/** A directory's real path, so that one directory reached two ways is searched (and its logs named) once. */
const realDir = (dir: string): string => realPath(dir) ?? nodePath.resolve(dir);

/**
 * Every log that may concern `images`, each once: beside their paths and real
 * paths, in `dirs`, and where the registry points them (which may be gone).
 */
export function findLogs(store: LogStore, images: readonly ImageRef[], dirs: readonly string[], registry?: UndoRegistry): string[] {
  const where = new Set<string>();
  for (const img of images) {
    where.add(realDir(nodePath.dirname(nodePath.resolve(img.path))));
    const real = realPath(img.path);
    if (real) where.add(nodePath.dirname(real));
  }
  for (const d of dirs) where.add(realDir(d));
  const logs = new Set<string>();
  for (const dir of where) for (const log of store.list(dir)) logs.add(nodePath.resolve(log));
  for (const img of images) {
    const pointed = registry?.lookup(img.identity);
    if (pointed) logs.add(pointed);
  }
  return [...logs].sort();
}

/**
 * A log named after one of this command's images (by path, or by device and
 * inode: a hard link names the same file): only then may a stale one be
 * removed, for its writer held that image's lock, which this command holds now.
 */
function namedAfterOurs(log: string, providers: readonly Provider[]): boolean {
  const image = log.slice(0, -UNDO_SUFFIX.length);
  let identity: ProviderIdentity | undefined;
  try {
    identity = statSync(image);
  } catch {
    // no such file (a simulated store): only the path can match
  }
  return providers.some((p) => nodePath.resolve(p.path) === image || (identity !== undefined && sameImage(p, identity)));
}

/** The header of the log at `path`; undefined when there is none or it is torn. */
export function headerOf(store: LogStore, path: string): UndoHeader | undefined {
  const reader = store.open(path);
  if (!reader) return undefined;
  try {
    return decodeHeader(readerRange(reader));
  } finally {
    reader.close();
  }
}

/**
 * Removes the images' registry pointers that lead to no log naming them: left
 * by a crash after a commit point or a rollback. Only under the images' locks
 * (a write session's), which every transaction that points at them holds.
 */
function forgetDangling(store: LogStore, registry: UndoRegistry, providers: readonly Provider[]): void {
  for (const p of providers) {
    const log = registry.lookup(p.identity);
    if (log && !headerOf(store, log)?.images.some((img) => sameImage(p, img))) registry.forget([p.identity], log);
  }
}

export function recoverImages(opts: RecoveryOptions): RecoveryResult {
  const result: RecoveryResult = { recovered: [], removedStale: [] };
  for (const path of findLogs(opts.store, opts.providers, opts.dirs, opts.registry)) {
    const reader = opts.store.open(path);
    if (!reader) continue;
    let header: UndoHeader | undefined;
    try {
      header = decodeHeader(readerRange(reader));
      const ours = header ? opts.providers.find((p) => header?.images.some((img) => sameImage(p, img))) : undefined;
      if (header && ours) {
        if (!opts.write) {
          throw new GeomError(
            'UNFINISHED',
            `${ours.path} has an unfinished transaction (${path})`,
            `run any write command on it to roll it back (e.g. 'geomctl journal sync' or 'geomctl virstor stop' on its device)`,
          );
        }
        rollBack(opts, path, reader, header);
        opts.registry?.forget(header.images, path);
        result.recovered.push(path);
      }
    } finally {
      reader.close();
    }
    if (!header && opts.write && namedAfterOurs(path, opts.providers)) {
      try {
        opts.store.remove(path);
        opts.store.syncDir(nodePath.dirname(path));
      } catch (err) {
        throw recoveryError(path, err);
      }
      result.removedStale.push(path);
    }
  }
  if (opts.write && opts.registry) forgetDangling(opts.store, opts.registry, opts.providers);
  return result;
}

function recoveryError(path: string, err: unknown): GeomError {
  if (err instanceof GeomError && err.code === 'RECOVERY') return err;
  const why = err instanceof Error ? err.message : String(err);
  return new GeomError('RECOVERY', `rolling back the unfinished transaction in ${path} failed: ${why}`, 'the undo log stays; fix the cause and run the command again (it rolls back first)');
}

/** Bytes of zeros written per call when a record's old bytes were all zero. */
const ZERO_CHUNK = 1024 * 1024;

/**
 * Where the zeros of a record whose old bytes were all zero must be written:
 * only the parts of [offset, offset + length) that may hold data now. The
 * rest are holes, and a hole already reads as zeros — the old bytes — so
 * skipping it restores them exactly, and a sparse image stays sparse (the
 * crashed label of a 512 MiB map, rolled back, would otherwise leave that
 * much allocated). The regions are the medium's (SEEK_DATA/SEEK_HOLE), which
 * count what this rollback has just written through the page cache; they are
 * listed before writing, and writing zeros inside them makes no new data
 * elsewhere. A provider that cannot tell gets the whole range.
 */
function zeroTargets(target: Provider, offset: number, length: number): (readonly [number, number])[] {
  return target.dataRegions ? [...target.dataRegions(offset, length)] : [[offset, offset + length]];
}

function rollBack(opts: RecoveryOptions, path: string, reader: LogReader, header: UndoHeader): void {
  const extras: Provider[] = [];
  let progress: ReturnType<RecoveryProgress> | undefined;
  try {
    const targets = header.images.map((img) => {
      let p = opts.providers.find((q) => sameImage(q, img));
      if (!p) {
        if (!opts.openExtra) throw new GeomError('RECOVERY', `cannot roll back ${path}: ${img.path} is not open`);
        p = opts.openExtra(img);
        extras.push(p);
      }
      if (p.size !== img.size) {
        throw new GeomError('RECOVERY', `cannot roll back ${path}: ${p.path} is ${p.size} bytes, not ${img.size} as when the transaction began`, 'restore the image to its former size and run the command again');
      }
      return p;
    });
    const records = scanRecords(reader, header);
    const written = new Set<number>();
    let zeros: Buffer | undefined;
    progress = opts.progress?.('rolling back an unfinished transaction', records.reduce((n, r) => n + r.length, 0));
    let restored = 0;
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i]!;
      const target = targets[r.image] as Provider;
      if (r.zero) {
        if (!zeros || zeros.length < Math.min(ZERO_CHUNK, r.length)) zeros = Buffer.alloc(Math.min(ZERO_CHUNK, r.length));
        for (const [start, end] of zeroTargets(target, r.offset, r.length)) {
          for (let at = start; at < end; ) {
            const n = Math.min(zeros.length, end - at);
            target.write(at, zeros.subarray(0, n));
            at += n;
            progress?.update(restored + at - r.offset);
          }
        }
      } else {
        target.write(r.offset, reader.read(r.payloadAt, r.length));
      }
      restored += r.length;
      progress?.update(restored);
      written.add(r.image);
    }
    for (const i of [...written].sort((a, b) => a - b)) (targets[i] as Provider).barrier();
    opts.store.remove(path);
    opts.store.syncDir(nodePath.dirname(path));
  } catch (err) {
    throw recoveryError(path, err);
  } finally {
    progress?.stop();
    for (const p of extras) p.close();
  }
}
