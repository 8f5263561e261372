// "Read until full": readSync may return fewer bytes than asked (a pipe, a
// signal, a request past 2 GiB), so every reader that needs a whole buffer
// loops — here, once.

import { readSync } from 'node:fs';
import { errnoOf, IoError } from '../errors.js';
import { sleepSync } from './sleep.js';

/** fs.readSync refuses lengths of 2 GiB and more: longer reads go in pieces of this size. */
const MAX_PIECE = 1 << 30;

/**
 * Reads from `fd` into all of `target` — at `position` (pread), or with null
 * from the file's own position (stdin, a pipe) — until it is full or the input
 * ends; returns the bytes read. A non-blocking input with nothing yet
 * (EAGAIN) is waited out. A failed read is an IoError naming `name` and where.
 */
export function readFully(fd: number, target: Buffer, position: number | null, name: string): number {
  let done = 0;
  while (done < target.length) {
    let n: number;
    try {
      n = readSync(fd, target, done, Math.min(target.length - done, MAX_PIECE), position === null ? null : position + done);
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === 'EAGAIN') {
        sleepSync(10);
        continue;
      }
      throw new IoError(name, 'read', position === null ? undefined : position + done, errno);
    }
    if (n === 0) break;
    done += n;
  }
  return done;
}
