// Black-box: journal label, clear and dump through the built bin/geomctl, on
// sparse image files. The dump of a 4 GiB image labeled with --id is cli.md's
// example, byte for byte (test/golden/journal-dump.txt).

import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sparseImage } from '../helpers/cli.js';

const M = 1024 * 1024;
const G = 1024 * M;

let s: ReturnType<typeof scratch>;
beforeAll(() => {
  s = scratch();
});
afterAll(() => s.cleanup());

function lastSector(path: string, size: number, ss = 512): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(ss);
    readSync(fd, b, 0, ss, size - ss);
    return b;
  } finally {
    closeSync(fd);
  }
}

function run(args: string[]) {
  return geomctl(args, { cwd: s.dir });
}

function oneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0] as string;
}

describe('geomctl journal label / dump / clear', () => {
  it("labels a 4 GiB image and dumps cli.md's example", () => {
    sparseImage(s.path('data.img'), 4 * G);
    const label = run(['journal', 'label', '-v', '--id', '1886289645', 'data.img']);
    expect(label.stderr).toBe('');
    expect(label.status).toBe(0);
    expect(label.stdout).toBe('Metadata value stored on data.img.\n');
    const dump = run(['journal', 'dump', 'data.img']);
    expect(dump.status).toBe(0);
    expect(dump.stdout).toBe(readFileSync(join(__dirname, '..', 'golden', 'journal-dump.txt'), 'utf8'));
  });

  it('dumps JSON', () => {
    const r = run(['--json', 'journal', 'dump', 'data.img']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { command: string; images: { path: string; sectorSize: number; metadata: Record<string, unknown> }[] };
    expect(doc.command).toBe('journal dump');
    expect(doc.images[0]).toMatchObject({ path: 'data.img', sectorSize: 512, metadata: { id: 1886289645, type: 3, jstart: 3221224960, jend: 4294966784, md5Hash: '6e2a2547ab2a73dfeb3ed89553fbcf49' } });
  });

  it('refuses with one line and leaves the image alone', () => {
    sparseImage(s.path('small.img'), 200 * M);
    const before = lastSector(s.path('small.img'), 200 * M);
    const r = run(['journal', 'label', '-s', '50M', 'small.img']);
    expect(r.status).toBe(1);
    expect(oneErrorLine(r.stderr)).toBe('geomctl: small.img: Journal too small: -s 52428800 is below 104857600 (100M); use -s 100M or more');
    const r2 = run(['journal', 'label', 'small.img']);
    expect(r2.status).toBe(1);
    expect(oneErrorLine(r2.stderr)).toBe('geomctl: small.img: Provider too small for journalling. You can try smaller jsize (default is 1073741824).');
    expect(lastSector(s.path('small.img'), 200 * M).equals(before)).toBe(true);
  });

  it('-s with two images is a usage error', () => {
    sparseImage(s.path('d2.img'), 64 * M);
    sparseImage(s.path('j2.img'), 64 * M);
    const r = run(['journal', 'label', '-s', '100M', 'd2.img', 'j2.img']);
    expect(r.status).toBe(2);
    expect(oneErrorLine(r.stderr)).toMatch(/^geomctl: jsize argument is valid only for all-in-one configuration; /);
  });

  it('labels two images with -c -h and dumps both', () => {
    const r = run(['journal', 'label', '-c', '-h', 'd2.img', 'j2.img']);
    expect(r.status).toBe(0);
    const dump = run(['journal', 'dump', 'd2.img', 'j2.img']);
    expect(dump.status).toBe(0);
    expect(dump.stdout).toMatch(/^Metadata on d2\.img:\n[\s\S]*      type: 1\n[\s\S]*     flags: 3\nhcprovider: d2\.img\n[\s\S]*\n\nMetadata on j2\.img:\n[\s\S]*      type: 2\n[\s\S]*hcprovider: j2\.img\n  provsize: 67108864\n  MD5 hash: [0-9a-f]{32}\n\n$/);
  });

  it('says "MD5 hash mismatch for X, skipping." and goes on with the other images', () => {
    sparseImage(s.path('bad.img'), 2 * G);
    expect(run(['journal', 'label', 'bad.img']).status).toBe(0);
    const fd = openSync(s.path('bad.img'), 'r+');
    writeSync(fd, Buffer.from([0x99]), 0, 1, 2 * G - 512 + 30); // inside md_jstart
    closeSync(fd);
    const r = run(['journal', 'dump', 'bad.img', 'data.img']);
    expect(r.status).toBe(1);
    expect(oneErrorLine(r.stderr)).toBe('geomctl: MD5 hash mismatch for bad.img, skipping.');
    expect(r.stdout).toMatch(/^Metadata on data\.img:\n/);
  });

  it('clears journal metadata (-v) and reports an image without it', () => {
    sparseImage(s.path('plain.img'), M);
    const r = run(['journal', 'clear', '-v', 'data.img', 'plain.img']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('Metadata cleared on data.img.\n');
    expect(oneErrorLine(r.stderr)).toBe('geomctl: Cannot clear metadata on plain.img: no GEOM::JOURNAL metadata in its last sector');
    expect(lastSector(s.path('data.img'), 4 * G).every((b) => b === 0)).toBe(true);
    expect(run(['journal', 'dump', 'data.img']).status).toBe(1);
  });
});
