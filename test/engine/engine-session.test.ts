// Sessions over real files (flush-engine.md, "Locks" and "Recovery"): open
// and lock once, roll back hot logs (write) or refuse (read-only), remove
// stale logs, and real process kills at every write and barrier of a
// transaction through the GEOMCTL_FAULT hook.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine.js';
import { GeomError, IoError } from '../../src/errors.js';
import { openImage } from '../../src/provider/file.js';
import { openSession, type SessionOptions } from '../../src/engine/session.js';
import { filled } from './engine-support.js';

const SIZE = 1024 * 1024;
let dir: string;
const opts = (o: Partial<SessionOptions> = {}): SessionOptions => ({ write: true, wait: 0, cacheLimit: 1 << 20, dirs: [], env: {}, ...o });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'geomctl-session-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function images(names: string[], seed: number): string[] {
  return names.map((n, i) => {
    const p = join(dir, n);
    writeFileSync(p, filled(SIZE, seed + i));
    return p;
  });
}

/** A hot log: metadata of both images half written by cycles beyond the cache limit, then abandoned. */
function leaveHotLog(paths: string[]): void {
  const providers = paths.map((p) => openImage(p, { write: true }));
  const e = createEngine({ providers, cacheLimit: 128 * 1024 });
  for (let off = 0; off < 512 * 1024; off += 64 * 1024) e.write(0, off, filled(64 * 1024, off + 1), 'META');
  e.write(1, SIZE - 512, filled(512, 3), 'VOLUME');
  e.write(1, 0, filled(4096, 4), 'META');
  e.abort();
  e.close();
}

describe('openSession', () => {
  it('opens, writes through the engine, commits, and leaves no log', () => {
    const [a, b] = images(['s1a.img', 's1b.img'], 10);
    const s = openSession([a!, b!], opts());
    expect(s.providers.map((p) => p.path)).toEqual([a, b]);
    s.engine.write(0, 4096, filled(512, 1), 'META');
    s.engine.write(1, SIZE - 512, filled(512, 2), 'VOLUME');
    s.engine.commit();
    s.close();
    expect(readFileSync(a!).subarray(4096, 4608).equals(filled(512, 1))).toBe(true);
    expect(readFileSync(b!).subarray(SIZE - 512).equals(filled(512, 2))).toBe(true);
    expect(existsSync(`${a}.geomctl-undo`)).toBe(false);
  });

  it('refuses one image named twice', () => {
    const [a] = images(['s2.img'], 20);
    const rel = relative(process.cwd(), a!);
    expect(() => openSession([a!, rel], opts())).toThrow(/named twice/);
    // Nothing stays open or locked.
    openSession([a!], opts()).close();
  });

  it('locks: a second writer fails with LOCKED until the first closes', () => {
    const [a] = images(['s3.img'], 30);
    const first = openSession([a!], opts());
    let err: unknown;
    try {
      openSession([a!], opts({ write: false }));
    } catch (x) {
      err = x;
    }
    expect((err as GeomError).code).toBe('LOCKED');
    first.close();
    openSession([a!], opts({ write: false })).close();
  });

  it('a read-only session refuses a hot log; a write session rolls it back', () => {
    const paths = images(['s4a.img', 's4b.img'], 40);
    const before = paths.map((p) => readFileSync(p));
    leaveHotLog(paths);
    const log = `${paths[0]}.geomctl-undo`;
    expect(existsSync(log)).toBe(true);
    expect(readFileSync(paths[0]!).equals(before[0]!)).toBe(false);
    let err: unknown;
    try {
      openSession([paths[1]!], opts({ write: false }));
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(GeomError);
    expect((err as GeomError).code).toBe('UNFINISHED');
    expect((err as GeomError).message).toBe(`${paths[1]} has an unfinished transaction (${log})`);
    expect((err as GeomError).hint).toMatch(/run any write command/);
    // Only b is named: the log beside a names b too, so a is rolled back as well.
    const s = openSession([paths[1]!], opts());
    expect(s.recovered).toEqual([log]);
    s.close();
    expect(existsSync(log)).toBe(false);
    paths.forEach((p, i) => expect(readFileSync(p).equals(before[i]!)).toBe(true));
  });

  it('finds a log in a tasted directory by the images it names', () => {
    const sub = join(dir, 'elsewhere');
    mkdirSync(sub);
    const [a] = images(['s5a.img'], 50);
    const [b] = images(['elsewhere/s5b.img'], 60);
    const before = [readFileSync(a!), readFileSync(b!)];
    leaveHotLog([b!, a!]); // the log goes beside b, in `elsewhere`
    openSession([a!], opts({ write: false })).close(); // not tasting `elsewhere`: unnoticed
    expect(() => openSession([a!], opts({ write: false, dirs: [sub] }))).toThrow(/unfinished transaction/);
    const s = openSession([a!], opts({ dirs: [sub] }));
    expect(s.recovered).toEqual([`${b}.geomctl-undo`]);
    s.close();
    expect(readFileSync(a!).equals(before[0]!)).toBe(true);
    expect(readFileSync(b!).equals(before[1]!)).toBe(true);
  });

  it('removes a stale log (torn header) in write sessions and ignores it in read-only ones', () => {
    const [a] = images(['s6.img'], 70);
    const log = `${a}.geomctl-undo`;
    writeFileSync(log, Buffer.from('GEOMUNDO torn'));
    openSession([a!], opts({ write: false })).close();
    expect(existsSync(log)).toBe(true);
    const s = openSession([a!], opts());
    expect(s.recovered).toEqual([]);
    s.close();
    expect(existsSync(log)).toBe(false);
  });

  it('GEOMCTL_FAULT makes the N-th barrier fail; the next session rolls back', () => {
    const paths = images(['s7a.img', 's7b.img'], 80);
    const before = paths.map((p) => readFileSync(p));
    // Barriers: log fsync (1), its directory (2), then the images after META.
    const s = openSession(paths, opts({ env: { GEOMCTL_FAULT: 'eio@barrier:3' } }));
    s.engine.write(0, 0, filled(8192, 1), 'META');
    s.engine.write(1, SIZE - 512, filled(512, 2), 'VOLUME');
    expect(() => s.engine.commit()).toThrow(IoError);
    expect(s.engine.critical).toBe(true);
    s.close();
    expect(readFileSync(paths[0]!).equals(before[0]!)).toBe(false);
    const again = openSession(paths, opts());
    expect(again.recovered).toHaveLength(1);
    again.close();
    paths.forEach((p, i) => expect(readFileSync(p).equals(before[i]!)).toBe(true));
  });
});

// --- real process kills ---------------------------------------------------------

const CHILD = `
import { openSession } from ${JSON.stringify(resolve(__dirname, '../../src/engine/session.ts'))};
const [a, b] = process.argv.slice(2);
const fill = (n, seed) => { const x = Buffer.alloc(n); for (let i = 0; i < n; i++) x[i] = (i * 31 + seed * 17) & 0xff; return x; };
const s = openSession([a, b], { write: true, wait: 5, cacheLimit: 192 * 1024, dirs: [] });
const size = s.providers[0].size;
for (let off = 0; off < 512 * 1024; off += 32 * 1024) s.engine.write(0, off, fill(32 * 1024, off / 1024 + 1), 'META');
s.engine.write(1, 8192, fill(16384, 5), 'META');
s.engine.write(1, 600 * 1024, fill(65536, 6), 'DATA');
s.engine.write(0, size - 512, fill(512, 7), 'VOLUME');
s.engine.write(1, size - 512, fill(512, 8), 'VOLUME');
s.engine.commit();
s.close();
process.stdout.write('done');
`;

describe('process kills (GEOMCTL_FAULT=kill@...)', () => {
  it('killed at every write and barrier, the next session finds all-before or all-after', () => {
    const cache = resolve(__dirname, '../../node_modules/.cache/geomctl-engine-test');
    mkdirSync(cache, { recursive: true });
    const entry = join(cache, 'child-src.mjs');
    writeFileSync(entry, CHILD);
    const bundle = join(cache, 'child.mjs');
    buildSync({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: bundle, external: ['fs-ext'], logLevel: 'error' });

    const names = ['k0.img', 'k1.img'];
    const fresh = (): string[] => images(names, 90);
    const spawn = (fault: string | undefined, paths: string[]) =>
      spawnSync(process.execPath, [bundle, ...paths], { encoding: 'utf8', env: { ...process.env, GEOMCTL_FAULT: fault ?? '' } });
    const paths = fresh();
    const before = paths.map((p) => readFileSync(p));
    const clean = spawn(undefined, paths);
    expect(clean.stderr).toBe('');
    expect(clean.stdout).toBe('done');
    const after = paths.map((p) => readFileSync(p));
    const meta = (b: Buffer): Buffer => Buffer.concat([b.subarray(0, 512 * 1024), b.subarray(SIZE - 512)]);

    let kills = 0;
    let good = 0;
    for (const on of ['write', 'barrier'] as const) {
      for (let n = 1; ; n++) {
        fresh();
        const r = spawn(`kill@${on}:${n}`, paths);
        if (r.signal !== 'SIGKILL') {
          expect(r.stdout).toBe('done');
          break;
        }
        kills++;
        const s = openSession(paths, opts());
        s.close();
        const now = paths.map((p) => readFileSync(p));
        const isBefore = now.every((b, i) => meta(b).equals(meta(before[i]!)));
        const isAfter = now.every((b, i) => meta(b).equals(meta(after[i]!)));
        if (isBefore || isAfter) good++;
        expect(existsSync(`${paths[0]}.geomctl-undo`)).toBe(false);
      }
    }
    console.log(`process kills: ${kills}, all-or-nothing after the next open: ${good}`);
    expect(good).toBe(kills);
    expect(kills).toBeGreaterThan(10);
  });
});
