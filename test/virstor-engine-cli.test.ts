// The virstor engine verbs through the built bin/geomctl, on sparse image
// files: what a user types and sees, exit statuses, read-only verbs that
// change nothing, and a 1 PiB device handled in bounded memory.

import { createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage } from './helpers/cli.js';
import { ModelKernel, type ModelImage } from './model/virstor-kernel.js';

const M = 1024 * 1024;
const s = scratch('geomctl-virstor-cli-');
afterAll(() => s.cleanup());

function run(args: string[], input?: Buffer) {
  return geomctl(['-d', s.dir, ...args], { cwd: s.dir, ...(input ? { input } : {}) });
}

/** A run that succeeds; stderr may hold warnings only (the kernel's watermarks on these small images). */
function ok(args: string[], input?: Buffer) {
  const r = run(args, input);
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('geomctl: warning: '))).toEqual([]);
  return r;
}

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 17 + i * 3 + (i >> 12)) & 0xff || 5;
  return b;
}

function images(names: string[]): ModelImage[] {
  return names.map((n) => ({ name: n, data: readFileSync(s.path(n)) }));
}

describe('virstor verbs on image files', () => {
  beforeAll(() => {
    sparseImage(s.path('c0.img'), 12 * M);
    sparseImage(s.path('c1.img'), 8 * M);
    ok(['virstor', 'label', '-m', '1M', '-s', '256M', '--id', '42', 'vd', 'c0.img', 'c1.img']);
  });

  it('writes from a file and from a pipe, reads back, and the kernel model agrees', () => {
    const a = pattern(3 * M + 4096, 1);
    writeFileSync(s.path('a.bin'), a);
    const w = ok(['virstor', 'write', '-o', '10M', '-i', 'a.bin', 'vd']);
    expect(w.stderr).toBe('geomctl: warning: Component c0.img of vd is running out of free space (5 chunks left)\n');
    const b = pattern(5000, 2);
    ok(['virstor', 'write', '-o', '100M', 'vd'], b); // stdin, partial last sector
    const r = ok(['virstor', 'read', '-o', '10M', '-l', String(a.length), 'vd']);
    expect(r.stdoutBuffer.equals(a)).toBe(true);
    ok(['virstor', 'read', '-o', '100M', '-l', '5000', '-O', 'b.out', 'vd']);
    expect(readFileSync(s.path('b.out')).equals(b)).toBe(true);
    const kernel = ModelKernel.taste(images(['c0.img', 'c1.img']));
    expect(kernel.read(10 * M, a.length).equals(a)).toBe(true);
    expect(kernel.read(100 * M, 5000).equals(b)).toBe(true);
  });

  it('map, check, list and status describe the device without changing it', () => {
    const before = [sha256(s.path('c0.img')), sha256(s.path('c1.img'))];
    const map = ok(['virstor', 'map', 'vd']);
    expect(map.stdout.split('\n')[0]).toBe('Offset          Length          Mapped to       File');
    expect(map.stdout).toContain(`0xa00000        0x400000        0x200000        ${s.path('c0.img')} (chunks 10-13 -> component 0 chunks 2-5)`);
    const json = JSON.parse(ok(['--json', 'virstor', 'map', 'vd']).stdout);
    expect(json.command).toBe('virstor map');
    expect(json.extents).toHaveLength(2);
    expect(ok(['virstor', 'check', 'vd']).stdout).toContain('virstor vd: 5 allocated chunks, 0 errors, 0 warnings');
    const list = ok(['virstor', 'list', 'vd']).stdout;
    expect(list).toContain('Geom name: vd');
    expect(list).toContain('ChunksUsed: 7');
    expect(ok(['virstor', 'status']).stdout).toMatch(/virstor\/vd\s+\d+% physical free\s+c0.img/);
    expect([sha256(s.path('c0.img')), sha256(s.path('c1.img'))]).toEqual(before);
  });

  it('refuses a write that does not fit, changing nothing (exit 1, one line)', () => {
    const before = [sha256(s.path('c0.img')), sha256(s.path('c1.img'))];
    writeFileSync(s.path('big.bin'), Buffer.alloc(20 * M, 1));
    const r = run(['virstor', 'write', '-o', '128M', '-i', 'big.bin', 'vd']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("geomctl: virstor vd is out of physical space: this write needs 20 new chunks, 11 are free; add a component with 'geomctl virstor add vd IMAGE'\n");
    expect([sha256(s.path('c0.img')), sha256(s.path('c1.img'))]).toEqual(before);
  });

  it('adds a component, writes across it, removes an unused one, exports', () => {
    sparseImage(s.path('c2.img'), 16 * M);
    sparseImage(s.path('c3.img'), 8 * M);
    ok(['virstor', 'add', 'vd', 'c2.img', 'c3.img']);
    const w = ok(['virstor', 'write', '-o', '128M', '-i', 'big.bin', 'vd']);
    expect(w.stderr).toContain('geomctl: warning: Device vd running out of components (switching to 3/4: c2.img)\n');
    ok(['virstor', 'remove', 'vd', 'c3.img']);
    const rm = run(['virstor', 'remove', 'vd', 'c1.img']);
    expect(rm.status).toBe(1);
    expect(rm.stderr).toBe('geomctl: component c1.img of vd holds data and cannot be removed\n');
    ok(['virstor', 'export', '-O', 'vd.raw', 'vd']);
    const raw = readFileSync(s.path('vd.raw'));
    expect(raw.length).toBe(256 * M);
    expect(raw.subarray(128 * M, 148 * M).equals(Buffer.alloc(20 * M, 1))).toBe(true);
    expect(statSync(s.path('vd.raw')).blocks * 512).toBeLessThan(40 * M);
    expect(ModelKernel.taste(images(['c0.img', 'c1.img', 'c2.img'])).readAll().equals(raw)).toBe(true);
    const stop = ok(['virstor', 'stop', '-v', 'vd']);
    expect(stop.stdout).toContain('Device vd has 25 allocated chunks');
  });

  it('check fails with exit 1 on a corrupt map', () => {
    const c0 = readFileSync(s.path('c0.img'));
    c0.writeUInt16LE(1, 200 * 8);
    c0.writeUInt16LE(9, 200 * 8 + 2);
    writeFileSync(s.path('c0.img'), c0);
    const r = run(['virstor', 'check', 'vd']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('error: invalid map entry 200 points to component 9, but the device has 3');
    expect(r.stderr).toBe('geomctl: virstor vd has 1 error\n');
    const w = run(['virstor', 'write', '-o', '0', '-i', 'a.bin', 'vd']);
    expect(w.status).toBe(1);
    expect(w.stderr).toMatch(/^geomctl: virstor vd: invalid map entry 200 points to component 9, but the device has 3; run 'geomctl virstor check'\n$/);
  });
});

describe('process kills and injected errors (GEOMCTL_FAULT)', () => {
  const names = ['k0.img', 'k1.img', 'k2.img'];
  const K128 = 128 * 1024; // the device's chunk size

  /** Metadata, map and allocated contents as the kernel model sees them. */
  function signature(): string {
    const imgs = images(names.filter((n) => statSync(s.path(n), { throwIfNoEntry: false })));
    const h = createHash('sha256');
    for (const img of imgs) h.update(img.data.subarray(img.data.length - 512, img.data.length - 420));
    const k = ModelKernel.taste(imgs);
    h.update(`${k.components.length}`);
    k.map.forEach((e, v) => {
      if (e.flags & 1) h.update(`${v}:`).update(k.read(v * K128, K128));
    });
    return h.digest('hex');
  }

  function restore(state: Map<string, Buffer>): void {
    for (const [n, data] of state) writeFileSync(s.path(n), data);
    rmSync(s.path('k0.img.geomctl-undo'), { force: true });
  }

  function faultRuns(verb: string[], specs: string[]): { runs: number; before: number; after: number } {
    const present = names.filter((n) => statSync(s.path(n), { throwIfNoEntry: false }));
    const pristine = new Map(present.map((n) => [n, readFileSync(s.path(n))]));
    const before = signature();
    ok(verb);
    const after = signature();
    expect(after).not.toBe(before);
    const result = { runs: 0, before: 0, after: 0 };
    for (const spec of specs) {
      restore(pristine);
      const r = geomctl(['-d', s.dir, ...verb], { cwd: s.dir, env: { GEOMCTL_FAULT: spec } });
      if (r.status === 0) continue; // past the command's last write or barrier
      expect(r.stderr, spec).not.toMatch(/at .*\.js:\d+/); // no stack trace
      // The next write command rolls back whatever the failed one left half done.
      ok(['virstor', 'stop', 'kd']);
      const sig = signature();
      expect([before, after], `${spec}: neither before nor after`).toContain(sig);
      if (sig === before) result.before++;
      else result.after++;
      expect(run(['virstor', 'check', 'kd']).status, spec).toBe(0);
      result.runs++;
    }
    restore(pristine);
    return result;
  }

  const every = (n: number): string[] =>
    Array.from({ length: n }, (_v, i) => [`kill@write:${i + 1}`, `kill@barrier:${i + 1}`]).flat();

  beforeAll(() => {
    // 128k chunks (the smaller maxphys FreeBSD uses) keep the images and the write small.
    sparseImage(s.path('k0.img'), 8 * K128);
    sparseImage(s.path('k1.img'), 6 * K128);
    ok(['--maxphys', '128k', 'virstor', 'label', '-m', '128k', '-s', '8M', 'kd', 'k0.img', 'k1.img']);
    writeFileSync(s.path('k.bin'), pattern(5 * K128 - 512, 9));
  });

  it('write: killed at every write and barrier, or failing with EIO/ENOSPC', () => {
    const r = faultRuns(['virstor', 'write', '-o', '256k', '-i', 'k.bin', 'kd'], [...every(12), 'eio@write:1', 'eio@write:3', 'enospc@write:2', 'eio@barrier:1', 'eio@barrier:2']);
    console.log(`virstor write under GEOMCTL_FAULT: ${r.runs} runs, ${r.before} rolled back, ${r.after} complete`);
    expect(r.runs).toBeGreaterThan(10);
  });

  it('add: killed at every write and barrier', () => {
    sparseImage(s.path('k2.img'), 6 * K128);
    const r = faultRuns(['virstor', 'add', 'kd', 'k2.img'], every(8));
    console.log(`virstor add under GEOMCTL_FAULT: ${r.runs} runs, ${r.before} rolled back, ${r.after} complete`);
    expect(r.runs).toBeGreaterThan(5);
  });
});

/** maxRSS of a geomctl run, from inside the child (KiB → bytes). */
function rssOf(args: string[]): { status: number; stderr: string; rss: number } {
  const hook = "data:text/javascript,process.on('exit',()=>process.stderr.write('\\nMAXRSS='+process.resourceUsage().maxRSS+'\\n'))";
  const r = geomctl(['-d', s.dir, ...args], { cwd: s.dir, env: { NODE_OPTIONS: `--import=${hook}` } });
  const m = /MAXRSS=(\d+)/.exec(r.stderr);
  return { status: r.status, stderr: r.stderr.replace(/\n?MAXRSS=\d+\n/, ''), rss: m ? Number(m[1]) * 1024 : Infinity };
}

describe('a 1 PiB virtual device (a 2 GiB map) in bounded memory', () => {
  it('labels and takes scattered writes with --cache-limit 64M, each under 160 MiB of RSS', { timeout: 300_000 }, () => {
    sparseImage(s.path('p0.img'), 8 * 1024 * M);
    sparseImage(s.path('p1.img'), 64 * 1024 * M);
    const label = rssOf(['--cache-limit', '64M', 'virstor', 'label', '-s', '1P', '-m', '4M', 'peta', 'p0.img', 'p1.img']);
    expect(label.status, label.stderr).toBe(0);
    expect(label.rss).toBeLessThan(160 * M);
    const chunk = pattern(4 * M, 7);
    writeFileSync(s.path('chunk.bin'), chunk);
    for (const offset of ['0', '300T', '1023T']) {
      const w = rssOf(['--cache-limit', '64M', 'virstor', 'write', '-o', offset, '-i', 'chunk.bin', 'peta']);
      expect(w.status, w.stderr).toBe(0);
      expect(w.rss).toBeLessThan(160 * M);
    }
    const r = geomctl(['-d', s.dir, 'virstor', 'read', '-o', '300T', '-l', '4M', 'peta'], { cwd: s.dir });
    expect(r.stdoutBuffer.equals(chunk)).toBe(true);
  });
});
