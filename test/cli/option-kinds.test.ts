// Each option kind of the command framework (commands/framework.ts) refuses a
// bad value the same way in every verb: one "geomctl: ..." line naming the
// option and the value, exit 2, before any image is opened — so the images
// are as they were. And the 64-bit size kind takes sizes past 2^53 (a
// journal's -s, a virstor's -s and -m) up to 2^64 - 1.

import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';

const s = scratch('geomctl-option-kinds-');
afterAll(() => s.cleanup());

let hashes: () => Record<string, string>;
beforeAll(() => {
  sparseImage(s.path("d.img"), 4 << 20);
  sparseImage(s.path("c0.img"), 4 << 20);
  hashes = () => Object.fromEntries(readdirSync(s.dir).sort().map((f) => [f, sha256(s.path(f))]));
});

/** [what, argv, the one error line]: every case is a usage error. */
const refusals: [string, string[], RegExp][] = [
  // size: expand_number(3), at most 2^53 - 1
  ['size: garbage', ['--cache-limit', '12Q', 'list'], /^geomctl: invalid size '12Q' for --cache-limit; use a number with an optional k, m, g, t, p or e suffix/],
  ['size: negative', ['journal', 'read', '-o', '-5', 'd.img'], /^geomctl: invalid size '-5' for -o; /],
  ['size: a fraction', ['virstor', 'write', '-o', '1.5M', 'thin'], /^geomctl: invalid size '1\.5M' for -o; /],
  ['size: past 2^53', ['--cache-limit', '9P', 'list'], /^geomctl: size '9P' for --cache-limit is too large; use a size below 8P$/],
  ['size: its own rule (--maxphys)', ['--maxphys', '64k', 'list'], /^geomctl: --maxphys 65536 is not a maxphys FreeBSD uses; use 1M .* or 128k /],
  ['size: its own rule (--sectorsize, journal)', ['journal', 'label', '--sectorsize', '3k', 'd.img'], /^geomctl: invalid sector size 3072 for --sectorsize; use a power of two from 512 to 65536$/],
  ['size: its own rule (--sectorsize, virstor)', ['virstor', 'label', '--sectorsize', '3k', 'thin', 'c0.img'], /^geomctl: invalid sector size 3072 for --sectorsize; use a power of two from 512 to 65536$/],
  // size64: expand_number(3), at most 2^64 - 1
  ['size64: garbage (journal -s)', ['journal', 'label', '-s', '1G1', 'd.img'], /^geomctl: invalid size '1G1' for -s; /],
  ['size64: garbage (virstor -m)', ['virstor', 'label', '-m', 'big', 'thin', 'c0.img'], /^geomctl: invalid size 'big' for -m; /],
  ['size64: 2^64 (journal -s)', ['journal', 'label', '-s', '16E', 'd.img'], /^geomctl: size '16E' for -s does not fit in 64 bits; use a size below 16E$/],
  ['size64: 2^64 (virstor -s)', ['virstor', 'label', '-s', '0x10000000000000000', 'thin', 'c0.img'], /^geomctl: size '0x10000000000000000' for -s does not fit in 64 bits; /],
  // count: a whole number, decimal or 0x hex
  ['count: negative', ['--wait', '-1', 'list'], /^geomctl: invalid number '-1' for --wait; use a whole number, decimal or 0x hex$/],
  ['count: a suffix', ['journal', 'label', '--id', '1k', 'd.img'], /^geomctl: invalid number '1k' for --id; /],
  ['count: past 2^53', ['--wait', '9007199254740993', 'list'], /^geomctl: number '9007199254740993' for --wait is too large; use a smaller number$/],
  ['count: its own rule (--id, journal)', ['journal', 'label', '--id', '4294967296', 'd.img'], /^geomctl: invalid --id 4294967296; use a number from 0 to 4294967295$/],
  ['count: its own rule (--id, virstor)', ['virstor', 'label', '--id', '0x100000000', 'thin', 'c0.img'], /^geomctl: invalid --id 4294967296; use a number from 0 to 4294967295$/],
  ['count: its own rule (-p)', ['serve', '-p', '65536', 'd.img'], /^geomctl: -p 65536 is not a TCP port; use 0\.\.65535/],
  ['count: its own rule (--switch-time)', ['serve', '--switch-time', '0', 'd.img.journal'], /^geomctl: --switch-time 0 is too short; give at least 1 second$/],
  ['count: its own rule (--force-switch)', ['serve', '--force-switch', '101', 'd.img.journal'], /^geomctl: --force-switch 101 is not a percentage; give 1\.\.100$/],
  // enum: one of its words
  ['enum: another word', ['journal', 'tunefs', '-J', 'on', 'd.img'], /^geomctl: bad gjournal value 'on' for -J; options are 'enable' or 'disable'$/],
  // string and list: a value is required
  ['string: no value', ['journal', 'export', 'd.img', '-O'], /^geomctl: option '-O, --output <file>' argument missing; see 'geomctl journal export --help'$/],
  ['list: no value', ['list', '-d'], /^geomctl: option '-d, --dir <dir>' argument missing; see 'geomctl --help'$/],
  // flag: takes no value (commander reads --force=yes as another option)
  ['flag: given a value', ['journal', 'sync', '--force=yes', 'd.img'], /^geomctl: unknown option '--force=yes'; see 'geomctl journal sync --help'$/],
];

describe('option kinds: a bad value is a usage error naming the option, exit 2, nothing touched', () => {
  it.each(refusals)('%s', (_what, argv, message) => {
    const before = hashes();
    const r = geomctl(argv, { cwd: s.dir });
    expect(r.status, r.stderr).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(r.stdout).toBe('');
    expect(hashes()).toEqual(before);
  });

  it('each occurrence is judged: a bad value is refused even when a later one is good', () => {
    const r = geomctl(['journal', 'label', '--id', '4294967296', '--id', '7', 'd.img'], { cwd: s.dir });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid --id 4294967296/);
  });
});

describe('the 64-bit size kind: sizes past 2^53 reach the class, which judges them against the images (exit 1)', () => {
  it('journal label -s 9P: parsed exactly, then refused as larger than the image', () => {
    const before = hashes();
    const r = geomctl(['journal', 'label', '-s', '9P', 'd.img'], { cwd: s.dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: d\.img: Provider too small for journalling: a journal of -s 10133099161583616 \(9\.0P\) leaves no data area/);
    expect(hashes()).toEqual(before);
  });

  it('virstor label -s 8E: parsed exactly, then refused as too large for the component', () => {
    const before = hashes();
    const r = geomctl(['virstor', 'label', '-s', '8E', '-m', '1M', 'thin', 'c0.img'], { cwd: s.dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: Device c0\.img is too small; every component must hold at least 70368744177664 bytes/);
    expect(hashes()).toEqual(before);
  });
});

describe('the options both classes share behave alike', () => {
  it('label -h is hardcode in both classes and in add (help is --help only), with one description', () => {
    for (const verb of [['journal', 'label'], ['virstor', 'label'], ['virstor', 'add']]) {
      const help = geomctl([...verb, '--help']).stdout.replace(/\s+/g, ' ');
      expect(help).toContain("-h, --hardcode record each image's name: only an image of that name is accepted");
      expect(help).not.toContain('-h, --help');
    }
  });
});

describe('the largest 64-bit size', () => {
  it("virstor label -s 0xffffffffffffffff is taken, and refused by the class for FreeBSD's off_t (exit 1)", () => {
    const before = hashes();
    const r = geomctl(['virstor', 'label', '-s', '0xffffffffffffffff', '-m', '1M', 'thin', 'c0.img'], { cwd: s.dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: virtual size \d+ does not fit FreeBSD's off_t/);
    expect(hashes()).toEqual(before);
  });
});
