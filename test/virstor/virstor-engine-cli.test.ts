// The virstor engine verbs through the built bin/geomctl, on sparse image
// files: what a user types and sees, exit statuses, read-only verbs that
// change nothing, and a 1 PiB device handled in bounded memory.

import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';
import { describeCounts, every, faultRuns, filesSignature, snapshotFiles, undoLogs, type FaultCounts } from '../helpers/faults.js';
import { ModelKernel, modelDecodeMetadata, type ModelImage } from '../model/virstor-kernel.js';

const M = 1024 * 1024;
const s = scratch('geomctl-virstor-cli-');
afterAll(() => s.cleanup());

function run(args: string[], input?: Buffer) {
  return geomctl(['-d', s.dir, ...args], { cwd: s.dir, ...(input ? { input } : {}) });
}

/**
 * A run that succeeds; stderr may hold warnings only (the kernel's watermarks
 * on these small images), and after a kill the line saying what was rolled back.
 */
function ok(args: string[], input?: Buffer) {
  const r = run(args, input);
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('geomctl: warning: ') && !l.startsWith('geomctl: rolled back an unfinished transaction '))).toEqual([]);
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

  /**
   * `verb` under each fault spec; after each failure the next write command
   * (`virstor stop kd` unless `next` says otherwise) rolls back and `virstor
   * check kd` passes.
   */
  function kdFaultRuns(verb: string[], specs: string[], next: () => void = () => ok(['virstor', 'stop', 'kd'])): FaultCounts {
    const restore = snapshotFiles(s.dir, names);
    const before = signature();
    ok(verb);
    const after = signature();
    expect(after).not.toBe(before);
    return faultRuns(
      {
        run: (spec) => geomctl(['-d', s.dir, ...verb], { cwd: s.dir, env: { GEOMCTL_FAULT: spec } }),
        restore,
        // The next write command rolls back whatever the failed one left half done.
        next,
        signature,
        before,
        after,
        check: (spec) => expect(run(['virstor', 'check', 'kd']).status, spec).toBe(0),
      },
      specs,
    );
  }

  beforeAll(() => {
    // 128k chunks (the smaller maxphys FreeBSD uses) keep the images and the write small.
    sparseImage(s.path('k0.img'), 8 * K128);
    sparseImage(s.path('k1.img'), 6 * K128);
    ok(['--maxphys', '128k', 'virstor', 'label', '-m', '128k', '-s', '8M', 'kd', 'k0.img', 'k1.img']);
    writeFileSync(s.path('k.bin'), pattern(5 * K128 - 512, 9));
  });

  it('write: killed at every write and barrier, or failing with EIO/ENOSPC', () => {
    const r = kdFaultRuns(['virstor', 'write', '-o', '256k', '-i', 'k.bin', 'kd'], [...every(12), 'eio@write:1', 'eio@write:3', 'enospc@write:2', 'eio@barrier:1', 'eio@barrier:2']);
    console.log(describeCounts('virstor write', r));
    expect(r.runs).toBeGreaterThan(10);
    expect(r.exhausted).toEqual({ write: true, barrier: true });
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
  });

  it('add: killed at every write and barrier', () => {
    sparseImage(s.path('k2.img'), 6 * K128);
    const r = kdFaultRuns(['virstor', 'add', 'kd', 'k2.img'], every(8));
    console.log(describeCounts('virstor add', r));
    expect(r.runs).toBeGreaterThan(5);
    expect(r.exhausted).toEqual({ write: true, barrier: true });
  });

  it('remove: killed at every write and barrier, or failing with ENOSPC', () => {
    ok(['virstor', 'add', 'kd', 'k2.img']); // the add test leaves the device as it found it
    const r = kdFaultRuns(['virstor', 'remove', 'kd', 'k2.img'], [...every(8), 'enospc@write:3']);
    console.log(describeCounts('virstor remove', r));
    expect(r.runs).toBeGreaterThan(8);
    expect(r.exhausted).toEqual({ write: true, barrier: true });
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
  });

  it('stop: rewriting stale metadata, killed at every write and barrier', () => {
    // As a kernel crash leaves them: chunk_next back at chunk_reserved, no ALLOCATED or CURRENT flag.
    for (const n of names.filter((x) => statSync(s.path(x), { throwIfNoEntry: false }))) {
      const data = readFileSync(s.path(n));
      const md = data.subarray(data.length - 512);
      md.writeUInt32LE(md.readUInt16LE(88), 84);
      md.writeUInt16LE(0, 90);
      writeFileSync(s.path(n), data);
    }
    // stop itself (like any write) would fix the metadata: an empty write only rolls back.
    const r = kdFaultRuns(['virstor', 'stop', 'kd'], every(8), () => ok(['virstor', 'write', '-o', '0', 'kd'], Buffer.alloc(0)));
    console.log(describeCounts('virstor stop', r));
    expect(r.runs).toBeGreaterThan(5);
    expect(r.exhausted).toEqual({ write: true, barrier: true });
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
  });

  it('label over an older device: killed at every write and barrier', () => {
    const lnames = ['l0.img', 'l1.img'];
    sparseImage(s.path('l0.img'), 10 * K128);
    sparseImage(s.path('l1.img'), 10 * K128);
    ok(['--maxphys', '128k', 'virstor', 'label', '-m', '128k', '-s', '16M', '--id', '5', 'old', 'l0.img', 'l1.img']);
    const verb = ['--maxphys', '128k', 'virstor', 'label', '-f', '-m', '256k', '-s', '16M', '--id', '7', 'kl', 'l0.img', 'l1.img'];
    const restore = snapshotFiles(s.dir, lnames);
    const signature = (): string => filesSignature(s.dir, lnames);
    let torn: string | undefined;
    const before = signature();
    ok(verb);
    const after = signature();
    // Independently: the model reads the new device's metadata, chunk size 256k, on both images.
    const k = ModelKernel.taste(images(lnames));
    expect([k.name, k.id, k.chunkSize, k.components.length, k.virsize]).toEqual(['kl', 7, 256 * 1024, 2, 16 * M]);
    const r = faultRuns(
      {
        run: (spec) => geomctl(['-d', s.dir, ...verb], { cwd: s.dir, env: { GEOMCTL_FAULT: spec } }),
        restore,
        // A write command that finds no usable device by its name rolls back the transactions
        // covering the images it tasted and looks again — the images may all carry the new name,
        // not yet committed: `stop old` works unless the relabel was committed, and then `stop kl` does.
        next: (spec) => {
          const o = run(['virstor', 'stop', 'old']);
          if (o.status === 0) return;
          expect(o.stderr, spec).toBe('geomctl: no virstor device named old found; name the directory that holds its images with -d DIR\n');
          expect(undoLogs(s.dir), spec).toEqual([]);
          ok(['virstor', 'stop', 'kl']);
        },
        // Read-only listings refuse images half way through the relabel (once: a torn one).
        atFailure: (spec) => {
          if (torn || undoLogs(s.dir).length === 0) return;
          const [n0, n1] = lnames.map((n) => modelDecodeMetadata(readFileSync(s.path(n)).subarray(10 * K128 - 512)).name);
          if (n0 === n1) return;
          torn = spec;
          for (const args of [['virstor', 'status'], ['status']]) {
            const r = run(args);
            expect(r.status, `${spec}: ${args.join(' ')}`).toBe(1);
            expect(r.stderr, `${spec}: ${args.join(' ')}`).toContain('l0.img has an unfinished transaction');
          }
        },
        signature,
        before,
        after,
        check: (spec, effect) => expect(run(['virstor', 'check', effect === 'before' ? 'old' : 'kl']).status, spec).toBe(0),
      },
      every(8),
    );
    console.log(describeCounts('virstor label', r));
    expect(torn, 'no kill left the images torn between the two devices').toBeDefined();
    expect(r.runs).toBeGreaterThan(6);
    expect(r.exhausted).toEqual({ write: true, barrier: true });
    expect(r.before).toBeGreaterThan(0);
    expect(r.after).toBeGreaterThan(0);
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
