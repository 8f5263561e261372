// Undo logs belong to the file, not to the path (providers.md, "Crash safety
// across layers"; issue 9, item 1), through the built bin/geomctl and
// GEOMCTL_FAULT kills. A transaction killed through one path to its images is
// found through every other: read-only verbs refuse with "unfinished
// transaction", writing verbs roll it back, and once rolled back it is never
// rolled back again over a later committed write. Paths: symlinks, relative
// and absolute, `..`, hard links in another directory, a bind mount of the
// file under another directory (when `mount --bind` works: root). And the
// registry that leads hard links and bind mounts to the log
// (src/engine/undo-registry.ts): where it lives, that a committed transaction
// leaves nothing in it, dangling pointers, and a registry that cannot be
// written.

import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registryDir } from '../../src/engine/undo-registry.js';
import { geomctl, scratch, sha256, sparseImage, type CliResult } from '../helpers/cli.js';
import { undoLogs } from '../helpers/faults.js';

const M = 1024 * 1024;
const s = scratch('geomctl-identity-');
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.reverse()) spawnSync('umount', [m]);
  s.cleanup();
});

/** A fresh directory for one case, with its own undo log registry (GEOMCTL_STATE_DIR). */
function caseDir(name: string): { dir: string; state: string; run(args: string[], env?: Record<string, string>): CliResult; ok(args: string[]): CliResult } {
  const dir = s.path(name);
  mkdirSync(dir);
  const state = join(dir, '.state');
  const run = (args: string[], env: Record<string, string> = {}): CliResult => geomctl(args, { cwd: dir, env: { GEOMCTL_STATE_DIR: state, ...env } });
  const ok = (args: string[]): CliResult => {
    const r = run(args);
    expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  return { dir, state, run, ok };
}

const UNFINISHED = /has an unfinished transaction \(.*\.geomctl-undo\); run any write command on it to roll it back/;

function refuses(r: CliResult, what: string): void {
  expect(r.stderr, what).toMatch(UNFINISHED);
  expect(r.status, what).toBe(1);
}

/** The random bytes of a file made for a case. */
function randomFile(path: string, size: number, seed: number): Buffer {
  const data = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data.writeUInt32LE(x >>> 0, i);
  }
  writeFileSync(path, data);
  return data;
}

describe('issue 9, item 1: an undo log made through a symlink', () => {
  it('virstor: the real paths refuse or roll back the write killed through links/, and a later stop through links/ loses nothing', () => {
    const c = caseDir('virstor-symlink');
    sparseImage(join(c.dir, 'c0.img'), 64 * M);
    sparseImage(join(c.dir, 'c1.img'), 64 * M);
    c.ok(['virstor', 'label', '-s', '200M', 'vz', 'c0.img', 'c1.img']);
    mkdirSync(join(c.dir, 'links'));
    symlinkSync('../c0.img', join(c.dir, 'links/c0.img'));
    symlinkSync('../c1.img', join(c.dir, 'links/c1.img'));
    randomFile(join(c.dir, 'r20'), 20 * M, 20);
    const r4 = randomFile(join(c.dir, 'r4'), 4 * M, 4);

    const killed = c.run(['-d', 'links', 'virstor', 'write', '-o', '100M', '-i', 'r20', 'vz'], { GEOMCTL_FAULT: 'kill@write:23' });
    expect(killed.status, killed.stderr).toBe(128);
    // The log lies beside the real path, whichever path the command was given.
    expect(undoLogs(join(c.dir, 'links'))).toEqual([]);
    expect(undoLogs(c.dir)).toEqual(['c0.img.geomctl-undo']);

    // Through the real paths: read-only verbs refuse, changing nothing.
    const hashes = [sha256(join(c.dir, 'c0.img')), sha256(join(c.dir, 'c1.img'))];
    refuses(c.run(['virstor', 'check', 'vz']), 'virstor check');
    refuses(c.run(['virstor', 'read', '-o', '100M', '-l', '1M', 'vz']), 'virstor read');
    refuses(c.run(['virstor', 'list', 'vz']), 'virstor list');
    refuses(c.run(['virstor', 'status']), 'virstor status');
    refuses(c.run(['virstor', 'dump', 'c0.img']), 'virstor dump');
    refuses(c.run(['dump', 'c1.img']), 'dump');
    expect([sha256(join(c.dir, 'c0.img')), sha256(join(c.dir, 'c1.img'))]).toEqual(hashes);

    // A write through the real paths rolls the killed one back first, then commits.
    c.ok(['virstor', 'write', '-o', '140M', '-i', 'r4', 'vz']);
    expect(undoLogs(c.dir)).toEqual([]);
    // A later command through the symlinks finds nothing to roll back: the committed write stays.
    c.ok(['-d', 'links', 'virstor', 'stop', 'vz']);
    const read = c.ok(['virstor', 'read', '-o', '140M', '-l', '4M', 'vz']);
    expect(read.stdoutBuffer.equals(r4)).toBe(true);
    expect(c.ok(['virstor', 'check', 'vz']).stderr).toBe('');
  });

  it('journal: a two-image label killed through links/ is rolled back by the real paths, and a sync through links/ keeps the new label', () => {
    const c = caseDir('journal-symlink');
    sparseImage(join(c.dir, 'd.img'), 64 * M);
    sparseImage(join(c.dir, 'j.img'), 64 * M);
    mkdirSync(join(c.dir, 'links'));
    symlinkSync('../d.img', join(c.dir, 'links/d.img'));
    symlinkSync('../j.img', join(c.dir, 'links/j.img'));

    const killed = c.run(['journal', 'label', 'links/d.img', 'links/j.img'], { GEOMCTL_FAULT: 'kill@write:3' });
    expect(killed.status, killed.stderr).toBe(128);
    expect(undoLogs(join(c.dir, 'links'))).toEqual([]);
    expect(undoLogs(c.dir)).toEqual(['d.img.geomctl-undo']);

    refuses(c.run(['journal', 'status']), 'journal status');
    refuses(c.run(['journal', 'list', 'd.img']), 'journal list');
    refuses(c.run(['journal', 'dump', 'j.img']), 'journal dump');
    refuses(c.run(['status']), 'status');

    c.ok(['journal', 'label', 'd.img', 'j.img']);
    expect(undoLogs(c.dir)).toEqual([]);
    const dump = c.ok(['journal', 'dump', 'd.img']).stdout;
    c.ok(['-d', 'links', 'journal', 'sync', 'links/d.img']);
    expect(c.ok(['journal', 'dump', 'd.img']).stdout).toBe(dump);
    expect(c.ok(['journal', 'status']).stdout).toMatch(/d\.img\.journal\s+CLEAN\s+d\.img\n\s+j\.img/);
  });
});

// ---------------------------------------------------------------------------
// Every kind of path, both ways: a label killed through one path, then
// through the other the read-only verbs refuse, a write rolls back and
// commits, and a later write through the first path rolls nothing back.

/** Two ways to name d.img and j.img, the images in `real/`. */
interface PathKind {
  name: string;
  /** Makes the other path (undefined: not possible here, with the reason). */
  make(dir: string): string | undefined;
  /** The images through it, relative to the case directory or absolute. */
  images(dir: string): [string, string];
  /** The -d arguments that taste them. */
  dirs(dir: string): string[];
  /** Where the undo log of a transaction whose first image is named so lies: beside its real path. */
  logDir: string;
}

/** The undo logs in a case's directories. */
function allLogs(dir: string): string[] {
  const subdirs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.'));
  return subdirs.flatMap((e) => undoLogs(join(dir, e.name)).map((n) => join(dir, e.name, n))).sort();
}

const IMAGES = ['d.img', 'j.img'] as const;

function mountBind(source: string, target: string): string | undefined {
  writeFileSync(target, '');
  const r = spawnSync('mount', ['--bind', source, target], { encoding: 'utf8' });
  if (r.status !== 0) return `mount --bind fails here (${(r.stderr || r.error?.message || '').trim() || `exit ${r.status}`}): bind mounts need root`;
  mounts.push(target);
  return undefined;
}

const KINDS: PathKind[] = [
  {
    name: 'a symlink',
    make(dir) {
      mkdirSync(join(dir, 'links'));
      for (const n of IMAGES) symlinkSync(`../real/${n}`, join(dir, 'links', n));
      return undefined;
    },
    images: () => ['links/d.img', 'links/j.img'],
    dirs: () => ['-d', 'links'],
    logDir: 'real',
  },
  {
    name: 'an absolute path',
    make: () => undefined,
    images: (dir) => [join(dir, 'real/d.img'), join(dir, 'real/j.img')],
    dirs: (dir) => ['-d', join(dir, 'real')],
    logDir: 'real',
  },
  {
    name: 'a path through ..',
    make(dir) {
      mkdirSync(join(dir, 'up'));
      return undefined;
    },
    images: () => ['up/../real/d.img', 'up/../real/j.img'],
    dirs: () => ['-d', 'up/../real'],
    logDir: 'real',
  },
  {
    name: 'a hard link in another directory',
    make(dir) {
      mkdirSync(join(dir, 'hard'));
      for (const n of IMAGES) linkSync(join(dir, 'real', n), join(dir, 'hard', n));
      return undefined;
    },
    images: () => ['hard/d.img', 'hard/j.img'],
    dirs: () => ['-d', 'hard'],
    logDir: 'hard',
  },
  {
    name: 'a bind mount of the file under another directory',
    make(dir) {
      mkdirSync(join(dir, 'bind'));
      for (const n of IMAGES) {
        const why = mountBind(join(dir, 'real', n), join(dir, 'bind', n));
        if (why) return why;
      }
      return undefined;
    },
    images: () => ['bind/d.img', 'bind/j.img'],
    dirs: () => ['-d', 'real', '-d', 'bind'],
    logDir: 'bind',
  },
];

/** The relative real paths, the other side of every case. */
const REAL: PathKind = { name: 'the real path', make: () => undefined, images: () => ['real/d.img', 'real/j.img'], dirs: () => ['-d', 'real'], logDir: 'real' };

describe.each(KINDS)('through $name', (kind) => {
  for (const [first, second] of [
    [kind, REAL],
    [REAL, kind],
  ] as const) {
    it(`a label killed through ${first.name} is found through ${second.name}`, (ctx) => {
      const c = caseDir(`${kind.name.replace(/\W+/g, '-')}-${first === kind ? 'first' : 'second'}`);
      mkdirSync(join(c.dir, 'real'));
      sparseImage(join(c.dir, 'real/d.img'), 8 * M);
      sparseImage(join(c.dir, 'real/j.img'), 64 * M);
      const why = kind.make(c.dir);
      if (why) {
        ctx.skip(why);
        return;
      }
      const hashes = (): string[] => IMAGES.map((n) => sha256(join(c.dir, 'real', n)));
      const fresh = hashes();
      // Killed at its third write (as in the issue), the label is half done: d.img modified, j.img not yet.
      const r = c.run(['journal', 'label', ...first.images(c.dir)], { GEOMCTL_FAULT: 'kill@write:3' });
      expect(r.status, r.stderr).toBe(128);
      expect(hashes().map((h, i) => h === fresh[i])).toEqual([false, true]);
      expect(allLogs(c.dir)).toEqual([join(c.dir, first.logDir, 'd.img.geomctl-undo')]);
      const torn = hashes();

      const [d, j] = second.images(c.dir);
      refuses(c.run(['journal', 'dump', j]), `journal dump ${j}`);
      refuses(c.run([...second.dirs(c.dir), 'status']), 'status');
      expect(hashes()).toEqual(torn);

      c.ok(['journal', 'label', d, j]);
      expect(allLogs(c.dir)).toEqual([]);
      const labeled = hashes();
      // Through the first path again: nothing left to roll back, the label stays.
      const [d1, j1] = first.images(c.dir);
      c.ok(['journal', 'sync', d1, j1]);
      c.ok(['journal', 'dump', d1]);
      expect(hashes()).toEqual(labeled);
      expect(allLogs(c.dir)).toEqual([]);
      expect(readdirSync(c.state)).toEqual([]);
    });
  }
});

// ---------------------------------------------------------------------------
// The registry itself.

describe('the undo log registry', () => {
  it('lives in GEOMCTL_STATE_DIR, else $XDG_STATE_HOME/geomctl, else ~/.local/state/geomctl', () => {
    expect(registryDir({ GEOMCTL_STATE_DIR: '/srv/state', XDG_STATE_HOME: '/x', HOME: '/h' })).toBe('/srv/state');
    expect(registryDir({ XDG_STATE_HOME: '/x', HOME: '/h' })).toBe('/x/geomctl');
    // XDG: a relative value is invalid and ignored.
    expect(registryDir({ XDG_STATE_HOME: 'x', HOME: '/h' })).toBe('/h/.local/state/geomctl');
    expect(registryDir({ HOME: '/h' })).toBe('/h/.local/state/geomctl');
  });

  it('points each image of a killed transaction at its log, in ~/.local/state/geomctl by default; a write empties it', () => {
    const c = caseDir('registry-home');
    const home = join(c.dir, 'home');
    mkdirSync(home);
    sparseImage(join(c.dir, 'd.img'), 8 * M);
    sparseImage(join(c.dir, 'j.img'), 64 * M);
    const env = { GEOMCTL_STATE_DIR: '', XDG_STATE_HOME: '', HOME: home };
    const killed = c.run(['journal', 'label', 'd.img', 'j.img'], { ...env, GEOMCTL_FAULT: 'kill@write:3' });
    expect(killed.status).toBe(128);
    const registry = join(home, '.local/state/geomctl');
    const log = join(c.dir, 'd.img.geomctl-undo');
    expect(existsSync(log)).toBe(true);
    const pointers = readdirSync(registry).sort();
    expect(pointers).toHaveLength(2);
    for (const p of pointers) expect(p).toMatch(/^\d+-\d+$/);
    const r = c.run(['journal', 'label', 'd.img', 'j.img'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(log)).toBe(false);
    expect(readdirSync(registry)).toEqual([]);
  });

  it('a pointer whose log was never created (killed in between) is ignored by reads and removed by the next write', () => {
    const c = caseDir('registry-dangling');
    sparseImage(join(c.dir, 'd.img'), 8 * M);
    sparseImage(join(c.dir, 'j.img'), 64 * M);
    // The first write of a label is its undo log's header: killed there, the pointers are durable and the log is not.
    const killed = c.run(['journal', 'label', 'd.img', 'j.img'], { GEOMCTL_FAULT: 'kill@write:1' });
    expect(killed.status).toBe(128);
    expect(readdirSync(c.state)).toHaveLength(2);
    const hashes = IMAGES.map((n) => sha256(join(c.dir, n)));
    // The log exists, torn (created, no header): a read-only verb ignores it, as it ignores the pointers.
    const dump = c.run(['dump', 'd.img']);
    expect(dump.stderr).not.toMatch(UNFINISHED);
    c.ok(['journal', 'label', 'd.img', 'j.img']);
    expect(readdirSync(c.state)).toEqual([]);
    expect(undoLogs(c.dir)).toEqual([]);
    expect(IMAGES.map((n) => sha256(join(c.dir, n)))).not.toEqual(hashes);
  });

  it('pointers left by a kill after the commit point lead to no log: reads go on, the next write removes them', () => {
    const c = caseDir('registry-after-commit');
    mkdirSync(join(c.dir, 'hard'));
    // The commit point's directory fsync is the label's last barrier: killed there, the log is gone, its pointers not.
    let committed: string | undefined;
    for (let n = 1; n <= 12 && !committed; n++) {
      for (const path of [c.state, join(c.dir, 'd.img.geomctl-undo'), ...IMAGES.flatMap((i) => [join(c.dir, i), join(c.dir, 'hard', i)])]) rmSync(path, { recursive: true, force: true });
      sparseImage(join(c.dir, 'd.img'), 8 * M);
      sparseImage(join(c.dir, 'j.img'), 64 * M);
      for (const i of IMAGES) linkSync(join(c.dir, i), join(c.dir, 'hard', i));
      const r = c.run(['journal', 'label', 'd.img', 'j.img'], { GEOMCTL_FAULT: `kill@barrier:${n}` });
      if (r.status === 0) break;
      expect(r.status, r.stderr).toBe(128);
      if (undoLogs(c.dir).length === 0 && readdirSync(c.state).length > 0) committed = `kill@barrier:${n}`;
    }
    expect(committed, 'no kill left pointers without their log').toBeDefined();
    const labeled = IMAGES.map((n) => sha256(join(c.dir, n)));
    // Through the hard links, whose only way to a log is the registry: nothing unfinished.
    c.ok(['journal', 'dump', 'hard/d.img']);
    c.ok(['-d', 'hard', 'journal', 'status']);
    expect(readdirSync(c.state)).toHaveLength(2);
    c.ok(['journal', 'sync', 'hard/d.img', 'hard/j.img']);
    expect(readdirSync(c.state)).toEqual([]);
    expect(IMAGES.map((n) => sha256(join(c.dir, n)))).toEqual(labeled);
  });

  it('a registry that cannot be written stops a write before it modifies anything', () => {
    const c = caseDir('registry-unwritable');
    sparseImage(join(c.dir, 'd.img'), 8 * M);
    sparseImage(join(c.dir, 'j.img'), 64 * M);
    writeFileSync(join(c.dir, 'file'), '');
    const hashes = IMAGES.map((n) => sha256(join(c.dir, n)));
    const r = c.run(['journal', 'label', 'd.img', 'j.img'], { GEOMCTL_STATE_DIR: join(c.dir, 'file/state') });
    expect(r.stderr).toBe(
      `geomctl: mkdir of the undo log registry (${join(c.dir, 'file/state')}) failed: ENOTDIR; geomctl modified nothing; make it writable or set GEOMCTL_STATE_DIR to a writable directory, then run the command again\n`,
    );
    expect(r.status).toBe(1);
    expect(IMAGES.map((n) => sha256(join(c.dir, n)))).toEqual(hashes);
    expect(undoLogs(c.dir)).toEqual([]);
    expect(readFileSync(join(c.dir, 'file'), 'utf8')).toBe('');
  });
});
