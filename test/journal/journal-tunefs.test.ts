// `journal tunefs -J enable|disable` and `journal label -J` (issue 9, item
// 12): FreeBSD's `tunefs -J` on the journaled provider, black-box through
// bin/geomctl. The UFS comes from makefs (Debian package makefs) or, where a
// check-hash, a dirty file system or an old superblock is needed, from a
// superblock built by hand; what geomctl writes is checked with the test's
// own superblock reader and CRC-32C (test/helpers/ufs.ts): the FS_GJOURNAL
// bit, fs_ckhash as ffs_calc_sbhash computes it, and every other byte of the
// data area unchanged. Refusals (no UFS, a bad check-hash, a dirty UFS, a
// broken journal) leave the images untouched; a kill at any write leaves the
// old superblock or the new one.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage, type CliResult } from '../helpers/cli.js';
import { describeCounts, every, faultRuns, filesSignature, snapshotFiles, undoLogs } from '../helpers/faults.js';
import { FS, FS_FLAGS_UPDATED, FS_GJOURNAL, FS_METACKHASH, handSuperblock, SB_OFFSET, SB_SIZE, sbHash, superblockOffset } from '../helpers/ufs.js';
import { GJ_FLAG_CLEAN, kEncodeMetadata, kJournaledContents, kRandom, kRandomBytes, kReadMetadata } from '../model/journal-kernel.js';

const K = 1024;
const M = 1024 * K;
const K128 = 128 * K;
const J_SIZE = 6 * M; // near the smallest journal 128k allows

/** makefs on PATH or where Debian installs it (/usr/sbin is not on every PATH). */
const makefs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/sbin'].map((d) => join(d, 'makefs')).find((p) => p.startsWith('/') && existsSync(p));
const SKIP = 'SKIPPED: makefs is not installed (apt-get install makefs; CI installs it)';
if (!makefs) console.warn(`journal-tunefs.test.ts: ${SKIP}`);

const s = scratch('geomctl-jtunefs-');
afterAll(() => s.cleanup());

function run(dir: string, args: string[], env: Record<string, string> = {}): CliResult {
  const r = geomctl(args, { cwd: dir, env });
  expect(r.stderr).not.toMatch(/\n\s+at .*:\d+/);
  return r;
}

function ok(dir: string, args: string[]): CliResult {
  const r = run(dir, args);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

let dirs = 0;
/** A fresh directory of the scratch area. */
function freshDir(): string {
  const dir = s.path(`d${++dirs}`);
  mkdirSync(dir);
  return dir;
}

/**
 * A two-image journal in a fresh directory: d.img holds `content` at 0 and
 * is one sector larger than `size` (the journaled provider is `size` bytes),
 * j.img is the journal; labeled CLEAN for maxphys 128k.
 */
function twoImages(content: Buffer, size = 2 * M): string {
  const dir = freshDir();
  sparseImage(join(dir, 'd.img'), size + 512, content);
  sparseImage(join(dir, 'j.img'), J_SIZE);
  ok(dir, ['--maxphys', '128k', 'journal', 'label', 'd.img', 'j.img']);
  return dir;
}

/** The journaled provider of a CLEAN two-image device: the data image but its metadata sector. */
function dataArea(dir: string): Buffer {
  const d = readFileSync(join(dir, 'd.img'));
  return d.subarray(0, d.length - 512);
}

/** The state of both images, to show a refusal changed nothing. */
const hashes = (dir: string): string[] => ['d.img', 'j.img'].map((n) => sha256(join(dir, n)));

/**
 * What tunefs -J makes of a superblock, computed here: FS_GJOURNAL set or
 * cleared in fs_flags (and in fs_old_flags on a superblock older than
 * fs_flags), fs_ckhash recomputed when CK_SUPERBLOCK is kept.
 */
function tuned(block: Buffer, on: boolean): Buffer {
  const out = Buffer.from(block);
  const flags = block.readInt32LE(FS.flags);
  out.writeInt32LE(on ? flags | FS_GJOURNAL : flags & ~FS_GJOURNAL, FS.flags);
  const old = block.readUInt8(FS.oldFlags);
  if (!(old & FS_FLAGS_UPDATED)) out.writeUInt8(on ? old | FS_GJOURNAL : old & ~FS_GJOURNAL, FS.oldFlags);
  if (block.readUInt32LE(FS.metackhash) & 1) out.writeUInt32LE(sbHash(out), FS.ckhash);
  return out;
}

/** `image` with its superblock (found by the test's own reader) replaced by what tunefs -J should write. */
function withFlag(image: Buffer, on: boolean): Buffer {
  const off = superblockOffset(image);
  expect(off).toBeGreaterThanOrEqual(0);
  const out = Buffer.from(image);
  tuned(image.subarray(off, off + SB_SIZE), on).copy(out, off);
  return out;
}

/** A data area of `size` bytes with `sb` at SB_OFFSET. */
function withSuperblock(sb: Buffer, size = 2 * M): Buffer {
  const img = Buffer.alloc(size);
  sb.copy(img, SB_OFFSET);
  return img;
}

/** The hand-made superblock, changed by `edit`, its check-hash kept valid when it has one. */
function handEdited(edit: (sb: Buffer) => void): Buffer {
  const sb = handSuperblock();
  edit(sb);
  sb.writeUInt32LE(sbHash(sb), FS.ckhash);
  return sb;
}

describe('journal tunefs -J on hand-made superblocks', () => {
  it('enable sets FS_GJOURNAL and recomputes the check-hash as ffs_calc_sbhash does; disable restores every byte', () => {
    // A file system that keeps a superblock check-hash, as FreeBSD's newfs makes them.
    const sb = handEdited((b) => b.writeInt32LE(b.readInt32LE(FS.flags) | FS_METACKHASH, FS.flags));
    const content = withSuperblock(sb);
    const dir = twoImages(content);
    let r = ok(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
    expect(r.stderr).toBe('d.img.journal: gjournal set\n');
    expect(r.stdout).toBe('');
    const after = dataArea(dir);
    expect(after.equals(withFlag(content, true))).toBe(true);
    const block = after.subarray(SB_OFFSET, SB_OFFSET + SB_SIZE);
    expect(block.readInt32LE(FS.flags) & FS_GJOURNAL).toBe(FS_GJOURNAL);
    expect(block.readUInt32LE(FS.ckhash)).toBe(sbHash(block));
    expect(block.readUInt32LE(FS.ckhash)).not.toBe(sb.readUInt32LE(FS.ckhash));
    // The device is CLEAN again: the write went through the journal and was synced.
    expect(kReadMetadata(readFileSync(join(dir, 'd.img')), 512).flags & GJ_FLAG_CLEAN).toBe(GJ_FLAG_CLEAN);

    r = ok(dir, ['journal', 'tunefs', '-J', 'disable', 'd.img']);
    expect(r.stderr).toBe('d.img.journal: gjournal cleared\n');
    expect(dataArea(dir).equals(content)).toBe(true);
  });

  it('the flag already as asked: "remains unchanged", nothing written', () => {
    const content = withSuperblock(handSuperblock());
    const dir = twoImages(content);
    const before = hashes(dir);
    const r = ok(dir, ['journal', 'tunefs', '-J', 'disable', 'd.img', 'j.img']);
    expect(r.stderr).toBe('d.img.journal: gjournal remains unchanged as disabled\n');
    expect(hashes(dir)).toEqual(before);
    ok(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
    const enabled = hashes(dir);
    expect(ok(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']).stderr).toBe('d.img.journal: gjournal remains unchanged as enabled\n');
    expect(hashes(dir)).toEqual(enabled);
  });

  it('a superblock older than fs_flags (no FS_FLAGS_UPDATED) gets the flag in fs_old_flags too', () => {
    const content = withSuperblock(handEdited((b) => b.writeUInt8(0x02, FS.oldFlags)));
    const dir = twoImages(content);
    ok(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
    const block = dataArea(dir).subarray(SB_OFFSET, SB_OFFSET + SB_SIZE);
    expect(block.readUInt8(FS.oldFlags)).toBe(0x02 | FS_GJOURNAL);
    expect(dataArea(dir).equals(withFlag(content, true))).toBe(true);
    // list reads the flags where a kernel would: fs_old_flags here.
    expect(ok(dir, ['journal', 'list', 'd.img']).stdout).toContain('\nUFS: UFS2, gjournal enabled\n');
    ok(dir, ['journal', 'tunefs', '-J', 'disable', 'd.img', 'j.img']);
    expect(dataArea(dir).equals(content)).toBe(true);
  });

  it('refuses a dirty UFS without -f, changing nothing; -f sets the flag', () => {
    const content = withSuperblock(handEdited((b) => b.writeInt8(0, FS.clean)));
    const dir = twoImages(content);
    const before = hashes(dir);
    const r = run(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('geomctl: the UFS on d.img.journal is not clean (fs_clean 0, fs_flags 0x10): it is mounted, or was not checked after a crash; run fsck_ffs on it first, or -f to change it anyway\n');
    expect(hashes(dir)).toEqual(before);
    ok(dir, ['journal', 'tunefs', '-f', '-J', 'enable', 'd.img', 'j.img']);
    expect(dataArea(dir).equals(withFlag(content, true))).toBe(true);
  });

  it('refuses a superblock whose check-hash fails, as FreeBSD would not read it', () => {
    const sb = handEdited((b) => b.writeInt32LE(b.readInt32LE(FS.flags) | FS_METACKHASH, FS.flags));
    const good = sb.readUInt32LE(FS.ckhash);
    sb.writeUInt32LE(0x12345678, FS.ckhash);
    const dir = twoImages(withSuperblock(sb));
    const before = hashes(dir);
    const r = run(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`geomctl: UFS superblock at 65536 of d.img.journal: check-hash failed: recorded 0x12345678 != computed 0x${good.toString(16)}; FreeBSD will not read it either: run fsck_ffs on it\n`);
    expect(hashes(dir)).toEqual(before);
  });

  it('refuses a provider without a UFS, naming what it holds, and changes nothing', () => {
    const lastSector = Buffer.alloc(512);
    lastSector.write('GEOM::VIRSTOR\0', 'latin1');
    const ext = Buffer.alloc(2 * M);
    ext.writeUInt16LE(0xef53, 1024 + 56);
    const badUfs = withSuperblock(handEdited((b) => b.writeInt32LE(3000, 48))); // fs_bsize not a power of two
    const virstor = Buffer.alloc(2 * M);
    lastSector.copy(virstor, 2 * M - 512); // the journaled provider's last sector
    const cases: [Buffer, string][] = [
      [Buffer.alloc(0), 'zeros'],
      [virstor, 'GEOM::VIRSTOR metadata in its last sector'],
      [ext, 'an ext2/3/4 file system'],
      [badUfs, 'a UFS2 magic at 65536 in a block that is no usable superblock'],
      [kRandomBytes(kRandom(3), 128 * K), 'other data'],
    ];
    for (const [content, found] of cases) {
      const dir = twoImages(content);
      const before = hashes(dir);
      const r = run(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
      expect(r.status, found).toBe(1);
      expect(r.stderr).toBe(`geomctl: d.img.journal holds no UFS superblock (found ${found}); write a UFS made by 'makefs -t ffs' to it with 'geomctl journal write' first\n`);
      expect(hashes(dir), found).toEqual(before);
    }
  });

  it('refuses a broken journal, pointing at its repair', () => {
    const dir = twoImages(withSuperblock(handSuperblock()));
    // D's metadata DIRTY, naming a journal that is not there: nothing finished to replay.
    const d = readFileSync(join(dir, 'd.img'));
    const md = kReadMetadata(d, 512);
    const sector = Buffer.alloc(512);
    kEncodeMetadata({ ...md, flags: 0, joffset: 0, jid: 12345 }).copy(sector);
    sector.copy(d, d.length - 512);
    writeFileSync(join(dir, 'd.img'), d);
    const before = hashes(dir);
    const r = run(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "geomctl: journal on d.img is broken: the file system on d.img.journal cannot be read as FreeBSD would read it; repair the journal first with 'geomctl journal sync -f d.img' (it marks the UFS dirty)\n",
    );
    expect(hashes(dir)).toEqual(before);
  });

  it('usage: -J is required and takes enable or disable (exit 2)', () => {
    const dir = twoImages(withSuperblock(handSuperblock()));
    let r = run(dir, ['journal', 'tunefs', 'd.img']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^geomctl: journal tunefs needs -J enable or -J disable\n/);
    r = run(dir, ['journal', 'tunefs', '-J', 'on', 'd.img']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^geomctl: bad gjournal value 'on' for -J; options are 'enable' or 'disable'\n/);
    r = run(dir, ['journal', 'tunefs', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: geomctl journal tunefs [-fv] [-J enable|disable] dataimg [jimg]');
  });

  it('--json: what was done, and list shows the UFS and its flag', () => {
    const sb = handEdited((b) => b.writeInt32LE(b.readInt32LE(FS.flags) | FS_METACKHASH, FS.flags));
    const dir = twoImages(withSuperblock(sb));
    let r = ok(dir, ['--json', 'journal', 'list', 'd.img']);
    expect((JSON.parse(r.stdout) as { geoms: { ufs: unknown }[] }).geoms[0]?.ufs).toEqual({ version: 2, gjournal: false });
    r = ok(dir, ['--json', 'journal', 'tunefs', '-J', 'enable', 'd.img']);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    const block = dataArea(dir).subarray(SB_OFFSET, SB_OFFSET + SB_SIZE);
    expect(doc).toEqual({
      command: 'journal tunefs',
      data: 'd.img',
      journal: 'j.img',
      provider: 'd.img.journal',
      ufs: 2,
      offset: SB_OFFSET,
      gjournal: true,
      changed: true,
      ckhash: sbHash(block),
      state: 'CLEAN',
      recovery: { action: 'none', journals: 0, bytes: 0, ufsMarkedDirty: false },
    });
    r = ok(dir, ['--json', 'journal', 'list', 'd.img']);
    expect((JSON.parse(r.stdout) as { geoms: { ufs: unknown }[] }).geoms[0]?.ufs).toEqual({ version: 2, gjournal: true });
    expect(ok(dir, ['journal', 'status', 'd.img']).stdout).toContain('d.img.journal');
    // A provider without a UFS: null, and "UFS: none".
    const empty = twoImages(Buffer.alloc(0));
    expect((JSON.parse(ok(empty, ['--json', 'list']).stdout) as { geoms: { ufs: unknown }[] }).geoms[0]?.ufs).toBeNull();
    expect(ok(empty, ['journal', 'list']).stdout).toContain('\nUFS: none\n');
  });
});

/** A UFS image of `size` with a few files, made by makefs (UFS1 or UFS2). */
function makeUfs(version: 1 | 2, size = '4m'): Buffer {
  const dir = freshDir();
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  writeFileSync(join(tree, 'README'), 'journaled by geomctl\n');
  writeFileSync(join(tree, 'random.bin'), kRandomBytes(kRandom(version), 300 * K));
  const out = join(dir, 'ufs.img');
  const r = spawnSync(makefs as string, ['-t', 'ffs', '-o', `version=${version}`, '-s', size, out, tree], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(out);
}

describe.skipIf(!makefs)(`journal tunefs -J on a UFS made by makefs${makefs ? '' : ` — ${SKIP}`}`, () => {
  it("gjournal(8)'s recipe: label, then tunefs -J enable on the journal provider; disable gives back the makefs image", () => {
    const ufs = makeUfs(2);
    const off = superblockOffset(ufs);
    expect(off).toBeGreaterThanOrEqual(0);
    expect(ufs.readInt32LE(off + FS.flags) & FS_GJOURNAL).toBe(0); // makefs cannot set it
    const dir = twoImages(ufs, ufs.length);
    expect(ok(dir, ['journal', 'list', 'd.img']).stdout).toContain('\nUFS: UFS2, gjournal disabled\n');
    ok(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img']);
    const after = dataArea(dir);
    expect(after.readInt32LE(off + FS.flags)).toBe(ufs.readInt32LE(off + FS.flags) | FS_GJOURNAL);
    // makefs keeps no check-hash: fs_ckhash is left as it was, and nothing else changed.
    expect(ufs.readUInt32LE(off + FS.metackhash) & 1).toBe(0);
    expect(after.readUInt32LE(off + FS.ckhash)).toBe(ufs.readUInt32LE(off + FS.ckhash));
    expect(after.equals(withFlag(ufs, true))).toBe(true);
    expect(ok(dir, ['journal', 'list', 'd.img']).stdout).toContain('\nUFS: UFS2, gjournal enabled\n');
    ok(dir, ['journal', 'tunefs', '-J', 'disable', 'd.img', 'j.img']);
    expect(dataArea(dir).equals(ufs)).toBe(true);
  });

  it('reads the superblock through the journal: a UFS still in pending journals is found, replayed and changed', () => {
    const ufs = makeUfs(2);
    const dir = twoImages(Buffer.alloc(0), ufs.length);
    writeFileSync(join(dir, 'rest.bin'), ufs.subarray(128 * K));
    writeFileSync(join(dir, 'head.bin'), ufs.subarray(0, 128 * K));
    ok(dir, ['journal', 'write', '--sync', '-o', '128k', '-i', 'rest.bin', 'd.img', 'j.img']);
    ok(dir, ['journal', 'write', '-i', 'head.bin', 'd.img', 'j.img']); // DIRTY: the superblock is only in the journal
    expect(dataArea(dir).subarray(0, 128 * K).every((b) => b === 0)).toBe(true);
    expect(kReadMetadata(readFileSync(join(dir, 'd.img')), 512).flags & GJ_FLAG_CLEAN).toBe(0);
    const r = ok(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
    expect(r.stderr).toMatch(/^d\.img: replayed \d+ journals? \(\d+ bytes, maxphys 131072\)\nd\.img\.journal: gjournal set\n$/);
    expect(dataArea(dir).equals(withFlag(ufs, true))).toBe(true);
  });

  it('UFS1: the flag in fs_flags (makefs marks the flags moved)', () => {
    const ufs = makeUfs(1);
    const off = superblockOffset(ufs);
    expect(ufs.readUInt32LE(off + FS.magic)).toBe(0x011954);
    const dir = twoImages(ufs, ufs.length);
    ok(dir, ['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img']);
    expect(dataArea(dir).equals(withFlag(ufs, true))).toBe(true);
    expect(ok(dir, ['journal', 'list', 'd.img']).stdout).toContain('\nUFS: UFS1, gjournal enabled\n');
  });

  it('label -J: one image holding a UFS that ends before the journal, labeled and flagged at once; a UFS in the way is refused even with -f', () => {
    const ufs = makeUfs(2);
    const dir = freshDir();
    sparseImage(join(dir, 'one.img'), ufs.length + 100 * M + 512, ufs);
    const r = ok(dir, ['journal', 'label', '-J', '-s', '100M', 'one.img']);
    expect(r.stderr).toBe('one.img.journal: gjournal set\n');
    const one = readFileSync(join(dir, 'one.img'));
    expect(one.subarray(0, ufs.length).equals(withFlag(ufs, true))).toBe(true);
    expect(kReadMetadata(one, 512).jstart).toBe(ufs.length);
    expect(ok(dir, ['journal', 'list', 'one.img']).stdout).toContain('\nUFS: UFS2, gjournal enabled\n');

    // The UFS would reach into the journal: refused, -f or not, nothing changed.
    sparseImage(join(dir, 'small.img'), ufs.length + 100 * M, ufs);
    const before = sha256(join(dir, 'small.img'));
    for (const force of [[], ['-f']]) {
      const x = run(dir, ['journal', 'label', '-J', ...force, '-s', '100M', 'small.img']);
      expect(x.status).toBe(1);
      expect(x.stderr).toBe(
        `geomctl: the UFS on small.img spans ${ufs.length} bytes, more than the ${ufs.length - 512} bytes of small.img.journal: the journal would overwrite its end; give the image room for it (truncate -s), or a smaller journal (-s)\n`,
      );
      expect(sha256(join(dir, 'small.img'))).toBe(before);
    }
    // Nothing to flag: refused before anything is labeled.
    sparseImage(join(dir, 'zero.img'), 101 * M);
    const z = run(dir, ['journal', 'label', '-J', '-s', '100M', 'zero.img']);
    expect(z.status).toBe(1);
    expect(z.stderr).toMatch(/^geomctl: zero\.img\.journal holds no UFS superblock \(found zeros\); /);
    expect(run(dir, ['journal', 'dump', 'zero.img']).status).toBe(1);
  });

  it('label -J of two images, --json', () => {
    const ufs = makeUfs(2);
    const dir = freshDir();
    sparseImage(join(dir, 'd.img'), ufs.length + 512, ufs);
    sparseImage(join(dir, 'j.img'), J_SIZE);
    const r = ok(dir, ['--json', '--maxphys', '128k', 'journal', 'label', '-J', 'd.img', 'j.img']);
    expect(r.stderr).toBe('');
    const off = superblockOffset(ufs);
    expect((JSON.parse(r.stdout) as { gjournal: unknown }).gjournal).toEqual({ provider: 'd.img.journal', ufs: 2, offset: off, gjournal: true, changed: true });
    expect(dataArea(dir).equals(withFlag(ufs, true))).toBe(true);
  });

  it('killed at every write and barrier, tunefs leaves the old superblock or the new one, as FreeBSD and geomctl see it', () => {
    const ufs = makeUfs(2);
    const dir = twoImages(ufs, ufs.length);
    const names = ['d.img', 'j.img'];
    const want = withFlag(ufs, true);
    /** The journaled provider as FreeBSD's kernel would show it (the independent model). */
    const journaled = (): Buffer => kJournaledContents({ d: readFileSync(join(dir, 'd.img')), j: readFileSync(join(dir, 'j.img')), sectorSize: 512 }, { maxphys: K128 });
    const effect = (content: Buffer): string => (content.equals(ufs) ? 'before' : content.equals(want) ? 'after' : 'neither');
    const counts = faultRuns(
      {
        run: (spec) => geomctl(['journal', 'tunefs', '-J', 'enable', 'd.img', 'j.img'], { cwd: dir, env: { GEOMCTL_FAULT: spec } }),
        restore: snapshotFiles(dir, names),
        atFailure: (spec) => {
          expect(undoLogs(dir), spec).toEqual([]);
          expect(effect(journaled()), `${spec}: FreeBSD would find neither superblock`).not.toBe('neither');
        },
        next: () => ok(dir, ['journal', 'sync', 'd.img', 'j.img']),
        signature: () => effect(dataArea(dir)),
        before: 'before',
        after: 'after',
      },
      every(16),
    );
    console.log(describeCounts('journal tunefs -J enable', counts));
    expect(counts.exhausted).toEqual({ write: true, barrier: true });
    expect(counts.before).toBeGreaterThan(0);
    expect(counts.after).toBeGreaterThan(0);
  });

  it('killed at every write and barrier, label -J leaves the images as they were or labeled and flagged', () => {
    const ufs = makeUfs(2);
    const dir = freshDir();
    sparseImage(join(dir, 'd.img'), ufs.length + 512, ufs);
    sparseImage(join(dir, 'j.img'), J_SIZE);
    const names = ['d.img', 'j.img'];
    const restore = snapshotFiles(dir, names);
    const before = filesSignature(dir, names);
    const verb = ['--maxphys', '128k', 'journal', 'label', '-J', '--id', '9', 'd.img', 'j.img'];
    ok(dir, verb);
    const after = filesSignature(dir, names);
    let nextFailed = false;
    const counts = faultRuns(
      {
        run: (spec) => geomctl(verb, { cwd: dir, env: { GEOMCTL_FAULT: spec } }),
        restore,
        // A writing verb rolls back what the killed label left; on images it did not label, it has nothing to open.
        next: (spec) => {
          const r = run(dir, ['journal', 'sync', 'd.img', 'j.img']);
          nextFailed = r.status !== 0;
          if (nextFailed) expect(r.stderr, spec).toMatch(/no GEOM::JOURNAL metadata/);
        },
        signature: () => filesSignature(dir, names),
        before,
        after,
        check: (spec, effect) => {
          expect(undoLogs(dir), spec).toEqual([]);
          if (nextFailed) expect(effect, spec).toBe('before');
        },
      },
      every(10),
    );
    console.log(describeCounts('journal label -J (two images)', counts));
    expect(counts.exhausted).toEqual({ write: true, barrier: true });
    expect(counts.before).toBeGreaterThan(0);
    expect(counts.after).toBeGreaterThan(0);
  });
});
