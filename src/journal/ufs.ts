// Just enough of UFS (FreeBSD's sys/ufs/ffs/fs.h, struct fs) for gjournal:
// finding a superblock the way ffs_sbget's search does (label refuses to
// overwrite a file system), the "uses the last sector" rule of gjournal
// label's two-image case (sbin/geom/class/journal/geom_journal_ufs.c),
// marking a file system dirty as the kernel's g_journal_ufs_dirty does when it
// finds a journal broken (formats.md, "UFS superblock"), and setting or
// clearing the FS_GJOURNAL flag as `tunefs -J enable|disable` does.
// Everything works over a `read(offset, length)` function, so it runs on an
// engine, a provider or a journaled provider.

import { crc32cUpdate } from '../util/crc32c.js';
import { defineStruct } from '../geom/struct.js';

export type ReadFn = (offset: number, length: number) => Buffer;

/** SBLOCKSIZE: a superblock is read and written as one 8192-byte block. */
export const SBLOCKSIZE = 8192;
/** SBLOCKSEARCH: where ffs_sbget looks, in this order (UFS2, UFS1, floppy, piggy). */
export const SBLOCKSEARCH: readonly number[] = [65536, 8192, 0, 262144];
export const FS_UFS1_MAGIC = 0x011954;
export const FS_UFS2_MAGIC = 0x19540119;
export const FS_UNCLEAN = 0x01;
export const FS_NEEDSFSCK = 0x04;
/** fs_flags: the file system is gjournaled (newfs -J, tunefs -J enable). */
export const FS_GJOURNAL = 0x40;
/** fs_old_flags: fs_flags has moved to its 32-bit place (older superblocks keep them in fs_old_flags). */
export const FS_FLAGS_UPDATED = 0x80;
/** fs_flags: the last kernel to write the superblock kept metadata check-hashes. */
export const FS_METACKHASH = 0x200;
/** fs_metackhash bit: the superblock carries a check-hash in fs_ckhash. */
export const CK_SUPERBLOCK = 0x01;
/** The struct fs members geomctl uses (sizeof(struct fs) is 1376: a superblock claiming less is not one). */
const FS = defineStruct('struct fs', 1376, {
  /** UFS1's fs_size. */
  oldSize: { kind: 'i32le', offset: 36, c: 'fs_old_size' },
  bsize: { kind: 'i32le', offset: 48, c: 'fs_bsize' },
  fsize: { kind: 'i32le', offset: 52, c: 'fs_fsize' },
  fsbtodb: { kind: 'i32le', offset: 100, c: 'fs_fsbtodb' },
  sbsize: { kind: 'i32le', offset: 104, c: 'fs_sbsize' },
  clean: { kind: 'i8', offset: 209, c: 'fs_clean' },
  oldFlags: { kind: 'u8', offset: 211, c: 'fs_old_flags' },
  /** UFS2 only. */
  sblockloc: { kind: 'i64le', offset: 1000, c: 'fs_sblockloc' },
  /** UFS2 only. */
  size: { kind: 'i64le', offset: 1080, c: 'fs_size' },
  ckhash: { kind: 'u32le', offset: 1304, c: 'fs_ckhash' },
  metackhash: { kind: 'u32le', offset: 1308, c: 'fs_metackhash' },
  flags: { kind: 'i32le', offset: 1312, c: 'fs_flags' },
  magic: { kind: 'u32le', offset: 1372, c: 'fs_magic' },
});
const { get, set } = FS;

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
  /** fs_old_flags (u8): FS_FLAGS_UPDATED, or the flags themselves on superblocks older than fs_flags. */
  oldFlags: number;
  ckhash: number;
  metackhash: number;
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** The UFS version a block's fs_magic names, sane or not. */
export function ufsMagic(block: Buffer): 1 | 2 | undefined {
  const magic = get.magic(block, 0);
  return magic === FS_UFS1_MAGIC ? 1 : magic === FS_UFS2_MAGIC ? 2 : undefined;
}

/** ffs_sbget's sanity checks on one candidate block at `offset`. */
function parse(block: Buffer, offset: number): UfsSuperblock | undefined {
  const magic = get.magic(block, 0);
  if (magic !== FS_UFS1_MAGIC && magic !== FS_UFS2_MAGIC) return undefined;
  const ufs = magic === FS_UFS1_MAGIC ? 1 : 2;
  // A UFS2 superblock away from its own fs_sblockloc is a backup copy: skip it.
  if (ufs === 2 && get.sblockloc(block, 0) !== BigInt(offset)) return undefined;
  const sbsize = get.sbsize(block, 0);
  const bsize = get.bsize(block, 0);
  const fsize = get.fsize(block, 0);
  if (sbsize < FS.size || sbsize > SBLOCKSIZE) return undefined;
  if (!isPowerOfTwo(bsize) || !isPowerOfTwo(fsize) || fsize > bsize) return undefined;
  return {
    offset,
    ufs,
    block,
    sbsize,
    bsize,
    fsize,
    fsbtodb: get.fsbtodb(block, 0),
    size: ufs === 1 ? BigInt(get.oldSize(block, 0)) : get.size(block, 0),
    clean: get.clean(block, 0),
    flags: get.flags(block, 0),
    oldFlags: get.oldFlags(block, 0),
    ckhash: get.ckhash(block, 0),
    metackhash: get.metackhash(block, 0),
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
 * The bytes the file system spans, fsbtodb(fs, fs_size) sectors of DEV_BSIZE;
 * undefined for an fs_fsbtodb no real file system has.
 */
export function ufsByteSize(sb: UfsSuperblock): bigint | undefined {
  if (sb.fsbtodb < 0 || sb.fsbtodb > 63) return undefined;
  return (sb.size << BigInt(sb.fsbtodb)) * 512n;
}

/**
 * ffs_calc_sbhash: CRC-32C from 0xFFFFFFFF over the first `sbsize` bytes with
 * fs_ckhash taken as zero, without the final complement.
 */
export function ffsSuperblockHash(block: Buffer, sbsize: number): number {
  const copy = Buffer.from(block.subarray(0, sbsize));
  set.ckhash(copy, 0, 0);
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
  set.clean(data, 0, 0);
  set.flags(data, 0, sb.flags | FS_UNCLEAN | FS_NEEDSFSCK);
  if (sb.metackhash & CK_SUPERBLOCK) set.ckhash(data, 0, ffsSuperblockHash(data, sb.sbsize));
  return { offset: sb.offset, data };
}

/**
 * Whether the superblock passes the check-hash test of FreeBSD's readsuper
 * (ffs_subr.c): a file system whose fs_flags lack FS_METACKHASH was last run
 * by a kernel without check-hashes, and its fs_ckhash is not checked. Returns
 * the recorded and computed hashes when the test fails.
 */
export function superblockHashMismatch(sb: UfsSuperblock): { recorded: number; computed: number } | undefined {
  if (!(sb.flags & FS_METACKHASH) || !(sb.metackhash & CK_SUPERBLOCK)) return undefined;
  const computed = ffsSuperblockHash(sb.block, sb.sbsize);
  return computed === sb.ckhash ? undefined : { recorded: sb.ckhash, computed };
}

/** The flags as a kernel mounting the file system takes them: fs_old_flags until FS_FLAGS_UPDATED says they moved. */
export function effectiveUfsFlags(sb: UfsSuperblock): number {
  return sb.oldFlags & FS_FLAGS_UPDATED ? sb.flags : sb.oldFlags;
}

/**
 * tunefs's change of one fs_flags bit (sbin/tunefs/tunefs.c, -J): the bit set
 * or cleared, and fs_ckhash recomputed when the file system keeps a
 * superblock check-hash (ffs_sbput's ffs_calc_sbhash, as markUfsDirty). A
 * superblock older than fs_flags (no FS_FLAGS_UPDATED) gets the bit in
 * fs_old_flags too, which is where a kernel mounting it reads its flags.
 * Returns the first fs_sbsize bytes, rounded up to whole sectors (a divisor
 * of SBLOCKSIZE), and where they go. FreeBSD's sbput also stamps fs_time; geomctl leaves it, so that an
 * image built twice comes out the same.
 */
export function setUfsFlag(sb: UfsSuperblock, flag: number, on: boolean, sectorSize: number): { offset: number; data: Buffer; ckhash: number } {
  const data = Buffer.from(sb.block.subarray(0, Math.ceil(sb.sbsize / sectorSize) * sectorSize));
  set.flags(data, 0, on ? sb.flags | flag : sb.flags & ~flag);
  if (!(sb.oldFlags & FS_FLAGS_UPDATED)) set.oldFlags(data, 0, on ? sb.oldFlags | flag : sb.oldFlags & ~flag & 0xff);
  if (sb.metackhash & CK_SUPERBLOCK) set.ckhash(data, 0, ffsSuperblockHash(data, sb.sbsize));
  return { offset: sb.offset, data, ckhash: get.ckhash(data, 0) };
}
