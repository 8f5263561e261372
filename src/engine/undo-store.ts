// Where undo logs live (flush-engine.md, "The undo log"): beside the first
// image of their transaction. The engine and recovery reach the file system
// only through a LogStore, so that the crash tests can simulate power loss on
// the log as they do on the images (test/sim/memory-log.ts).

import nodePath from 'node:path';
import fs from 'node:fs';
import { IoError, errnoOf } from '../errors.js';
import { readFully } from '../util/read-fully.js';

export const UNDO_SUFFIX = '.geomctl-undo';

/**
 * The path with every symlink, `.` and `..` resolved; undefined when it cannot
 * be resolved (no such file: a simulated image in tests).
 */
export function realPath(path: string): string | undefined {
  try {
    return fs.realpathSync.native(path);
  } catch {
    return undefined;
  }
}

/**
 * The undo log of a transaction whose first image is `image`: beside its real
 * path, so that a symlink, a relative path or `..` to the same file finds it
 * there (providers.md, "Crash safety across layers"); undo-registry.ts covers
 * the paths that do not resolve to it (hard links, bind mounts).
 */
export function undoLogPathFor(image: string): string {
  return `${realPath(image) ?? image}${UNDO_SUFFIX}`;
}

export interface LogReader {
  readonly size: number;
  /** Exactly `length` bytes at `offset` (inside `size`). */
  read(offset: number, length: number): Buffer;
  close(): void;
}

export interface LogWriter {
  /** Appends at the end of the file. */
  append(data: Buffer): void;
  /** fsync(2) of the file. */
  sync(): void;
  close(): void;
}

export interface LogStore {
  /** The undo logs (names ending in UNDO_SUFFIX) directly inside `dir`; none when it cannot be read. */
  list(dir: string): string[];
  /** An existing log, for reading; undefined when there is none. */
  open(path: string): LogReader | undefined;
  /** Creates a new, empty log; fails when one exists. */
  create(path: string): LogWriter;
  /** Unlinks a log (a missing one is fine). */
  remove(path: string): void;
  /** fsync(2) of a directory: makes a creation or removal in it durable. */
  syncDir(dir: string): void;
}

/** The production store: files next to the images. Errors are IoErrors naming the log. */
export const fileLogStore: LogStore = {
  list(dir) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return [];
    }
    return names.filter((n) => n.endsWith(UNDO_SUFFIX)).map((n) => nodePath.join(dir, n));
  },
  open(path) {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw new IoError(path, 'open', undefined, errnoOf(err));
    }
    const size = fs.fstatSync(fd).size;
    return {
      size,
      read(offset, length) {
        const buf = Buffer.alloc(length);
        readFully(fd, buf, offset, path);
        return buf;
      },
      close() {
        fs.closeSync(fd);
      },
    };
  },
  create(path) {
    let fd: number;
    try {
      fd = fs.openSync(path, 'wx', 0o644);
    } catch (err) {
      throw new IoError(path, 'create', undefined, errnoOf(err));
    }
    let end = 0;
    return {
      append(data) {
        let done = 0;
        try {
          while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, end + done);
        } catch (err) {
          throw new IoError(path, 'write', end + done, errnoOf(err));
        }
        end += data.length;
      },
      sync() {
        try {
          fs.fsyncSync(fd);
        } catch (err) {
          throw new IoError(path, 'fsync', undefined, errnoOf(err));
        }
      },
      close() {
        fs.closeSync(fd);
      },
    };
  },
  remove(path) {
    try {
      fs.unlinkSync(path);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw new IoError(path, 'unlink', undefined, errnoOf(err));
    }
  },
  syncDir(dir) {
    let fd: number;
    try {
      fd = fs.openSync(dir, 'r');
    } catch (err) {
      throw new IoError(dir, 'open', undefined, errnoOf(err));
    }
    try {
      fs.fsyncSync(fd);
    } catch (err) {
      // Some file systems cannot fsync a directory; the log's own fsync is all they offer.
      const errno = errnoOf(err);
      if (errno !== 'EINVAL' && errno !== 'EISDIR') throw new IoError(dir, 'fsync', undefined, errno);
    } finally {
      fs.closeSync(fd);
    }
  },
};
