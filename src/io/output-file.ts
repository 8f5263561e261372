// Where read and export put a device's bytes: a file given with -O or the
// inherited stdout. Not an image — no engine, no undo — so it lives apart from
// the providers. Writes block until done: a reader on a pipe may be slow, and
// Node's stream would otherwise queue (or, with a reused buffer, corrupt) data.

import { closeSync, fstatSync, fsyncSync, ftruncateSync, lstatSync, openSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { GeomError, IoError, errnoOf } from '../errors.js';
import type { Provider } from '../provider/provider.js';
import { refuseOverwrite, type GeomLookup } from '../geom/owner.js';
import { sleepSync } from '../util/sleep.js';
import { sameFile } from '../util/identity.js';

/**
 * writeSync until all of `data` is written. A pipe that stdout shares with a
 * slow reader may be non-blocking: EAGAIN waits a moment and retries, so the
 * data never queues up in memory (Node's stream would buffer it all).
 */
export function writeFully(fd: number, data: Buffer, position: number | null): void {
  for (let done = 0; done < data.length; ) {
    try {
      done += writeSync(fd, data, done, data.length - done, position === null ? null : position + done);
    } catch (err) {
      if (errnoOf(err) !== 'EAGAIN') throw err;
      sleepSync(1);
    }
  }
}

/** Pieces for a pipe or a socket: a pipe holds 64 KiB, and larger writes to it measured slower. */
export const PIPE_PIECE = 128 * 1024;
/** Pieces for a file or a device (/dev/null): an eighth of the system calls, ~10% off a 1 GiB read (bench/README.md). */
export const FILE_PIECE = 1024 * 1024;

/** The size of the pieces to stream a device's bytes to descriptor `fd` in: PIPE_PIECE or FILE_PIECE. */
export function pieceSizeFor(fd: number): number {
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket() ? PIPE_PIECE : FILE_PIECE;
  } catch {
    // A closed descriptor: the first write will say so.
    return PIPE_PIECE;
  }
}

/**
 * Where read and export put the device's bytes (not an image: no engine, no
 * undo): a file created at `path`, written at positions, or an inherited
 * descriptor (stdout), written in sequence.
 */
export class OutputFile {
  private readonly fd: number;
  private readonly owned: boolean;
  readonly path: string;

  constructor(target: string | { fd: number; name: string }) {
    if (typeof target === 'string') {
      this.path = target;
      this.owned = true;
      try {
        this.fd = openSync(target, 'w');
      } catch (err) {
        // The path is always what the user gave with -O.
        throw new IoError(target, 'open', undefined, errnoOf(err), 'check the -O path');
      }
    } else {
      this.path = target.name;
      this.owned = false;
      this.fd = target.fd;
    }
  }

  private attempt(op: string, offset: number | undefined, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      throw new IoError(this.path, op, offset, errnoOf(err));
    }
  }

  /** Writes at `position` (a file) or, without one, where the descriptor is (stdout). */
  write(data: Buffer, position: number | null = null): void {
    this.attempt('write', position ?? undefined, () => writeFully(this.fd, data, position));
  }

  /** The size of the pieces to hand write() (pieceSizeFor). */
  pieceSize(): number {
    return pieceSizeFor(this.fd);
  }

  /** Whether the file is a regular one (export refuses devices and pipes: its holes need a file). */
  isRegularFile(): boolean {
    return fstatSync(this.fd).isFile();
  }

  /** Sets the size: extending leaves a hole, which is how export keeps unallocated chunks sparse. */
  truncate(size: number): void {
    this.attempt('truncate', size, () => {
      ftruncateSync(this.fd, size);
      if (fstatSync(this.fd).size !== size) throw Object.assign(new Error('EFBIG'), { code: 'EFBIG' });
    });
  }

  sync(): void {
    this.attempt('fsync', undefined, () => fsyncSync(this.fd));
  }

  close(): void {
    if (this.owned) closeSync(this.fd);
  }

  /**
   * After a failure: closes and removes the file this created, so that half
   * a result never looks like a whole one. Only a regular file still at its
   * path is removed (`-O /dev/null` stays); inherited descriptors are left
   * alone. Never throws: the failure that led here is what the user needs.
   */
  discard(): void {
    if (!this.owned) return;
    const quietly = (fn: () => void): void => {
      try {
        fn();
      } catch {
        // Already gone, or not ours to remove.
      }
    };
    let st: Stats | undefined;
    quietly(() => (st = fstatSync(this.fd)));
    quietly(() => closeSync(this.fd));
    quietly(() => {
      const at = lstatSync(this.path);
      if (st?.isFile() && sameFile(at, st)) unlinkSync(this.path);
    });
  }
}

/**
 * Refuses an output path that is one of the command's own images (same device
 * and inode, whatever the path says): opening it for writing would truncate
 * the image the data is being read from. `device` names what it belongs to.
 */
export function refuseImageAsOutput(path: string, images: readonly Provider[], device: string): void {
  let st: { dev: number; ino: number };
  try {
    st = statSync(path);
  } catch {
    return; // does not exist yet
  }
  const clash = images.find((p) => sameFile(p.identity, st));
  if (clash) throw new GeomError('REFUSED', `${path} is ${clash.path}, an image of ${device}: writing there would destroy it`, 'give another output file');
}

/**
 * Everything -O refuses before the file is opened (and so truncated): one of
 * the command's own images, always — the data would be read from what is
 * being destroyed, so -f cannot mean anything there — and, unless `force`,
 * an existing image that holds GEOM metadata of either class, named with its
 * geom and what it holds. A plain file, or one without metadata, is
 * overwritten as before.
 */
export function refuseOutput(path: string, images: readonly Provider[], device: string, opts: { force: boolean; lookup: GeomLookup }): void {
  refuseImageAsOutput(path, images, device);
  if (!opts.force) refuseOverwrite(path, opts.lookup);
}
