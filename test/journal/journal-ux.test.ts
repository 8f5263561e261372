// Journal UX details (cli.md, "Exit status and messages", "Progress"):
// listing verbs and images the kernel would ignore, tasting past images that
// cannot be read, label options judged before any image is touched, and the
// progress feeds of the walk, of scan --all and of an undo-log rollback.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine.js';
import { openImage } from '../../src/provider/file.js';
import { openSession } from '../../src/engine/session.js';
import { JournalDevice } from '../../src/journal/device.js';
import { minJournalSize } from '../../src/journal/format.js';
import { scanJournal } from '../../src/journal/scan.js';
import { BIN, geomctl, scratch, sha256, sparseImage, type CliResult, flipByte } from '../helpers/cli.js';
import { filled } from '../engine/engine-support.js';
import { DirectEngine, K, M, labeled, modelWrites, providersOf } from './journal-engine-support.js';
import { KernelJournal, kRandom } from '../model/journal-kernel.js';

const s = scratch('geomctl-jux-');
/** Small images keep the before/after hashes cheap: a data image, a journal image (100 MiB is the least), a one-image journal. */
const DATA = 8 * M;
const JOURNAL = 101 * M;
const ONE = 110 * M;
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

const run = (args: string[], o: { cwd?: string; unprivileged?: boolean; input?: Buffer } = {}): CliResult =>
  geomctl(args, { cwd: o.cwd ?? s.dir, ...(o.unprivileged && isRoot ? { uid: NOBODY, gid: NOBODY } : {}), ...(o.input ? { input: o.input } : {}) });

function ok(args: string[], cwd = s.dir): CliResult {
  const r = run(args, { cwd });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

/** stderr's lines, with no stack trace among them. */
function errLines(r: CliResult): string[] {
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return r.stderr.split('\n').filter((l) => l !== '');
}

/** The hashes of every file in a directory (and which files there are): "nothing changed" in one value. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const p = `${dir}/${name}`;
    if (statSync(p).isFile()) out[name] = statSync(p).mode & 0o444 ? sha256(p) : 'unreadable';
  }
  return out;
}

afterAll(() => s.cleanup());

describe('journal list and status: images the kernel would ignore', () => {
  const dir = s.path('ls');
  beforeAll(() => {
    mkdirSync(dir);
    sparseImage(`${dir}/a.img`, DATA);
    sparseImage(`${dir}/aj.img`, JOURNAL);
    ok(['journal', 'label', 'a.img', 'aj.img'], dir);
    sparseImage(`${dir}/b.img`, DATA);
    sparseImage(`${dir}/bj.img`, JOURNAL);
    ok(['journal', 'label', 'b.img', 'bj.img'], dir);
    sparseImage(`${dir}/bad.img`, ONE);
    ok(['journal', 'label', '-s', '100M', 'bad.img'], dir);
    flipByte(`${dir}/bad.img`, -512 + 90);
  });

  for (const verb of [['journal', 'status'], ['journal', 'list'], ['status'], ['list']]) {
    const cmd = verb.join(' ');

    it(`${cmd} of a named image with bad metadata: says which and why, exit 1`, () => {
      const r = run([...verb, 'bad.img'], { cwd: dir });
      expect(r.status).toBe(1);
      const lines = errLines(r);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^geomctl: MD5 hash mismatch for bad\.img; .*geomctl journal label/);
      expect(r.stdout.trim()).toBe('');
    });

    it(`${cmd} of a good and a bad image: lists the good one, reports the bad one, exit 1`, () => {
      const r = run([...verb, 'a.img', 'bad.img'], { cwd: dir });
      expect(r.status).toBe(1);
      expect(r.stdout).toContain('a.img');
      expect(r.stdout).not.toContain('b.img');
      expect(errLines(r)).toEqual([expect.stringMatching(/^geomctl: MD5 hash mismatch for bad\.img; /)]);
    });

    it(`${cmd} with images named lists only their devices`, () => {
      const r = ok([...verb, 'aj.img'], dir);
      expect(r.stdout).toContain('a.img');
      expect(r.stdout).not.toContain('b.img');
      expect(r.stderr).toBe('');
    });

    it(`${cmd} of the directory: bad metadata is a warning, the rest is listed, exit 0`, () => {
      const r = ok([...verb], dir);
      expect(r.stdout).toContain('a.img');
      expect(r.stdout).toContain('b.img');
      expect(errLines(r)).toEqual([expect.stringMatching(/^geomctl: warning: MD5 hash mismatch for bad\.img; /)]);
    });
  }

  it('--json: the document lists the good devices, the failure goes to stderr', () => {
    const r = run(['--json', 'journal', 'status', 'a.img', 'bad.img'], { cwd: dir });
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout) as { command: string; geoms: unknown[] };
    expect(doc.command).toBe('journal status');
    expect(doc.geoms).toHaveLength(1);
    expect(errLines(r)).toHaveLength(1);
  });

  it('a named data image whose journal image is elsewhere: says so, exit 1; with -d it is listed', () => {
    const other = s.path('ls-elsewhere');
    mkdirSync(other);
    sparseImage(`${other}/c.img`, DATA);
    sparseImage(`${other}/cj.img`, JOURNAL);
    ok(['journal', 'label', 'c.img', 'cj.img'], other);
    mkdirSync(`${other}/j`);
    renameSync(`${other}/cj.img`, `${other}/j/cj.img`);
    const r = run(['journal', 'status', 'c.img'], { cwd: other });
    expect(r.status).toBe(1);
    expect(errLines(r)).toEqual([expect.stringMatching(/^geomctl: c\.img: data image of journal \d+ without its journal image; .*-d DIR/)]);
    const withDir = ok(['-d', '.', '-d', 'j', 'journal', 'status', 'c.img'], other);
    expect(withDir.stdout).toMatch(/c\.img\.journal +CLEAN +c\.img\n +cj\.img/);
  });
});

describe('tasting past an image that cannot be read', () => {
  const dir = s.path('perm');
  beforeAll(() => {
    mkdirSync(dir);
    chmodSync(s.dir, 0o755);
    chmodSync(dir, 0o755);
    sparseImage(`${dir}/d.img`, DATA);
    sparseImage(`${dir}/j.img`, JOURNAL);
    ok(['journal', 'label', 'd.img', 'j.img'], dir);
    chmodSync(`${dir}/j.img`, 0o000);
  });

  it('journal scan of the data image names the journal image that cannot be read, and changes nothing', () => {
    const before = snapshot(dir);
    const r = run(['journal', 'scan', 'd.img'], { cwd: dir, unprivileged: true });
    expect(r.status).toBe(1);
    expect(errLines(r)).toEqual([
      expect.stringMatching(/^geomctl: d\.img is the data image of journal \d+, and no image with its journal was found in \. \(not tasted: j\.img: permission denied \(opened for reading\)\); check its mode/),
    ]);
    expect(snapshot(dir)).toEqual(before);
  });

  it('journal status of the directory: the lone data image is a warning that names the unreadable image', () => {
    const r = run(['journal', 'status'], { cwd: dir, unprivileged: true });
    expect(r.status).toBe(0);
    expect(errLines(r)).toEqual([expect.stringMatching(/^geomctl: warning: d\.img: data image of journal \d+ without its journal image \(not tasted: j\.img: permission denied/)]);
  });

  it('naming the unreadable image is the permission error itself', () => {
    const r = run(['journal', 'scan', 'd.img', 'j.img'], { cwd: dir, unprivileged: true });
    expect(r.status).toBe(1);
    expect(errLines(r)).toEqual(['geomctl: j.img: permission denied (opened for reading); check its mode or run as its owner']);
  });
});

describe('label options are judged before any image is touched', () => {
  const dir = s.path('opts');
  beforeAll(() => {
    mkdirSync(dir);
    sparseImage(`${dir}/blank.img`, DATA);
    sparseImage(`${dir}/c0.img`, DATA);
    mkdirSync(`${dir}/lock`);
    sparseImage(`${dir}/lock/held.img`, ONE);
    ok(['journal', 'label', '-s', '100M', 'held.img'], `${dir}/lock`);
  });

  const bad: { what: string; args: string[]; names: string[] }[] = [];
  for (const ss of ['256', '513', '0', '131072']) {
    bad.push({ what: `journal label --sectorsize ${ss}`, args: ['journal', 'label', '--sectorsize', ss, '-s', '100M'], names: [ss, '--sectorsize'] });
    bad.push({ what: `virstor label --sectorsize ${ss}`, args: ['virstor', 'label', '--sectorsize', ss, '-m', '1M', 'vs'], names: [ss, '--sectorsize'] });
  }
  bad.push({ what: 'journal label --id 2^32', args: ['journal', 'label', '--id', '4294967296', '-s', '100M'], names: ['4294967296', '--id'] });
  bad.push({ what: 'virstor label --id 2^32', args: ['virstor', 'label', '--id', '4294967296', '-m', '1M', 'vs'], names: ['4294967296', '--id'] });

  for (const b of bad) {
    it(`${b.what}: a usage error, exit 2, every image as it was and no file created`, () => {
      const image = b.args[0] === 'journal' ? 'blank.img' : 'c0.img';
      const before = snapshot(dir);
      const r = run([...b.args, image], { cwd: dir });
      expect(r.status).toBe(2);
      const lines = errLines(r);
      expect(lines).toHaveLength(1);
      for (const n of b.names) expect(lines[0]).toContain(n);
      expect(snapshot(dir)).toEqual(before);
      // An image that is not there is not even looked at: the option is what is wrong.
      const missing = run([...b.args, 'nope.img'], { cwd: dir });
      expect(missing.status).toBe(2);
      expect(missing.stderr).not.toContain('nope.img');
      expect(existsSync(`${dir}/nope.img`)).toBe(false);
    });
  }

  it('a bad --sectorsize is refused at once even when another geomctl holds the image', async () => {
    // A journal write waiting for its stdin holds held.img's exclusive lock.
    // --wait: the dump probing for that lock holds a shared one for a moment.
    const cwd = `${dir}/lock`;
    const child = spawn(process.execPath, [BIN, '--wait', '30', 'journal', 'write', 'held.img'], { cwd, stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise<void>((resolveExit) => child.on('exit', () => resolveExit()));
    try {
      const deadline = Date.now() + 30_000;
      while (!run(['journal', 'dump', 'held.img'], { cwd }).stderr.includes('in use')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error('the lock holder never took the lock');
        await new Promise((r) => setTimeout(r, 50));
      }
      const r = run(['journal', 'label', '--sectorsize', '256', '-f', '-s', '100M', 'held.img'], { cwd });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('--sectorsize');
      expect(r.stderr).not.toContain('in use');
    } finally {
      child.stdin.end();
      await exited;
    }
  });
});

describe('messages that leave the images as they were', () => {
  const dir = s.path('msg');
  beforeAll(() => {
    mkdirSync(dir);
    for (const n of ['d', 'od']) sparseImage(`${dir}/${n}.img`, DATA);
    for (const n of ['j', 'oj']) sparseImage(`${dir}/${n}.img`, JOURNAL);
    ok(['journal', 'label', 'd.img', 'j.img'], dir);
    ok(['journal', 'label', 'od.img', 'oj.img'], dir);
    sparseImage(`${dir}/bad.img`, ONE);
    ok(['journal', 'label', '-s', '100M', 'bad.img'], dir);
    flipByte(`${dir}/bad.img`, -512 + 90);
  });

  it('data and journal images of different journals: names both and what to give instead', () => {
    const before = snapshot(dir);
    const r = run(['journal', 'sync', 'd.img', 'oj.img'], { cwd: dir });
    expect(r.status).toBe(1);
    const idOf = (image: string): number => (JSON.parse(ok(['--json', 'journal', 'dump', image], dir).stdout) as { images: { metadata: { id: number } }[] }).images[0]?.metadata.id ?? -1;
    expect(errLines(r)).toEqual([
      `geomctl: oj.img belongs to journal ${idOf('oj.img')}, d.img to journal ${idOf('d.img')} (md_id); ` +
        "give the journal image labeled with d.img ('geomctl journal dump' shows each image's id), or leave it out to find it by tasting",
    ]);
    expect(snapshot(dir)).toEqual(before);
    // The advice works: left out, the journal image is found by tasting.
    ok(['journal', 'sync', 'd.img'], dir);
  });

  it('MD5 mismatch on a writing verb: what to do, and nothing written', () => {
    const before = snapshot(dir);
    const r = run(['journal', 'write', 'bad.img'], { cwd: dir, input: Buffer.alloc(4096, 1) });
    expect(r.status).toBe(1);
    expect(errLines(r)).toEqual([
      "geomctl: MD5 hash mismatch for bad.img; FreeBSD ignores it too: relabel it as it was ('geomctl journal label -f' with the same images and -s), which loses any journal not yet copied",
    ]);
    expect(snapshot(dir)).toEqual(before);
  });
});

describe('progress feeds', () => {
  /** A dirty journal (kernel model): finished journals behind the metadata, an unfinished tail. */
  function dirtyDevice(onWalk: (walked: number, total: number) => void): JournalDevice {
    const maxphys = 16 * K;
    const disk = labeled({ two: true, dataSize: M, jsize: minJournalSize(512, maxphys) + 64 * K });
    const rnd = kRandom(7);
    const k = new KernelJournal(disk, { maxphys, random: rnd });
    k.openWrite();
    modelWrites(k, rnd, 6, 8 * K);
    k.switchJournal({ copy: false });
    modelWrites(k, rnd, 6, 8 * K);
    k.switchJournal({ metadata: false, copy: false });
    k.flushAll();
    return JournalDevice.open(new DirectEngine(providersOf(disk)), { maxphys, cacheLimit: 64 * M, onWalk });
  }

  it('the walk reports bytes walked, never decreasing, within a total of the journal space', () => {
    const seen: [number, number][] = [];
    const dev = dirtyDevice((walked, total) => seen.push([walked, total]));
    const space = dev.geo.jend - dev.geo.jstart;
    expect(dev.state).toBe('DIRTY');
    expect(seen.length).toBeGreaterThan(2);
    for (const [i, [walked, total]] of seen.entries()) {
      expect(total).toBe(space);
      expect(walked).toBeLessThanOrEqual(total);
      if (i > 0) expect(walked).toBeGreaterThanOrEqual((seen[i - 1] as [number, number])[0]);
    }
    // The walk went at least as far as the header that finished the newest journal.
    expect((seen[seen.length - 1] as [number, number])[0]).toBeGreaterThanOrEqual(dev.choice?.walk.finishedBytes ?? Infinity);
  });

  it('scan --all reports its pass over the journal space, up to all of it', () => {
    const dev = dirtyDevice(() => {});
    const seen: [number, number][] = [];
    scanJournal(dev, { all: true, maxphys: 16 * K, onReadAll: (done, total) => seen.push([done, total]) });
    const space = dev.geo.jend - dev.geo.jstart;
    expect(seen[0]).toEqual([0, space]);
    expect(seen[seen.length - 1]).toEqual([space, space]);
  });

  it('an undo-log rollback on open reports the bytes it restores, up to its total', () => {
    const dir = s.path('rollback');
    mkdirSync(dir);
    const paths = ['r0.img', 'r1.img'].map((n, i) => {
      const p = `${dir}/${n}`;
      writeFileSync(p, filled(M, 40 + i));
      return p;
    });
    // A transaction abandoned half way, beyond the cache limit: a hot undo log.
    const providers = paths.map((p) => openImage(p, { write: true }));
    const e = createEngine({ providers, cacheLimit: 128 * K });
    for (let off = 0; off < 512 * K; off += 64 * K) e.write(0, off, filled(64 * K, off + 1), 'META');
    e.write(1, 0, filled(4096, 4), 'META');
    e.abort();
    e.close();
    expect(existsSync(`${paths[0]}.geomctl-undo`)).toBe(true);

    const reports: { label: string; total: number; updates: number[]; stopped: boolean }[] = [];
    const session = openSession(paths, {
      write: true,
      wait: 0,
      cacheLimit: M,
      dirs: [],
      env: {},
      progress: (label, total) => {
        const r = { label, total, updates: [] as number[], stopped: false };
        reports.push(r);
        return { update: (done) => r.updates.push(done), stop: () => (r.stopped = true) };
      },
    });
    session.close();
    expect(session.recovered).toHaveLength(1);
    expect(reports).toHaveLength(1);
    const [r] = reports as [(typeof reports)[number]];
    expect(r.label).toMatch(/rolling back/);
    expect(r.total).toBeGreaterThan(0);
    expect(r.updates.every((u, i) => u <= r.total && (i === 0 || u >= (r.updates[i - 1] as number)))).toBe(true);
    expect(r.updates[r.updates.length - 1]).toBe(r.total);
    expect(r.stopped).toBe(true);
    // The images are as they were before the transaction.
    paths.forEach((p, i) => expect(sha256(p)).toBe(sha256Of(filled(M, 40 + i))));
  });
});

function sha256Of(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
