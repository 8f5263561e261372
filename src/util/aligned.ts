// Page-aligned I/O buffers. The kernel copies into a page-aligned buffer much
// faster than into a misaligned one: reading 512 MiB from the page cache with
// 1 MiB buffers took 287 ms as Node allocated them and 88 ms page-aligned
// (here, 2026-11-22; bench/README.md has the same effect on 1 GiB).
//
// JavaScript cannot see a buffer's address. Large buffers come from glibc's
// mmap'd chunks, whose user pointer sits 16 bytes past a page boundary (the
// chunk header), so skipping 4080 bytes lands on the next page. Should another
// allocator place it elsewhere, the buffer is merely misaligned: slower, never
// wrong.

const PAGE = 4096;
const GLIBC_MMAP_CHUNK_HEADER = 16;
const SKIP = PAGE - GLIBC_MMAP_CHUNK_HEADER;

/** An uninitialised buffer of `size` bytes, page-aligned where glibc allocates it. */
export function alignedBuffer(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size + SKIP).subarray(SKIP, SKIP + size);
}
