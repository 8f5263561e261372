// Whether a buffer holds only zero bytes: virstor's --sparse, a fresh chunk's
// cleaning and the engine's undo records (an all-zero old range is recorded
// without its bytes) ask it of buffers up to megabytes long.

/** Compared this many bytes at a time, with a native compare against a zero block. */
const STRIDE = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(STRIDE);

export function isZero(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += STRIDE) {
    const n = Math.min(STRIDE, buf.length - off);
    if (!buf.subarray(off, off + n).equals(ZERO_BLOCK.subarray(0, n))) return false;
  }
  return true;
}
