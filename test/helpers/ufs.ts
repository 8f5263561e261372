// UFS superblock facts for black-box tests, computed here without src/ (the
// test's own CRC-32C and field offsets, from formats.md "UFS superblock"), so
// that what geomctl writes when it marks a file system dirty can be checked
// independently.

export const SB_OFFSET = 65536; // a UFS2 superblock's place (SBLOCKSEARCH[0])
export const SB_SIZE = 8192;

/** struct fs members the journal class touches (formats.md), and fs_old_flags (tunefs -J on superblocks older than fs_flags). */
export const FS = { clean: 209, oldFlags: 211, sblockloc: 1000, size: 1080, ckhash: 1304, metackhash: 1308, flags: 1312, magic: 1372 } as const;
/** fs_flags bits: FS_GJOURNAL (tunefs -J), FS_METACKHASH (the kernel keeps check-hashes); fs_old_flags: FS_FLAGS_UPDATED. */
export const FS_GJOURNAL = 0x40;
export const FS_METACKHASH = 0x200;
export const FS_FLAGS_UPDATED = 0x80;
const FS_UFS2_MAGIC = 0x19540119;
const CK_SUPERBLOCK = 0x01;

/** Standard CRC-32C, bit by bit (init and final complement). */
function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

/** ffs_calc_sbhash: the register over fs_sbsize bytes with fs_ckhash zero, without the final complement. */
export function sbHash(block: Buffer): number {
  const sbsize = block.readInt32LE(104);
  const copy = Buffer.from(block.subarray(0, sbsize));
  copy.writeUInt32LE(0, FS.ckhash);
  return ~crc32c(copy) >>> 0;
}

/** A UFS2 superblock at SB_OFFSET by hand: a 1 MiB file system of 4 KiB fragments with a valid check-hash. */
export function handSuperblock(): Buffer {
  const sb = Buffer.alloc(SB_SIZE);
  for (let i = 0; i < 4096; i++) sb[i] = (i * 131 + 7) & 0xff; // content the hash must cover
  sb.writeInt32LE(32768, 48); // fs_bsize
  sb.writeInt32LE(4096, 52); // fs_fsize
  sb.writeInt32LE(3, 100); // fs_fsbtodb
  sb.writeInt32LE(4096, 104); // fs_sbsize
  sb.writeInt8(1, FS.clean);
  sb.writeBigInt64LE(BigInt(SB_OFFSET), FS.sblockloc);
  sb.writeBigInt64LE(256n, FS.size);
  sb.writeUInt32LE(CK_SUPERBLOCK, FS.metackhash);
  sb.writeInt32LE(0x10, FS.flags);
  sb.writeUInt32LE(FS_UFS2_MAGIC, FS.magic);
  sb.writeUInt32LE(sbHash(sb), FS.ckhash);
  return sb;
}

/** What g_journal_ufs_dirty makes of `block`: fs_clean 0, FS_UNCLEAN|FS_NEEDSFSCK, the check-hash redone when kept. */
export function dirtied(block: Buffer): Buffer {
  const out = Buffer.from(block);
  out.writeInt8(0, FS.clean);
  out.writeInt32LE(block.readInt32LE(FS.flags) | 0x01 | 0x04, FS.flags);
  if (block.readUInt32LE(FS.metackhash) & CK_SUPERBLOCK) out.writeUInt32LE(sbHash(out), FS.ckhash);
  return out;
}

/** Where ffs_sbget finds the superblock (SBLOCKSEARCH order; a UFS2 one only at its own fs_sblockloc), or -1. */
export function superblockOffset(img: Buffer): number {
  for (const off of [65536, 8192, 0, 262144]) {
    if (off + SB_SIZE > img.length) continue;
    const magic = img.readUInt32LE(off + FS.magic);
    if (magic === 0x011954) return off;
    if (magic === FS_UFS2_MAGIC && img.readBigInt64LE(off + FS.sblockloc) === BigInt(off)) return off;
  }
  return -1;
}

/** `block` made to keep a superblock check-hash (CK_SUPERBLOCK), with a valid one. */
export function withCheckHash(block: Buffer): Buffer {
  const out = Buffer.from(block);
  out.writeUInt32LE(out.readUInt32LE(FS.metackhash) | CK_SUPERBLOCK, FS.metackhash);
  out.writeUInt32LE(sbHash(out), FS.ckhash);
  return out;
}
