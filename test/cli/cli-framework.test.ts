// Black-box tests of the command framework and the bad-input rules of the
// foundation issue, through the built bin/geomctl.

import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';
import { tool } from '../helpers/tools.js';

const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };

let s: ReturnType<typeof scratch>;
beforeAll(() => {
  s = scratch();
});
afterAll(() => s.cleanup());

function oneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^geomctl: /);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  return lines[0] as string;
}

describe('global behaviour', () => {
  it('--version prints the package version', () => {
    const r = geomctl(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('no arguments prints help and exits 2', () => {
    const r = geomctl([]);
    expect(r.status).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/Usage: geomctl/);
  });

  it('--help lists the classes and top-level verbs', () => {
    const r = geomctl(['--help']);
    expect(r.status).toBe(0);
    for (const word of ['journal', 'virstor', 'list', 'status', 'dump', 'taste', 'demo', '--json', '--cache-limit']) {
      expect(r.stdout).toContain(word);
    }
  });

  it('an unknown verb is a usage error (exit 2, one line)', () => {
    const r = geomctl(['journal', 'bogus']);
    expect(r.status).toBe(2);
    expect(oneErrorLine(r.stderr)).toMatch(/unknown command 'bogus'/);
  });

  it('an unknown option is a usage error naming the option', () => {
    const r = geomctl(['taste', '--frobnicate', 'x.img']);
    expect(r.status).toBe(2);
    expect(oneErrorLine(r.stderr)).toMatch(/--frobnicate/);
  });

  it.each([['12Q'], ['-5'], ['1.5G'], ['']])('a bad size string (%j) is a usage error naming the option', (bad) => {
    const r = geomctl(['--cache-limit', bad, 'list']);
    expect(r.status).toBe(2);
    expect(oneErrorLine(r.stderr)).toMatch(/--cache-limit/);
  });

  it('global options are accepted after the verb too', () => {
    const img = sparseImage(s.path('plain-after.img'), 1 << 20);
    const r = geomctl(['taste', img, '--json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { command: string; images: { path: string; class: string | null }[] };
    expect(doc.command).toBe('taste');
    expect(doc.images[0]).toMatchObject({ path: img, class: null });
  });
});

describe('bad images', () => {
  it('a path that does not exist', () => {
    const r = geomctl(['dump', s.path('missing.img')]);
    expect(r.status).toBe(1);
    expect(oneErrorLine(r.stderr)).toContain('missing.img');
  });

  it('a directory', () => {
    const dir = s.path('adir');
    mkdirSync(dir, { recursive: true });
    const r = geomctl(['dump', dir]);
    expect(r.status).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/adir.*director/);
  });

  it.each([[0], [100]])('a %d-byte file', (size) => {
    const img = s.path(`tiny-${size}.img`);
    writeFileSync(img, Buffer.alloc(size, 7));
    const before = sha256(img);
    const r = geomctl(['dump', img]);
    expect(r.status).toBe(1);
    expect(oneErrorLine(r.stderr)).toContain(`tiny-${size}.img`);
    expect(sha256(img)).toBe(before);
  });

  it('an image without GEOM metadata: dump fails, taste reports it, nothing changes', () => {
    const img = sparseImage(s.path('plain.img'), 4 << 20, Buffer.from('not a geom'));
    const before = sha256(img);
    const dump = geomctl(['dump', img]);
    expect(dump.status).toBe(1);
    expect(oneErrorLine(dump.stderr)).toMatch(/plain\.img: no GEOM metadata/);
    const taste = geomctl(['taste', img]);
    expect(taste.status).toBe(0);
    expect(taste.stdout).toMatch(/plain\.img: no GEOM metadata/);
    expect(sha256(img)).toBe(before);
  });

  it('one bad image among good ones: the others are processed, exit 1', () => {
    const good = sparseImage(s.path('good.img'), 1 << 20);
    const r = geomctl(['taste', s.path('nope.img'), good]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('good.img: no GEOM metadata');
    expect(oneErrorLine(r.stderr)).toContain('nope.img');
  });

  it('a file without read permission (as non-root when possible)', () => {
    const img = sparseImage(s.path('noread.img'), 1 << 20);
    chmodSync(img, 0o000);
    // root reads anything: run the check as nobody when we are root.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    chmodSync(s.dir, 0o755);
    const r = geomctl(['dump', img], asNobody);
    expect(r.status).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/noread\.img.*permission/i);
  });

  it.each([['12Q'], ['-5']])('journal label -s %s is a usage error naming -s; the image is untouched', (bad) => {
    const img = sparseImage(s.path(`badsize${bad}.img`), 256 << 20);
    const before = sha256(img);
    const r = geomctl(['journal', 'label', '-s', bad, img]);
    expect(r.status).toBe(2);
    expect(oneErrorLine(r.stderr)).toMatch(/-s/);
    expect(sha256(img)).toBe(before);
  });

  it('a file without write permission: a write verb fails naming it, nothing changes', () => {
    const img = sparseImage(s.path('nowrite.img'), 256 << 20);
    chmodSync(img, 0o444);
    chmodSync(s.dir, 0o755);
    const before = sha256(img);
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = geomctl(['journal', 'label', '-s', '128M', img], asNobody);
    expect(r.status).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/nowrite\.img.*permission/i);
    expect(sha256(img)).toBe(before);
  });

  it('list and status on a directory with no geoms print nothing and succeed', () => {
    const dir = s.path('empty');
    mkdirSync(dir, { recursive: true });
    for (const verb of ['list', 'status']) {
      const r = geomctl(['-d', dir, verb]);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
    }
  });
});

describe('locks', () => {
  const flock = tool('flock');
  it.skipIf(!flock)('an image locked by another program: clear message naming it and its pid, exit 1', async () => {
    const img = sparseImage(s.path('locked.img'), 1 << 20);
    // flock(1) (util-linux) takes the lock, says so, and holds it while its child
    // sleeps; in a process group of its own, so that both can be killed.
    const holder = spawn(flock!, ['-x', img, '-c', 'echo locked; exec sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    try {
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      const r = geomctl(['dump', img]);
      expect(r.status).toBe(1);
      expect(oneErrorLine(r.stderr)).toContain(`locked.img is in use by flock (pid ${holder.pid})`);
    } finally {
      process.kill(-holder.pid!, 'SIGKILL');
    }
    await new Promise((resolve) => holder.once('exit', resolve));
    // gone with its process: the next command gets the image
    const r = geomctl(['taste', img]);
    expect(r.status).toBe(0);
  });
});

describe('top-level verbs on images with metadata', () => {
  it('taste, dump, list and status answer for a journal and a virstor device', () => {
    const dir = s.path('geoms');
    mkdirSync(dir, { recursive: true });
    const data = sparseImage(`${dir}/data.img`, 256 << 20);
    const c0 = sparseImage(`${dir}/c0.img`, 64 << 20);
    const c1 = sparseImage(`${dir}/c1.img`, 64 << 20);
    const plain = sparseImage(`${dir}/plain.img`, 1 << 20);
    expect(geomctl(['journal', 'label', '--id', '1886289645', '-s', '128M', data]).status).toBe(0);
    expect(geomctl(['-d', dir, 'virstor', 'label', '-s', '1G', 'thin', c0, c1]).status).toBe(0);

    const taste = geomctl(['taste', data, c0, plain]);
    expect(taste.status).toBe(0);
    expect(taste.stdout).toMatch(/data\.img: JOURNAL \(sector size 512\)/);
    expect(taste.stdout).toMatch(/c0\.img: VIRSTOR \(sector size 512\)/);
    expect(taste.stdout).toMatch(/plain\.img: no GEOM metadata/);

    const dump = geomctl(['dump', data, c0]);
    expect(dump.status).toBe(0);
    expect(dump.stdout).toContain(`Metadata on ${data}:`);
    expect(dump.stdout).toContain('     magic: GEOM::JOURNAL');
    expect(dump.stdout).toContain(`Metadata on ${c0}:`);
    expect(dump.stdout).toMatch(/Magic string: GEOM::VIRSTOR/);

    const list = geomctl(['-d', dir, 'list']);
    expect(list.status).toBe(0);
    expect(list.stdout).toContain('Geom name: gjournal 1886289645');
    expect(list.stdout).toContain('Geom name: thin');

    const status = geomctl(['-d', dir, '--json', 'status']);
    expect(status.status).toBe(0);
    const doc = JSON.parse(status.stdout) as { command: string; geoms: { class: string }[] };
    expect(doc.command).toBe('status');
    expect(doc.geoms.map((g) => g.class).sort()).toEqual(['JOURNAL', 'VIRSTOR']);
  });
});
