// Just enough of UFS (FreeBSD's sys/ufs/ffs/fs.h, struct fs) for gjournal:
// finding a superblock the way ffs_sbget's search does (label refuses to
// overwrite a file system), the "uses the last sector" rule of gjournal
// label's two-image case (sbin/geom/class/journal/geom_journal_ufs.c), and
// marking a file system dirty as the kernel's g_journal_ufs_dirty does when it
// finds a journal broken (formats.md, "UFS superblock"). Everything works over
// a `read(offset, length)` function, so it runs on an engine or a provider.

import { crc32cUpdate } from './crc32c.js';

export type ReadFn = (offset: number, length: number) => Buffer;

/** SBLOCKSIZE: a superblock is read and written as one 8192-byte block. */
export const SBLOCKSIZE = 8192;
/** SBLOCKSEARCH: where ffs_sbget looks, in this order (UFS2, UFS1, floppy, piggy). */
export const SBLOCKSEARCH: readonly number[] = [65536, 8192, 0, 262144];
export const FS_UFS1_MAGIC = 0x011954;
export const FS_UFS2_MAGIC = 0x19540119;
export const FS_UNCLEAN = 0x01;
export const FS_NEEDSFSCK = 0x04;
/** fs_metackhash bit: the superblock carries a check-hash in fs_ckhash. */
export const CK_SUPERBLOCK = 0x01;
/** sizeof(struct fs): a superblock claiming less is not one. */
const SIZEOF_STRUCT_FS = 1376;

/** The struct fs members geomctl uses, by byte offset. */
const FS = {
  oldSize: 36, // fs_old_size, i32 (UFS1's fs_size)
  bsize: 48, // fs_bsize, i32
  fsize: 52, // fs_fsize, i32
  fsbtodb: 100, // fs_fsbtodb, i32
  sbsize: 104, // fs_sbsize, i32
  clean: 209, // fs_clean, i8
  sblockloc: 1000, // fs_sblockloc, i64 (UFS2)
  size: 1080, // fs_size, i64 (UFS2)
  ckhash: 1304, // fs_ckhash, u32
  metackhash: 1308, // fs_metackhash, u32
  flags: 1312, // fs_flags, i32
  magic: 1372, // fs_magic, i32
} as const;

export interface UfsSuperblock {
  /** The byte offset it was found at (one of SBLOCKSEARCH). */
  offset: number;
  ufs: 1 | 2;
  /** The SBLOCKSIZE bytes as read. */
  block: Buffer;
  sbsize: number;
  bsize: number;
  fsize: number;
  fsbtodb: number;
  /** fs_size in fragments (fs_old_size for UFS1). */
  size: bigint;
  clean: number;
  flags: number;
  ckhash: number;
  metackhash: number;
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** ffs_sbget's sanity checks on one candidate block at `offset`. */
function parse(block: Buffer, offset: number): UfsSuperblock | undefined {
  const magic = block.readUInt32LE(FS.magic);
  if (magic !== FS_UFS1_MAGIC && magic !== FS_UFS2_MAGIC) return undefined;
  const ufs = magic === FS_UFS1_MAGIC ? 1 : 2;
  // A UFS2 superblock away from its own fs_sblockloc is a backup copy: skip it.
  if (ufs === 2 && block.readBigInt64LE(FS.sblockloc) !== BigInt(offset)) return undefined;
  const sbsize = block.readInt32LE(FS.sbsize);
  const bsize = block.readInt32LE(FS.bsize);
  const fsize = block.readInt32LE(FS.fsize);
  if (sbsize < SIZEOF_STRUCT_FS || sbsize > SBLOCKSIZE) return undefined;
  if (!isPowerOfTwo(bsize) || !isPowerOfTwo(fsize) || fsize > bsize) return undefined;
  return {
    offset,
    ufs,
    block,
    sbsize,
    bsize,
    fsize,
    fsbtodb: block.readInt32LE(FS.fsbtodb),
    size: ufs === 1 ? BigInt(block.readInt32LE(FS.oldSize)) : block.readBigInt64LE(FS.size),
    clean: block.readInt8(FS.clean),
    flags: block.readInt32LE(FS.flags),
    ckhash: block.readUInt32LE(FS.ckhash),
    metackhash: block.readUInt32LE(FS.metackhash),
  };
}

/**
 * The file system's superblock, searched as ffs_sbget does: the first block
 * at SBLOCKSEARCH offsets that is a sane UFS1 or UFS2 superblock. Offsets not
 * aligned to `sectorSize`, or whose block would run past `mediaSize`, are
 * skipped. Read errors propagate.
 */
export function findUfsSuperblock(read: ReadFn, mediaSize: number, sectorSize = 512): UfsSuperblock | undefined {
  const length = Math.ceil(SBLOCKSIZE / sectorSize) * sectorSize;
  for (const offset of SBLOCKSEARCH) {
    if (offset % sectorSize !== 0 || offset + length > mediaSize) continue;
    const sb = parse(Buffer.from(read(offset, length).subarray(0, SBLOCKSIZE)), offset);
    if (sb) return sb;
  }
  return undefined;
}

/**
 * g_journal_ufs_using_last_sector: the file system reaches the provider's
 * last sector (`mediasize / DEV_BSIZE <= fsbtodb(fs, fs_size)`). An fs_fsbtodb
 * no real file system has counts as "yes" — the safe answer for label.
 */
export function ufsUsesLastSector(sb: UfsSuperblock, mediaSize: number): boolean {
  if (sb.fsbtodb < 0 || sb.fsbtodb > 63) return true;
  return BigInt(mediaSize) / 512n <= sb.size << BigInt(sb.fsbtodb);
}

/**
 * ffs_calc_sbhash: CRC-32C from 0xFFFFFFFF over the first `sbsize` bytes with
 * fs_ckhash taken as zero, without the final complement.
 */
export function ffsSuperblockHash(block: Buffer, sbsize: number): number {
  const copy = Buffer.from(block.subarray(0, sbsize));
  copy.writeUInt32LE(0, FS.ckhash);
  return crc32cUpdate(0xffffffff, copy);
}

/**
 * g_journal_ufs_dirty for the superblock found: fs_clean = 0, FS_UNCLEAN |
 * FS_NEEDSFSCK in fs_flags, fs_ckhash recomputed when the file system keeps a
 * superblock check-hash. Returns the block to write back and where; undefined
 * when SBLOCKSIZE is not a multiple of the sector size (the kernel skips those).
 */
export function markUfsDirty(sb: UfsSuperblock, sectorSize: number): { offset: number; data: Buffer } | undefined {
  if (SBLOCKSIZE % sectorSize !== 0) return undefined;
  const data = Buffer.from(sb.block);
  data.writeInt8(0, FS.clean);
  data.writeInt32LE(sb.flags | FS_UNCLEAN | FS_NEEDSFSCK, FS.flags);
  if (sb.metackhash & CK_SUPERBLOCK) data.writeUInt32LE(ffsSuperblockHash(data, sb.sbsize), FS.ckhash);
  return { offset: sb.offset, data };
}
