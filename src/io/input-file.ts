// The input of a write verb: the -i file or stdin. Writes must know their
// length before they change anything (past the end is an error first, and a
// virstor write counts its chunks), so input that cannot be read at positions
// (a pipe, a FIFO, a terminal) is spooled to a temporary file first — one
// without a name (openSpoolFile), so that nothing is left behind however
// the command ends, and never longer than what the device can take, so that
// an endless pipe cannot fill the disk.

import { closeSync, constants, fstatSync, openSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeomError, IoError, errnoOf } from '../errors.js';
import { alignedBuffer } from '../util/aligned.js';
import type { Provider } from '../provider/provider.js';
import { byteCount } from '../util/size.js';
import { sleepSync } from '../util/sleep.js';
import { sameFile } from '../util/identity.js';

export interface Input {
  /** A descriptor of a regular file, positioned at its start. */
  readonly fd: number;
  readonly size: number;
  /** The -i path, or "stdin", for messages. */
  readonly name: string;
  close(): void;
}

const SPOOL_BLOCK = 1 << 20;

/**
 * Checks -i without opening it (opening a FIFO blocks until a writer comes),
 * so that the images can be validated before anything waits on the input.
 */
export function checkInputPath(path: string | undefined): void {
  if (path === undefined) return;
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT') throw new GeomError('NOT_FOUND', `${path}: no such file`, 'check the -i path');
    throw new IoError(path, 'stat', undefined, errno, 'check the -i path');
  }
  if (st.isDirectory()) throw new GeomError('NOT_IMAGE', `${path} is a directory, not an input file`, 'give -i a file, or pipe the data to stdin');
}

/**
 * Opens the input as a regular file of known size, spooling it when needed.
 * `limit` is how many bytes the device can take from the write's offset:
 * a longer input is refused before anything is written. So is an input that
 * is one of `written`, the images the write changes (same device and inode,
 * whatever path or redirection reaches it): it would be read while it is
 * being written, and the device would get neither its old nor its new bytes.
 */
export function openInput(path: string | undefined, limit: number, device: string, written: readonly Provider[]): Input {
  checkInputPath(path);
  const name = path ?? 'stdin';
  let fd = 0;
  if (path !== undefined) {
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw new IoError(path, 'open', undefined, errnoOf(err), 'check the -i path');
    }
  }
  const closeInput = (): void => {
    if (path !== undefined) closeSync(fd);
  };
  const st = fstatSync(fd);
  const clash = written.find((p) => sameFile(p.identity, st));
  if (clash) {
    closeInput();
    const given = path === undefined ? name : `-i ${path}`;
    throw new GeomError('REFUSED', `${given} is ${clash.path}, an image of ${device} that this write changes`, 'copy it and give -i the copy');
  }
  if (st.isFile()) return { fd, size: st.size, name, close: closeInput };
  try {
    return spool(fd, name, limit, device);
  } finally {
    closeInput();
  }
}

function tooLong(name: string, limit: number, device: string): GeomError {
  if (limit === 0) return new GeomError('REFUSED', `-o is at the end of ${device}: there is no room for ${name}; nothing was written`, 'give a smaller offset');
  return new GeomError('REFUSED', `${name} is longer than the ${byteCount(limit)} ${device} can take from the offset given; nothing was written`, 'give a smaller input or offset');
}

/**
 * Linux's O_TMPFILE (asm-generic's __O_TMPFILE | O_DIRECTORY): a file in a
 * directory that has no name from the start. Node does not export it.
 */
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;

/**
 * A temporary file nobody else can reach and nothing leaves behind: nameless
 * (O_TMPFILE) where the platform and file system allow, else created and
 * unlinked at once — a kill between the two would leave the file, which
 * O_TMPFILE rules out.
 */
function openSpoolFile(): number {
  const dir = tmpdir();
  if (process.platform === 'linux') {
    try {
      return openSync(dir, O_TMPFILE | constants.O_RDWR, 0o600);
    } catch (err) {
      // A file system without O_TMPFILE (EOPNOTSUPP, EISDIR on old kernels) takes the named way.
      if (!['EOPNOTSUPP', 'EISDIR', 'EINVAL'].includes(errnoOf(err))) throw new IoError(`a spool file in ${dir}`, 'create', undefined, errnoOf(err), 'set TMPDIR to a writable directory with room for the input');
    }
  }
  const path = join(dir, `geomctl-spool-${randomBytes(6).toString('hex')}`);
  try {
    const fd = openSync(path, 'wx+', 0o600);
    unlinkSync(path);
    return fd;
  } catch (err) {
    throw new IoError(path, 'create', undefined, errnoOf(err), 'set TMPDIR to a writable directory with room for the input');
  }
}

/** Copies a stream into a nameless temporary file, at most `limit` bytes. */
function spool(from: number, name: string, limit: number, device: string): Input {
  const out = openSpoolFile();
  const buf = alignedBuffer(SPOOL_BLOCK);
  let size = 0;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(from, buf, 0, buf.length, null);
      } catch (err) {
        const errno = errnoOf(err);
        // A non-blocking stdin with nothing yet: wait a little and try again.
        if (errno === 'EAGAIN') {
          sleepSync(10);
          continue;
        }
        if (errno === 'EOF') break;
        throw new IoError(name, 'read', size, errno);
      }
      if (n === 0) break;
      if (size + n > limit) throw tooLong(name, limit, device);
      try {
        writeSync(out, buf, 0, n, size);
      } catch (err) {
        throw new IoError(`the spool file for ${name} in ${tmpdir()}`, 'write', size, errnoOf(err), 'set TMPDIR to a directory with room for the input, or give -i a file');
      }
      size += n;
    }
  } catch (err) {
    closeSync(out);
    throw err;
  }
  return { fd: out, size, name, close: () => closeSync(out) };
}
