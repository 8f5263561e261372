// The one range check every provider makes before touching its medium: GEOM's
// g_io_check refuses requests outside the provider, and so do we, so that a
// corrupt offset in metadata can never make geomctl write (or extend a sparse
// file) outside an image.

import { IoError } from '../errors.js';

export type IoOp = 'read' | 'write';

/** Throws IoError unless [offset, offset + length) lies inside a provider of `size` bytes. */
export function checkBounds(path: string, op: IoOp, offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new IoError(path, op, offset, 'invalid offset');
  }
  if (!Number.isSafeInteger(length) || length < 0 || offset + length > size) {
    throw new IoError(path, op, offset, `${length} bytes would pass the end of the image (${size} bytes)`);
  }
}
