// One virstor image on its own (src/virstor/image.ts): `geomctl taste` judges
// it by the rules tasting a device applies, in the same words, and
// `virstor clear` clears only images that hold virstor metadata.

import { closeSync, copyFileSync, openSync, readSync, writeSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';

const s = scratch('geomctl-virstor-image-');
afterAll(() => s.cleanup());
const run = (args: string[]) => geomctl(args, { cwd: s.dir });

describe('taste of a virstor image the kernel would ignore', () => {
  it('a hardcoded name that is not the image: the words of the device warning; -H takes it', () => {
    sparseImage(s.path('h0.img'), 4 << 20);
    expect(run(['virstor', 'label', '-h', '-m', '64k', '-s', '16M', 'hv', 'h0.img']).status).toBe(0);
    copyFileSync(s.path('h0.img'), s.path('renamed.img'));
    const reason = "its metadata hardcodes provider 'h0.img', not 'renamed.img' (use -H to accept it)";
    const taste = run(['taste', 'h0.img', 'renamed.img']);
    expect(taste.status).toBe(0);
    expect(taste.stdout).toBe(`h0.img: VIRSTOR (sector size 512), hv\nrenamed.img: VIRSTOR (sector size 512), hv; ignored: ${reason}\n`);
    const list = run(['-d', '.', 'virstor', 'list', '-a']);
    expect(list.stderr).toContain(`renamed.img: ignored: ${reason}`);
    expect(run(['-H', 'taste', 'renamed.img']).stdout).toBe('renamed.img: VIRSTOR (sector size 512), hv\n');
  });

  it('a hardcoded name with /dev/ before it is the image (g_compare_names): taste and open both take it', () => {
    sparseImage(s.path('d0.img'), 4 << 20);
    expect(run(['virstor', 'label', '-h', '-m', '64k', '-s', '16M', 'dv', 'd0.img']).status).toBe(0);
    // md_provider (16 bytes at offset 54 of the last sector) rewritten as FreeBSD would record it: /dev/d0.img.
    const fd = openSync(s.path('d0.img'), 'r+');
    const field = Buffer.alloc(16);
    field.write('/dev/d0.img');
    writeSync(fd, field, 0, 16, (4 << 20) - 512 + 54);
    closeSync(fd);
    expect(run(['dump', 'd0.img']).stdout).toContain('/dev/d0.img');
    expect(run(['taste', 'd0.img']).stdout).toBe('d0.img: VIRSTOR (sector size 512), dv\n');
    const list = run(['-d', '.', 'virstor', 'list', '-a', 'dv']);
    expect(list.stderr).toBe('');
    expect(list.status).toBe(0);
    expect(list.stdout).toContain('d0.img');
  });

  it('a provsize that is not the image size', () => {
    sparseImage(s.path('p0.img'), 4 << 20);
    expect(run(['virstor', 'label', '-m', '64k', '-s', '16M', 'pv', 'p0.img']).status).toBe(0);
    sparseImage(s.path('grown.img'), (4 << 20) + 512);
    // The metadata sector of p0.img, now the last sector of a larger image.
    const sector = Buffer.alloc(512);
    const from = openSync(s.path('p0.img'), 'r');
    readSync(from, sector, 0, 512, (4 << 20) - 512);
    closeSync(from);
    const to = openSync(s.path('grown.img'), 'r+');
    writeSync(to, sector, 0, 512, 4 << 20);
    closeSync(to);
    const taste = run(['taste', 'grown.img']);
    expect(taste.stdout).toBe(`grown.img: VIRSTOR (sector size 512), pv; ignored: its metadata records provsize ${4 << 20} but the image has ${(4 << 20) + 512} bytes (the kernel ignores it too)\n`);
  });
});

describe('virstor clear', () => {
  it('clears a component; an image of another class is named and left as it was (exit 1)', () => {
    sparseImage(s.path('c0.img'), 4 << 20);
    sparseImage(s.path('d.img'), 256 << 20);
    expect(run(['virstor', 'label', '-m', '64k', '-s', '16M', 'cv', 'c0.img']).status).toBe(0);
    expect(run(['journal', 'label', '-s', '100M', 'd.img']).status).toBe(0);
    const before = sha256(s.path('d.img'));
    const r = run(['virstor', 'clear', '-v', 'c0.img', 'd.img']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('Metadata cleared on c0.img.\n');
    expect(r.stderr).toBe("geomctl: d.img: journal metadata, not virstor; use 'geomctl journal' verbs or 'geomctl dump d.img'\n");
    expect(run(['taste', 'c0.img']).stdout).toBe('c0.img: no GEOM metadata\n');
    expect(sha256(s.path('d.img'))).toBe(before);
  });
});
