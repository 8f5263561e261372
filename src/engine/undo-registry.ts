// Where every path to an image finds the undo log of a transaction over it
// (providers.md, "Crash safety across layers": the log belongs to the file,
// not to the path). A log lies beside the real path of its first image, so a
// symlink, a relative path or `..` finds it by looking beside the real path
// of the image it names. A hard link in another directory, or a bind mount of
// the file elsewhere, is the same file under another real path: nothing
// beside it leads to the log. The registry closes that gap: a directory
// holding, for each image of a transaction whose undo log exists, a symlink
// named after the image's device and inode that points at the log.
//
// Order (crash-safe): the pointers are made durable (one fsync of the
// registry directory) before the log is created, hence before any metadata
// the log covers reaches an image; they are removed after the commit point or
// a rollback has deleted the log. A crash between leaves a pointer to no log (or to a log
// that no longer names the image): a dangling pointer, ignored by lookups and
// removed by the next writing command that holds the image's lock. Removal
// needs no fsync for the same reason.
//
// The directory is $GEOMCTL_STATE_DIR, else $XDG_STATE_HOME/geomctl, else
// ~/.local/state/geomctl: per user, so two users writing one image through
// two hard links must share it by setting GEOMCTL_STATE_DIR.

import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { IoError, errnoOf } from '../errors.js';
import type { ProviderIdentity } from '../provider/provider.js';
import { identityFileName } from '../util/identity.js';

export interface UndoRegistry {
  /** Points each image at `log`, durably when it returns: called before the log is created. */
  record(images: readonly ProviderIdentity[], log: string): void;
  /** The log the image's pointer names, if it has one (which may not exist any more). */
  lookup(image: ProviderIdentity): string | undefined;
  /** Removes the images' pointers that name `log` (those naming another log are left). */
  forget(images: readonly ProviderIdentity[], log: string): void;
}

/** The registry directory for an environment (see the file's comment). */
export function registryDir(env: NodeJS.ProcessEnv): string {
  if (env.GEOMCTL_STATE_DIR) return nodePath.resolve(env.GEOMCTL_STATE_DIR);
  const state = env.XDG_STATE_HOME && nodePath.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : nodePath.join(env.HOME || os.homedir(), '.local', 'state');
  return nodePath.join(state, 'geomctl');
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    // Some file systems cannot fsync a directory (as for the log's own directory).
    const errno = errnoOf(err);
    if (errno !== 'EINVAL' && errno !== 'EISDIR') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/** The registry could not point an image at its log: the command stops before creating the log. */
export class RegistryError extends IoError {
  constructor(where: string, op: string, errno: string) {
    super(`the undo log registry (${where})`, op, undefined, errno, 'geomctl modified nothing; make it writable or set GEOMCTL_STATE_DIR to a writable directory, then run the command again');
    this.name = 'RegistryError';
  }
}

/** The registry in a directory of the file system (created, mode 0700, on first use). */
export function fileRegistry(dir: string): UndoRegistry {
  const pointer = (image: ProviderIdentity): string => nodePath.join(dir, identityFileName(image));
  return {
    record(images, log) {
      // What is being done, for the error: [operation, on what].
      let step: [string, string] = ['mkdir', dir];
      try {
        const created = fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        for (const image of images) {
          const target = pointer(image);
          step = ['symlink', target];
          // A pointer already there dangles: its transaction held this image's lock, which our caller
          // holds now. Replacing it is safe in two steps: until the log exists, no pointer is needed.
          fs.rmSync(target, { force: true });
          fs.symlinkSync(log, target);
        }
        step = ['fsync', dir];
        syncDir(dir);
        // A directory made just now must be durable in its parent too, up to the first that existed.
        if (created !== undefined) {
          for (let d = dir; d !== nodePath.dirname(created); d = nodePath.dirname(d)) syncDir(nodePath.dirname(d));
        }
      } catch (err) {
        throw new RegistryError(step[1], step[0], errnoOf(err));
      }
    },
    lookup(image) {
      try {
        return fs.readlinkSync(pointer(image));
      } catch {
        return undefined;
      }
    },
    forget(images, log) {
      for (const image of images) {
        const target = pointer(image);
        try {
          if (fs.readlinkSync(target) === log) fs.unlinkSync(target);
        } catch {
          // Gone already, or unreadable: a pointer left behind dangles, and lookups ignore it.
        }
      }
    },
  };
}
