// The range `journal write` may write (journal.md, "write"): checked with the
// class's own words before the input is opened and again once its size is
// known; the bytes then go through the provider (src/io/transfer.ts).

import { GeomError, UsageError } from '../errors.js';
import type { JournalDevice } from './device.js';
import { byteCount } from '../util/size.js';

/**
 * Checks that `length` bytes at `offset` fit in the journaled provider and
 * that the offset is a sector multiple (journal.md, "write").
 */
export function checkWriteRange(dev: JournalDevice, offset: number, length: number | undefined): void {
  if (offset % dev.sectorSize !== 0) throw new UsageError(`-o ${offset} is not a multiple of the ${dev.sectorSize}-byte sectors of ${dev.dataPath}.journal`, `use a multiple of ${dev.sectorSize}`);
  if (offset > dev.dataSize) throw new GeomError('REFUSED', `-o ${offset} is past the end of ${dev.dataPath}.journal (${dev.dataSize} bytes)`, `use an offset of at most ${dev.dataSize}`);
  if (length !== undefined && offset + length > dev.dataSize) {
    throw new GeomError('REFUSED', `writing ${byteCount(length)} at ${offset} passes the end of ${dev.dataPath}.journal (${dev.dataSize} bytes)`, 'give a smaller input or offset');
  }
}
