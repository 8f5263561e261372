// The UFS superblock helpers against real `makefs -t ffs` images (UFS1 and
// UFS2) and against hand-built superblocks, including one that carries a
// superblock check-hash (CK_SUPERBLOCK) whose expected value is computed here
// with a bitwise CRC-32C of the test's own.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tool } from '../helpers/tools.js';
import { ffsSuperblockHash, findUfsSuperblock, markUfsDirty, ufsUsesLastSector, type ReadFn } from '../../src/journal/ufs.js';

/** Standard CRC-32C, bit by bit (init and final complement), independent of src/. */
function crc32cStandard(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

function reader(image: Buffer): ReadFn {
  return (offset, length) => {
    if (offset < 0 || offset + length > image.length) throw new Error(`read out of bounds: ${offset}+${length}`);
    return image.subarray(offset, offset + length);
  };
}

/** A UFS2 superblock by hand: offsets from formats.md's list of struct fs members. */
function handSuperblock(o: { sblockloc: number; sbsize?: number; bsize?: number; fsize?: number; fsbtodb?: number; size?: bigint; metackhash?: number; flags?: number; ufs1?: boolean }): Buffer {
  const sb = Buffer.alloc(8192);
  for (let i = 0; i < (o.sbsize ?? 4096); i++) sb[i] = (i * 131 + 7) & 0xff; // content the hash must cover
  sb.writeInt32LE(o.bsize ?? 32768, 48);
  sb.writeInt32LE(o.fsize ?? 4096, 52);
  sb.writeInt32LE(o.fsbtodb ?? 3, 100);
  sb.writeInt32LE(o.sbsize ?? 4096, 104);
  sb.writeInt8(1, 209); // fs_clean
  sb.writeBigInt64LE(BigInt(o.sblockloc), 1000);
  if (o.ufs1) sb.writeInt32LE(Number(o.size ?? 1000n), 36);
  else sb.writeBigInt64LE(o.size ?? 1000n, 1080);
  sb.writeUInt32LE(0x12345678, 1304); // a stale fs_ckhash
  sb.writeUInt32LE(o.metackhash ?? 0, 1308);
  sb.writeInt32LE(o.flags ?? 0x10, 1312);
  sb.writeUInt32LE(o.ufs1 ? 0x011954 : 0x19540119, 1372);
  return sb;
}

describe('CRC-32C reference of this test', () => {
  it('gives the standard check value', () => {
    expect(crc32cStandard(Buffer.from('123456789'))).toBe(0xe3069283);
  });
});

describe('superblock search (hand-built)', () => {
  it('finds a UFS2 superblock at 65536 and prefers it to one at 8192', () => {
    const img = Buffer.alloc(1 << 20);
    handSuperblock({ sblockloc: 65536 }).copy(img, 65536);
    handSuperblock({ sblockloc: 8192, ufs1: true }).copy(img, 8192);
    const sb = findUfsSuperblock(reader(img), img.length);
    expect(sb).toMatchObject({ offset: 65536, ufs: 2, sbsize: 4096, bsize: 32768, fsize: 4096, fsbtodb: 3, size: 1000n, clean: 1, flags: 0x10 });
  });

  it('skips a UFS2 backup (fs_sblockloc elsewhere) and insane blocks', () => {
    const img = Buffer.alloc(1 << 20);
    handSuperblock({ sblockloc: 65536 }).copy(img, 8192); // a backup copy at 8192
    handSuperblock({ sblockloc: 0, fsize: 65536, bsize: 32768 }).copy(img, 0); // fsize > bsize
    handSuperblock({ sblockloc: 262144, bsize: 3000 }).copy(img, 262144); // bsize not a power of two
    expect(findUfsSuperblock(reader(img), img.length)).toBeUndefined();
    const big = Buffer.alloc(1 << 20);
    handSuperblock({ sblockloc: 0, sbsize: 8193 }).copy(big, 0);
    expect(findUfsSuperblock(reader(big), big.length)).toBeUndefined();
  });

  it('finds a UFS1 superblock at 0 and at 262144, without reading past a small image', () => {
    const small = Buffer.alloc(16384);
    handSuperblock({ sblockloc: 0, ufs1: true }).copy(small, 0);
    expect(findUfsSuperblock(reader(small), small.length)).toMatchObject({ offset: 0, ufs: 1, size: 1000n });
    const img = Buffer.alloc(262144 + 8192);
    handSuperblock({ sblockloc: 262144 }).copy(img, 262144);
    expect(findUfsSuperblock(reader(img), img.length)).toMatchObject({ offset: 262144, ufs: 2 });
    expect(findUfsSuperblock(reader(Buffer.alloc(4096)), 4096)).toBeUndefined();
  });

  it('reads whole sectors of a large-sector medium', () => {
    const img = Buffer.alloc(1 << 20);
    handSuperblock({ sblockloc: 65536 }).copy(img, 65536);
    const lengths: number[] = [];
    const sb = findUfsSuperblock((o, l) => {
      lengths.push(l);
      return reader(img)(o, l);
    }, img.length, 16384);
    expect(sb?.offset).toBe(65536);
    expect(lengths.every((l) => l === 16384)).toBe(true);
  });
});

describe('uses the last sector', () => {
  it('compares mediasize / 512 with fs_size << fs_fsbtodb', () => {
    const img = Buffer.alloc(1 << 20);
    handSuperblock({ sblockloc: 65536, size: 256n, fsbtodb: 3 }).copy(img, 65536); // 256 frags of 4 KiB = 1 MiB
    const sb = findUfsSuperblock(reader(img), img.length);
    expect(sb).toBeDefined();
    if (!sb) return;
    expect(ufsUsesLastSector(sb, 1 << 20)).toBe(true); // 2048 <= 2048
    expect(ufsUsesLastSector(sb, (1 << 20) + 512)).toBe(false); // 2049 > 2048
    expect(ufsUsesLastSector({ ...sb, fsbtodb: 200 }, 1 << 30)).toBe(true);
  });
});

describe('mark dirty', () => {
  it('clears fs_clean, sets FS_UNCLEAN|FS_NEEDSFSCK and recomputes fs_ckhash with CK_SUPERBLOCK', () => {
    const img = Buffer.alloc(1 << 20);
    handSuperblock({ sblockloc: 65536, metackhash: 0x1 | 0x8, flags: 0x10 }).copy(img, 65536);
    const sb = findUfsSuperblock(reader(img), img.length);
    if (!sb) throw new Error('no superblock');
    const w = markUfsDirty(sb, 512);
    expect(w?.offset).toBe(65536);
    const data = w?.data as Buffer;
    expect(data.length).toBe(8192);
    expect(data.readInt8(209)).toBe(0);
    expect(data.readInt32LE(1312)).toBe(0x10 | 0x01 | 0x04);
    // ffs_calc_sbhash: the register from 0xFFFFFFFF, no final complement = NOT of the standard CRC.
    const expected = Buffer.from(data.subarray(0, 4096));
    expected.writeUInt32LE(0, 1304);
    expect(data.readUInt32LE(1304)).toBe(~crc32cStandard(expected) >>> 0);
    expect(ffsSuperblockHash(data, 4096)).toBe(data.readUInt32LE(1304));
    // Only fs_clean, fs_flags and fs_ckhash changed.
    const changed = [...data].flatMap((b, i) => (b !== (sb.block[i] as number) ? [i] : []));
    expect(changed.every((i) => i === 209 || (i >= 1304 && i < 1308) || (i >= 1312 && i < 1316))).toBe(true);
    expect(sb.block.readInt8(209)).toBe(1); // the superblock read is left alone
  });

  it('keeps fs_ckhash without CK_SUPERBLOCK and does nothing for sectors over 8192', () => {
    const img = Buffer.alloc(1 << 20);
    handSuperblock({ sblockloc: 65536, metackhash: 0x8 }).copy(img, 65536);
    const sb = findUfsSuperblock(reader(img), img.length);
    if (!sb) throw new Error('no superblock');
    expect(markUfsDirty(sb, 4096)?.data.readUInt32LE(1304)).toBe(0x12345678);
    expect(markUfsDirty(sb, 16384)).toBeUndefined();
  });
});

const makefs = tool('makefs');
const haveMakefs = makefs !== undefined;

describe.skipIf(!haveMakefs)('makefs -t ffs images', () => {
  const dir = mkdtempSync(join(tmpdir(), 'geomctl-ufs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'hello.txt'), 'hello\n');

  for (const version of [1, 2] as const) {
    it(`finds UFS${version}, tells whether it uses the last sector, and marks it dirty`, () => {
      const path = join(dir, `ufs${version}.img`);
      const r = spawnSync(makefs!, ['-t', 'ffs', '-s', '4m', '-o', `version=${version}`, path, join(dir, 'src')], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const img = readFileSync(path);
      const sb = findUfsSuperblock(reader(img), img.length);
      expect(sb?.ufs).toBe(version);
      if (!sb) return;
      expect(sb.clean).toBe(1);
      expect(ufsUsesLastSector(sb, img.length)).toBe(true); // the file system fills the image
      truncateSync(path, img.length + 65536);
      expect(ufsUsesLastSector(sb, img.length + 65536)).toBe(false);

      const w = markUfsDirty(sb, 512);
      if (!w) throw new Error('not marked');
      w.data.copy(img, w.offset);
      const again = findUfsSuperblock(reader(img), img.length);
      expect(again).toMatchObject({ offset: sb.offset, clean: 0, flags: sb.flags | 0x05, ckhash: sb.ckhash });
    });
  }
});
