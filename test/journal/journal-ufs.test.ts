// The journal class on a real UFS made by `makefs -t ffs` (Debian package
// makefs), black-box through bin/geomctl: label refuses to destroy the file
// system without -f; the UFS written through the journal, synced, read back
// and exported is byte for byte the makefs image; a damaged journal (checksum
// mismatch) and a broken one (no finished journal) are repaired as the kernel
// does, marking the UFS dirty — fs_clean, fs_flags and, when the file system
// keeps one, the superblock check-hash, all checked against the test's own
// computation (test/helpers/ufs.ts, formats.md "UFS superblock").

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';
import { tool } from '../helpers/tools.js';
import { dirtied, FS, SB_SIZE, sbHash, superblockOffset, withCheckHash } from '../helpers/ufs.js';
import { GJ_FLAG_CLEAN, kRandom, kRandomBytes, kReadMetadata, kSync } from '../model/journal-kernel.js';

const M = 1024 * 1024;
const K128 = 128 * 1024;

/** makefs on PATH or where Debian installs it; missing, the tests skip (and fail under CI=true). */
const makefs = tool('makefs');

const s = scratch('geomctl-jufs-');
afterAll(() => s.cleanup());

function run(args: string[]) {
  const r = geomctl(args, { cwd: s.dir });
  expect(r.stderr).not.toMatch(/\n\s+at .*:\d+/);
  return r;
}

function ok(args: string[]) {
  const r = run(args);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

/** A 4 MiB UFS2 image with a few files, made by makefs. */
function makeUfs(): Buffer {
  const tree = s.path('tree');
  mkdirSync(tree);
  writeFileSync(join(tree, 'README'), 'journaled by geomctl\n');
  writeFileSync(join(tree, 'random.bin'), kRandomBytes(kRandom(7), 600 * 1024));
  const r = spawnSync(makefs as string, ['-t', 'ffs', '-o', 'version=2', '-s', '4m', s.path('ufs.img'), tree], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(s.path('ufs.img'));
}

describe.skipIf(!makefs)(`journal on a real UFS (makefs -t ffs)${makefs ? '' : ' — SKIPPED: makefs is not installed'}`, () => {
  let ufs: Buffer;
  let sbOff: number;

  it('makefs made a clean UFS2 whose superblock the test finds', () => {
    ufs = makeUfs();
    sbOff = superblockOffset(ufs);
    expect(sbOff).toBeGreaterThanOrEqual(0);
    expect(ufs.readUInt32LE(sbOff + FS.magic)).toBe(0x19540119);
    expect(ufs.readInt8(sbOff + FS.clean)).toBe(1);
  });

  it('label refuses a data image holding the UFS without -f, changing nothing; -f labels', () => {
    // One image: any file system on it.
    sparseImage(s.path('one.img'), 105 * M, ufs);
    const before = sha256(s.path('one.img'));
    let r = run(['journal', 'label', '-s', '100M', 'one.img']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('geomctl: File system exists on one.img and this operation would destroy it; use -f if you really want to do it\n');
    expect(sha256(s.path('one.img'))).toBe(before);
    ok(['journal', 'label', '-f', '-s', '100M', 'one.img']);
    expect(readFileSync(s.path('one.img')).subarray(0, ufs.length).equals(ufs)).toBe(true); // only the last sector changed

    // Two images: only a file system that reaches the data image's last sector.
    writeFileSync(s.path('full.img'), ufs);
    sparseImage(s.path('fj.img'), 6 * M);
    const both = [sha256(s.path('full.img')), sha256(s.path('fj.img'))];
    r = run(['--maxphys', '128k', 'journal', 'label', 'full.img', 'fj.img']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('geomctl: File system on full.img is using the last sector and this operation is going to overwrite it; use -f if you really want to do it\n');
    expect([sha256(s.path('full.img')), sha256(s.path('fj.img'))]).toEqual(both);
    ok(['--maxphys', '128k', 'journal', 'label', '-f', 'full.img', 'fj.img']);
    sparseImage(s.path('roomy.img'), ufs.length + K128, ufs);
    sparseImage(s.path('rj.img'), 6 * M);
    ok(['--maxphys', '128k', 'journal', 'label', 'roomy.img', 'rj.img']);
  });

  it('the UFS written through the journal, synced, read back and exported is the makefs image', () => {
    // The journaled provider is exactly as large as the UFS.
    sparseImage(s.path('d.img'), ufs.length + 512);
    sparseImage(s.path('j.img'), 6 * M);
    ok(['--maxphys', '128k', 'journal', 'label', '-c', 'd.img', 'j.img']);
    ok(['journal', 'write', '-i', 'ufs.img', 'd.img', 'j.img']);
    ok(['journal', 'sync', 'd.img', 'j.img']);
    expect(readFileSync(s.path('d.img')).subarray(0, ufs.length).equals(ufs)).toBe(true);
    ok(['journal', 'read', '-O', 'back.img', 'd.img', 'j.img']);
    ok(['journal', 'export', '-O', 'export.img', 'd.img', 'j.img']);
    const want = sha256(s.path('ufs.img'));
    expect(sha256(s.path('back.img'))).toBe(want);
    expect(sha256(s.path('export.img'))).toBe(want);
  });

  /** D's data area: the journaled provider once CLEAN. */
  const dataArea = (): Buffer => readFileSync(s.path('d.img')).subarray(0, ufs.length);
  /** The first finished journal of the dirty device: its header's offset in J. */
  const firstJournal = (): { header: number; terminator: number } => {
    const walk = kSync({ d: readFileSync(s.path('d.img')), j: readFileSync(s.path('j.img')), sectorSize: 512 }, { maxphys: K128 });
    expect(walk.found).toBe(1);
    return { header: walk.headers[0]?.offset as number, terminator: walk.headers[1]?.offset as number };
  };

  it('a checksum mismatch: sync refuses; sync -f drops that journal and marks the UFS dirty', () => {
    const before = dataArea();
    writeFileSync(s.path('patch.bin'), kRandomBytes(kRandom(8), 64 * 1024));
    ok(['journal', 'write', '-o', '1M', '-i', 'patch.bin', 'd.img', 'j.img']);
    // One byte of the first record's data (after the journal header and the record header).
    const { header } = firstJournal();
    const j = readFileSync(s.path('j.img'));
    j[header + 1024 + 100] ^= 0x40;
    writeFileSync(s.path('j.img'), j);
    let r = run(['journal', 'sync', 'd.img', 'j.img']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: journal on d\.img is damaged: .*; 'geomctl journal scan d\.img' shows what is there; -f replays the journals before it and marks the UFS dirty, as FreeBSD does on attach\n$/);
    expect(dataArea().equals(before)).toBe(true);
    r = ok(['journal', 'sync', '-f', 'd.img', 'j.img']);
    expect(r.stderr).toMatch(/UFS on it is marked dirty: run fsck/);
    // Nothing of the damaged journal reached D; the superblock is marked dirty, nothing else changed.
    const sb = before.subarray(sbOff, sbOff + SB_SIZE);
    expect(sb.readUInt32LE(FS.metackhash) & 1).toBe(0); // makefs keeps no check-hash: fs_ckhash stays
    const want = Buffer.from(before);
    dirtied(sb).copy(want, sbOff);
    const after = dataArea();
    expect(after.readInt8(sbOff + FS.clean)).toBe(0);
    expect(after.readInt32LE(sbOff + FS.flags)).toBe(sb.readInt32LE(FS.flags) | 0x05);
    expect(after.readUInt32LE(sbOff + FS.ckhash)).toBe(sb.readUInt32LE(FS.ckhash));
    expect(after.equals(want)).toBe(true);
    expect(kReadMetadata(readFileSync(s.path('d.img')), 512).flags & GJ_FLAG_CLEAN).toBe(GJ_FLAG_CLEAN);
  });

  it('a broken journal on a UFS that keeps a check-hash: check -y marks it dirty and recomputes fs_ckhash', () => {
    // Give the file system a superblock check-hash (CK_SUPERBLOCK), clean again, through the journal.
    const sb = withCheckHash(Buffer.from(ufs.subarray(sbOff, sbOff + SB_SIZE)));
    writeFileSync(s.path('sb.bin'), sb);
    ok(['journal', 'write', '--sync', '-o', String(sbOff), '-i', 'sb.bin', 'd.img', 'j.img']);
    const before = dataArea();
    expect(before.subarray(sbOff, sbOff + SB_SIZE).equals(sb)).toBe(true);
    ok(['journal', 'write', '-o', '2M', '-i', 'patch.bin', 'd.img', 'j.img']);
    // Zero the header that finishes the journal: nothing is finished any more.
    const { terminator } = firstJournal();
    const j = readFileSync(s.path('j.img'));
    j.fill(0, terminator, terminator + 512);
    writeFileSync(s.path('j.img'), j);
    let r = run(['journal', 'check', 'd.img', 'j.img']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/problem: .*journal is broken/);
    r = ok(['journal', 'check', '-y', 'd.img', 'j.img']);
    expect(r.stdout).toContain('repaired: repair, UFS marked dirty (run fsck)');
    const after = dataArea();
    const got = after.subarray(sbOff, sbOff + SB_SIZE);
    expect(got.readInt8(FS.clean)).toBe(0);
    expect(got.readInt32LE(FS.flags)).toBe(sb.readInt32LE(FS.flags) | 0x05);
    expect(got.readUInt32LE(FS.ckhash)).not.toBe(sb.readUInt32LE(FS.ckhash));
    expect(got.readUInt32LE(FS.ckhash)).toBe(sbHash(got)); // ffs_calc_sbhash of the new superblock
    expect(got.equals(dirtied(sb))).toBe(true);
    const want = Buffer.from(before);
    dirtied(sb).copy(want, sbOff);
    expect(after.equals(want)).toBe(true);
    ok(['journal', 'check', 'd.img', 'j.img']);
  });
});
