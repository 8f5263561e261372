// Black-box: the refusals that keep a geom's data from being destroyed by a
// path that looks harmless (issue 9, items 2, 3, 4 and 16). A relabel, an -O
// or an input that would destroy a geom's data is refused without -f, saying
// what would be lost, in one line, exit 1, with every image left as it was;
// a message never offers -f where another reading keeps the data. Device
// names that FreeBSD's devfs would not take are usage errors.

import { closeSync, linkSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';

const M = 1024 * 1024;

let s: ReturnType<typeof scratch>;
afterAll(() => s?.cleanup());

function run(args: string[], opts: Parameters<typeof geomctl>[1] = {}) {
  return geomctl(args, { cwd: s.dir, ...opts });
}

function ok(args: string[]): void {
  const r = run(args);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
}

/** The one error line of a failed command, after checking its exit status. */
function refusal(args: string[], status = 1, opts: Parameters<typeof geomctl>[1] = {}): string {
  const r = run(args, opts);
  expect(r.status, r.stderr).toBe(status);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0] as string;
}

function hashes(names: string[]): string[] {
  return names.map((n) => sha256(s.path(n)));
}

const INPUT = Buffer.alloc(64 * 1024, 0x5a);

/**
 * A fresh directory with: virstor thin (c0.img, c1.img; one chunk written),
 * a DIRTY one-image journal on d.img, a two-image CLEAN journal (d2.img,
 * j2.img) and a plain file. Built once, then copied (holes kept) for each
 * test: the commands that build it are the slow part.
 */
let template: ReturnType<typeof scratch> | undefined;
afterAll(() => template?.cleanup());

function setUp(): void {
  if (!template) {
    s = scratch('geomctl-refusals-');
    sparseImage(s.path('c0.img'), 16 * M);
    sparseImage(s.path('c1.img'), 16 * M);
    sparseImage(s.path('d.img'), 200 * M);
    sparseImage(s.path('d2.img'), 32 * M);
    sparseImage(s.path('j2.img'), 110 * M);
    sparseImage(s.path('n.img'), 16 * M);
    writeFileSync(s.path('in.bin'), INPUT);
    writeFileSync(s.path('plain.bin'), 'not an image\n');
    ok(['virstor', 'label', '-m', '1M', '-s', '64M', 'thin', 'c0.img', 'c1.img']);
    ok(['virstor', 'write', '-o', '4M', '-i', 'in.bin', 'thin']);
    ok(['journal', 'label', '-s', '100M', 'd.img']);
    ok(['journal', 'write', '-i', 'in.bin', 'd.img']);
    ok(['journal', 'label', 'd2.img', 'j2.img']);
    template = s;
  }
  if (s !== template) s.cleanup();
  s = scratch('geomctl-refusals-');
  const cp = spawnSync('cp', ['-a', '--sparse=always', `${template.dir}/.`, s.dir]);
  expect(cp.status, cp.stderr.toString()).toBe(0);
}

const ALL = ['c0.img', 'c1.img', 'd.img', 'd2.img', 'j2.img', 'n.img'];

describe('relabelling an image that holds GEOM metadata (item 2)', () => {
  beforeEach(setUp);

  it('journal label over a DIRTY journal says to sync first, and -f is not the fix', () => {
    const before = hashes(ALL);
    const line = refusal(['journal', 'label', '-s', '100M', 'd.img']);
    expect(line).toMatch(/^geomctl: d\.img is the image of journal d\.img\.journal, which is DIRTY: journals not yet copied to its data area; /);
    expect(line).toContain("run 'geomctl journal sync d.img' first");
    expect(line).not.toMatch(/use -f|-f (relabels|destroys)/);
    expect(hashes(ALL)).toEqual(before);
    // Synced, it is CLEAN: nothing pending, and -f relabels it.
    ok(['journal', 'sync', 'd.img']);
    expect(refusal(['journal', 'label', '-s', '100M', 'd.img'])).toBe(
      'geomctl: d.img is the image of journal d.img.journal, which is CLEAN (nothing pending); use -f to relabel it',
    );
    ok(['journal', 'label', '-f', '-s', '100M', 'd.img']);
  });

  it("journal label over either image of a two-image journal names it; its journal image reports the data image's state", () => {
    const before = hashes(ALL);
    expect(refusal(['journal', 'label', 'd2.img', 'j2.img'])).toBe(
      'geomctl: d2.img is the data image of journal d2.img.journal, which is CLEAN (nothing pending); use -f to relabel it',
    );
    ok(['journal', 'write', '-i', 'in.bin', 'd2.img']);
    const dirty = hashes(ALL);
    expect(dirty).not.toEqual(before);
    expect(refusal(['journal', 'label', '-s', '100M', 'j2.img'])).toBe(
      "geomctl: j2.img is the journal image of journal d2.img.journal, which is DIRTY: journals not yet copied to its data area; run 'geomctl journal sync d2.img j2.img' first (-f would discard them)",
    );
    expect(hashes(ALL)).toEqual(dirty);
  });

  it('virstor label over a component of another device names it and the chunks it holds', () => {
    const before = hashes(ALL);
    expect(refusal(['virstor', 'label', '-m', '1M', '-s', '64M', 'other', 'n.img', 'c0.img'])).toBe(
      'geomctl: c0.img is component 0 of virstor thin, which holds 1 allocated chunk; -f destroys it',
    );
    expect(refusal(['virstor', 'label', '-m', '1M', '-s', '64M', 'other', 'c1.img'])).toBe(
      'geomctl: c1.img is component 1 of virstor thin, which holds 1 allocated chunk; -f destroys it',
    );
    // Its own device again: FreeBSD's label fails too while the geom holds the image.
    expect(refusal(['virstor', 'label', '-m', '1M', '-s', '64M', 'thin', 'c0.img', 'c1.img'])).toMatch(/^geomctl: c0\.img is component 0 of virstor thin/);
    expect(hashes(ALL)).toEqual(before);
    ok(['virstor', 'label', '-f', '-m', '1M', '-s', '64M', 'other', 'n.img', 'c1.img']);
  });

  it('journal label over a virstor component, and virstor label over a journal image, are refused alike', () => {
    const before = hashes(ALL);
    expect(refusal(['journal', 'label', 'c0.img'])).toBe('geomctl: c0.img is component 0 of virstor thin, which holds 1 allocated chunk; -f destroys it');
    expect(refusal(['journal', 'label', 'n.img', 'c1.img'])).toMatch(/^geomctl: c1\.img is component 1 of virstor thin/);
    expect(refusal(['virstor', 'label', '-m', '1M', '-s', '64M', 'v2', 'd.img'])).toMatch(
      /^geomctl: d\.img is the image of journal d\.img\.journal, which is DIRTY: .*; run 'geomctl journal sync d\.img' first \(-f would discard them\)$/,
    );
    expect(refusal(['virstor', 'label', '-m', '1M', '-s', '64M', 'v2', 'n.img', 'j2.img'])).toMatch(/^geomctl: j2\.img is the journal image of journal d2\.img\.journal, which is CLEAN/);
    expect(hashes(ALL)).toEqual(before);
  });

  it('virstor add over another geom says the same', () => {
    const before = hashes(ALL);
    sparseImage(s.path('e0.img'), 16 * M);
    ok(['virstor', 'label', '-m', '1M', '-s', '64M', 'empty', 'e0.img']);
    expect(refusal(['virstor', 'add', 'empty', 'c1.img'])).toBe('geomctl: c1.img is component 1 of virstor thin, which holds 1 allocated chunk; -f destroys it');
    expect(refusal(['virstor', 'add', 'thin', 'e0.img'])).toBe('geomctl: e0.img is component 0 of virstor empty, which holds no allocated chunks; -f destroys it');
    expect(hashes(ALL)).toEqual(before);
  });
});

describe('-O onto an image (item 3)', () => {
  beforeEach(setUp);

  it('journal export -O a virstor component is refused, the component untouched; -f overwrites it', () => {
    const before = hashes(ALL);
    expect(refusal(['journal', 'export', '-O', 'c0.img', 'd2.img'])).toBe('geomctl: c0.img is component 0 of virstor thin, which holds 1 allocated chunk; -f destroys it');
    expect(refusal(['journal', 'read', '-l', '1M', '-O', 'c1.img', 'd2.img'])).toMatch(/^geomctl: c1\.img is component 1 of virstor thin/);
    expect(refusal(['virstor', 'read', '-l', '1M', '-O', 'd2.img', 'thin'])).toMatch(/^geomctl: d2\.img is the data image of journal d2\.img\.journal, which is CLEAN \(nothing pending\); -f destroys it$/);
    expect(refusal(['virstor', 'export', '-O', 'd.img', 'thin'])).toMatch(/^geomctl: d\.img is the image of journal d\.img\.journal, which is DIRTY: .*; -f destroys it$/);
    expect(hashes(ALL)).toEqual(before);
    ok(['journal', 'export', '-f', '-O', 'n.img', 'd2.img']);
    ok(['journal', 'export', '-f', '-O', 'c0.img', 'd2.img']);
    expect(sha256(s.path('c0.img'))).toBe(sha256(s.path('n.img')));
  });

  it('-O onto a plain existing file, or one without metadata, still works', () => {
    ok(['virstor', 'read', '-l', '64k', '-o', '4M', '-O', 'plain.bin', 'thin']);
    expect(readFileSync(s.path('plain.bin')).equals(INPUT)).toBe(true);
    ok(['journal', 'read', '-l', '64k', '-O', 'n.img', 'd.img']);
    expect(readFileSync(s.path('n.img')).equals(INPUT)).toBe(true);
  });

  it("-O onto one of the device's own images is refused even with -f, through a symlink too", () => {
    symlinkSync('c1.img', s.path('link.img'));
    const before = hashes(ALL);
    expect(refusal(['virstor', 'export', '-f', '-O', 'link.img', 'thin'])).toMatch(/^geomctl: link\.img is c1\.img, an image of virstor thin: writing there would destroy it/);
    expect(refusal(['journal', 'read', '-f', '-O', 'j2.img', 'd2.img'])).toMatch(/^geomctl: j2\.img is j2\.img, an image of journal/);
    expect(hashes(ALL)).toEqual(before);
  });
});

describe("a device's own image as the input of its write (item 4)", () => {
  beforeEach(setUp);

  it('virstor write -i a component, directly, through a symlink or a hard link, or as stdin, is refused', () => {
    symlinkSync('c0.img', s.path('link.img'));
    const before = hashes(ALL);
    expect(refusal(['virstor', 'write', '-o', '20M', '-i', 'c0.img', 'thin'])).toBe(
      'geomctl: -i c0.img is c0.img, an image of virstor thin that this write changes; copy it and give -i the copy',
    );
    expect(refusal(['virstor', 'write', '-o', '20M', '-i', 'link.img', 'thin'])).toMatch(/^geomctl: -i link\.img is c0\.img, an image of virstor thin/);
    linkSync(s.path('c1.img'), s.path('hard.img'));
    expect(refusal(['virstor', 'write', '-o', '20M', '-i', 'hard.img', 'thin'])).toMatch(/^geomctl: -i hard\.img is c1\.img, an image of virstor thin/);
    const fd = openSync(s.path('c1.img'), 'r');
    try {
      expect(refusal(['virstor', 'write', '-o', '20M', 'thin'], 1, { stdio: [fd, 'pipe', 'pipe'] })).toMatch(/^geomctl: stdin is c1\.img, an image of virstor thin that this write changes/);
    } finally {
      closeSync(fd);
    }
    expect(hashes(ALL)).toEqual(before);
  });

  it('journal write -i its data or journal image, directly, through a symlink or as stdin, is refused', () => {
    symlinkSync('d2.img', s.path('link.img'));
    const before = hashes(ALL);
    expect(refusal(['journal', 'write', '-i', 'j2.img', 'd2.img'])).toMatch(/^geomctl: -i j2\.img is j2\.img, an image of journal d2\.img\.journal that this write changes; /);
    expect(refusal(['journal', 'write', '-i', 'link.img', 'd2.img', 'j2.img'])).toMatch(/^geomctl: -i link\.img is d2\.img, an image of journal d2\.img\.journal/);
    const fd = openSync(s.path('d.img'), 'r');
    try {
      expect(refusal(['journal', 'write', 'd.img'], 1, { stdio: [fd, 'pipe', 'pipe'] })).toMatch(/^geomctl: stdin is d\.img, an image of journal d\.img\.journal/);
    } finally {
      closeSync(fd);
    }
    expect(hashes(ALL)).toEqual(before);
    // Another image is an input like any file.
    ok(['journal', 'write', '-i', 'n.img', 'd2.img']);
  });
});

describe('device names FreeBSD would not take (item 16)', () => {
  beforeEach(() => {
    if (s !== template) s?.cleanup();
    s = scratch('geomctl-refusals-');
    sparseImage(s.path('n.img'), 16 * M);
  });

  it.each([
    ['a/b', "'/'"],
    ['..', "'.' or '..'"],
    ['.', "'.' or '..'"],
    ['a\nb', 'control character'],
    ['tab\there', 'control character'],
    ['', 'empty'],
  ])('virstor label %j is a usage error naming the rule', (name, rule) => {
    const before = hashes(['n.img']);
    const line = refusal(['virstor', 'label', '-m', '1M', '-s', '64M', name, 'n.img'], 2);
    expect(line).toContain(rule);
    expect(hashes(['n.img'])).toEqual(before);
  });

  it('a name with dots inside is a name like any other', () => {
    ok(['virstor', 'label', '-m', '1M', '-s', '64M', 'my.data..1', 'n.img']);
  });
});
