// What the next command does with a transaction a killed geomctl left half
// done (flush-engine.md, "Recovery"), through the built bin/geomctl and
// GEOMCTL_FAULT kills:
// - journal list / status refuse the images of the unfinished transaction
//   (exit 1, the error the read-only session gives), as the top-level list
//   and status do, instead of showing nothing;
// - writing verbs that find their images by tasting (virstor stop OLD, journal
//   sync DATA) roll back first: a killed relabel leaves the images carrying
//   the new name until then;
// - rolling back a record whose old bytes were all zero writes zeros only
//   where the image holds data: a sparse image stays sparse;
// - the top-level list / status naming a virstor image the kernel would
//   ignore, or whose device cannot be listed, fail as the journal class does.

import { closeSync, mkdirSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage, type CliResult } from '../helpers/cli.js';
import { snapshotFiles, undoLogs } from '../helpers/faults.js';
import { kDecodeMetadata } from '../model/journal-kernel.js';
import { modelDecodeMetadata } from '../model/virstor-kernel.js';

const K = 1024;
const M = 1024 * K;

const s = scratch('geomctl-unfinished-');

/** The one line a rollback of an unfinished transaction prints (commands/main.ts). */
const ROLLED_BACK_ONE = /^geomctl: rolled back an unfinished transaction \(undo log [^\n]*\.geomctl-undo\)[^\n]*\n$/;
afterAll(() => s.cleanup());

function dirOf(name: string): string {
  const dir = s.path(name);
  mkdirSync(dir);
  return dir;
}

function run(dir: string, args: string[], env: Record<string, string> = {}, input?: Buffer): CliResult {
  return geomctl(args, { cwd: dir, env, ...(input ? { input } : {}) });
}

function ok(dir: string, args: string[], input?: Buffer): CliResult {
  const r = run(dir, args, {}, input);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

/** The last 512 bytes of an image: where both classes keep their metadata here. */
function lastSector(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(512);
    readSync(fd, b, 0, 512, statSync(path).size - 512);
    return b;
  } finally {
    closeSync(fd);
  }
}

const journalId = (path: string): number | undefined => {
  const { md } = kDecodeMetadata(lastSector(path));
  return md.magic === 'GEOM::JOURNAL' ? md.id : undefined;
};
const virstorName = (path: string): string | undefined => {
  const md = modelDecodeMetadata(lastSector(path));
  return md.magic === 'GEOM::VIRSTOR' ? md.name : undefined;
};

/**
 * Runs `verb` killed at the N-th `op` for N = 1, 2, ... (images restored
 * before each run) until the kill leaves an undo log and `torn()` holds;
 * returns the spec, leaving the images so. Fails when no N does.
 */
function killUntil(dir: string, restore: () => void, verb: string[], op: 'write' | 'barrier', torn: () => boolean): string {
  for (let n = 1; n <= 12; n++) {
    restore();
    const spec = `kill@${op}:${n}`;
    const r = run(dir, verb, { GEOMCTL_FAULT: spec });
    if (r.status === 0) break;
    expect(r.status, `${spec}: ${r.stderr}`).toBe(128);
    if (undoLogs(dir).length > 0 && torn()) return spec;
  }
  throw new Error(`no kill of '${verb.join(' ')}' at a ${op} left the images as wanted`);
}

const unfinished = (dir: string, image: string): string =>
  `geomctl: ${image} has an unfinished transaction (${join(dir, 'd.img.geomctl-undo')}); run any write command on it to roll it back (e.g. 'geomctl journal sync' or 'geomctl virstor stop' on its device)\n`;

describe('journal list and status after a killed two-image journal clear', () => {
  it('report the unfinished transaction and exit 1, listing the other devices, as the top-level list does', () => {
    const dir = dirOf('jclear');
    sparseImage(join(dir, 'd.img'), 2 * M);
    sparseImage(join(dir, 'j.img'), 6 * M);
    sparseImage(join(dir, 'x.img'), 2 * M);
    sparseImage(join(dir, 'y.img'), 6 * M);
    ok(dir, ['--maxphys', '128k', 'journal', 'label', '--id', '5', 'd.img', 'j.img']);
    ok(dir, ['--maxphys', '128k', 'journal', 'label', '--id', '9', 'x.img', 'y.img']);
    const restore = snapshotFiles(dir, ['d.img', 'j.img']);
    const before = [sha256(join(dir, 'd.img')), sha256(join(dir, 'j.img'))];
    // Torn: d.img cleared, j.img not yet — a listing that tastes the raw images sees half a journal.
    killUntil(dir, restore, ['journal', 'clear', 'd.img', 'j.img'], 'write', () => journalId(join(dir, 'd.img')) === undefined && journalId(join(dir, 'j.img')) === 5);

    for (const verb of ['list', 'status']) {
      for (const args of [['journal', verb], [verb]]) {
        const r = run(dir, args);
        expect(r.stderr, args.join(' ')).toBe(unfinished(dir, 'd.img'));
        expect(r.status, args.join(' ')).toBe(1);
        // The device outside the transaction is still listed.
        expect(r.stdout, args.join(' ')).toContain('x.img');
        expect(r.stdout, args.join(' ')).not.toMatch(/\bd\.img|\bj\.img/);
      }
      // Named: the named image's own refusal; the other device's image alone lists fine.
      for (const image of ['d.img', 'j.img']) {
        const r = run(dir, ['journal', verb, image]);
        expect(r.stderr, `journal ${verb} ${image}`).toBe(unfinished(dir, image));
        expect(r.status).toBe(1);
      }
      const other = run(dir, ['journal', verb, 'x.img']);
      expect([other.status, other.stderr]).toEqual([0, '']);
    }

    // A writing command on the device rolls the clear back; the listings see it whole again.
    ok(dir, ['journal', 'sync', 'd.img', 'j.img']);
    expect(undoLogs(dir)).toEqual([]);
    expect([sha256(join(dir, 'd.img')), sha256(join(dir, 'j.img'))]).toEqual(before);
    const r = ok(dir, ['journal', 'status']);
    expect(r.stdout).toMatch(/d\.img\.journal\s+CLEAN\s+d\.img\n\s+j\.img/);
  });
});

describe('writing verbs roll back before they find their images by tasting', () => {
  it('virstor stop OLD after a relabel killed once the images carry the new name', () => {
    const dir = dirOf('vrelabel');
    sparseImage(join(dir, 'c0.img'), 20 * M);
    sparseImage(join(dir, 'c1.img'), 20 * M);
    ok(dir, ['virstor', 'label', '-m', '1M', '-s', '64M', 'old', 'c0.img', 'c1.img']);
    ok(dir, ['virstor', 'write', '-o', '3M', 'old'], Buffer.alloc(4096, 7));
    const names = ['c0.img', 'c1.img'];
    const restore = snapshotFiles(dir, names);
    const before = names.map((n) => sha256(join(dir, n)));
    killUntil(dir, restore, ['virstor', 'label', '-f', '-m', '1M', '-s', '64M', 'fresh', 'c0.img', 'c1.img'], 'barrier', () =>
      names.every((n) => virstorName(join(dir, n)) === 'fresh'),
    );
    // A read-only verb cannot roll back: it says why it finds nothing, and changes nothing.
    const map = run(dir, ['virstor', 'map', 'old']);
    expect(map.status).toBe(1);
    expect(map.stderr).toMatch(/^geomctl: no virstor device named old found.*, and .*c[01]\.img has an unfinished transaction \(.*\) that may have changed its names; run a writing command to roll it back \(e\.g\. 'geomctl virstor stop old'\), then try again\n$/);
    expect(undoLogs(dir)).not.toEqual([]);
    const r = run(dir, ['virstor', 'stop', '-v', 'old']);
    expect(r.stderr).toMatch(ROLLED_BACK_ONE);
    expect(r.stdout).toBe('Device old has 1 allocated chunks\nAllocation table ok for old\n');
    expect(r.status).toBe(0);
    expect(undoLogs(dir)).toEqual([]);
    expect(names.map((n) => sha256(join(dir, n)))).toEqual(before);
  });

  it('journal sync DATA after a relabel onto another journal image, killed at every write and barrier', () => {
    const dir = dirOf('jrelabel');
    sparseImage(join(dir, 'd.img'), 2 * M);
    sparseImage(join(dir, 'j.img'), 6 * M);
    sparseImage(join(dir, 'k.img'), 6 * M);
    ok(dir, ['--maxphys', '128k', 'journal', 'label', '--id', '5', 'd.img', 'j.img']);
    const names = ['d.img', 'j.img', 'k.img'];
    const restore = snapshotFiles(dir, names);
    const signature = (): string[] => names.map((n) => sha256(join(dir, n)));
    const before = signature();
    const verb = ['--maxphys', '128k', 'journal', 'label', '-f', '--id', '7', 'd.img', 'k.img'];
    ok(dir, verb);
    const after = signature();
    // Among the states: d.img says journal 7 and k.img is not labeled yet (tasting finds no
    // journal image), and both say 7 but the rollback takes them back to journal 5 with j.img.
    const torn = { unlabeled: 0, relabeled: 0 };
    for (const op of ['write', 'barrier']) {
      for (let n = 1; n <= 12; n++) {
        restore();
        const spec = `kill@${op}:${n}`;
        const r = run(dir, verb, { GEOMCTL_FAULT: spec });
        if (r.status === 0) break;
        expect(r.status, `${spec}: ${r.stderr}`).toBe(128);
        if (undoLogs(dir).length > 0 && journalId(join(dir, 'd.img')) === 7) torn[journalId(join(dir, 'k.img')) === 7 ? 'relabeled' : 'unlabeled']++;
        const sync = run(dir, ['journal', 'sync', '-v', 'd.img']);
        expect([sync.status, sync.stdout], spec).toEqual([0, 'd.img.journal: CLEAN (nothing to replay).\n']);
        // A hot log is rolled back and reported; a torn one (killed while it was made) only removed.
        expect(sync.stderr, spec).toMatch(new RegExp(`^(${ROLLED_BACK_ONE.source})?$`));
        expect(undoLogs(dir), spec).toEqual([]);
        expect([before, after], spec).toContainEqual(signature());
      }
    }
    restore();
    expect(torn.unlabeled, 'no kill left k.img unlabeled under a relabeled d.img').toBeGreaterThan(0);
    expect(torn.relabeled, 'no kill left both images relabeled and uncommitted').toBeGreaterThan(0);
  });
});

describe('rolling back keeps a sparse image sparse', () => {
  it('a relabel over a map with scattered entries, killed before its map writes, rolls back exactly and allocates nothing', () => {
    const dir = dirOf('sparse');
    const c0 = join(dir, 'c0.img');
    sparseImage(c0, 160 * M);
    // A 64 MiB map (1T of 128k chunks); four entries 2 MiB apart in it, each in a 1 MiB piece of its own.
    ok(dir, ['--maxphys', '128k', 'virstor', 'label', '-m', '128k', '-s', '1T', 'old', 'c0.img']);
    for (let k = 1; k <= 4; k++) ok(dir, ['virstor', 'write', '-o', `${k * 32}G`, 'old'], Buffer.alloc(512, k));
    const allocated = (): number => statSync(c0).blocks * 512;
    const before = sha256(c0);
    const restore = snapshotFiles(dir, ['c0.img']);
    // Killed before its map writes (at the undo log's fsync): the map pieces the label zeroes are
    // logged (all but each entry's block as zero runs) and still holes, the image untouched.
    killUntil(dir, restore, ['--maxphys', '128k', 'virstor', 'label', '-f', '-m', '128k', '-s', '1T', 'fresh', 'c0.img'], 'barrier', () => virstorName(c0) === 'old');
    const sparse = allocated();
    if (sparse > 8 * M) return; // a file system without holes: nothing to measure
    expect(sha256(c0)).toBe(before);
    const r = run(dir, ['virstor', 'stop', 'old']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(ROLLED_BACK_ONE);
    expect(undoLogs(dir)).toEqual([]);
    expect(sha256(c0)).toBe(before);
    // Without holes skipped, the four zeroed pieces come back as 4 MiB of written zeros.
    expect(allocated() - sparse).toBeLessThan(M);
  });
});

describe('top-level list and status naming a virstor image that cannot be listed', () => {
  it('fail after listing the rest when the image is named, and warn when it was found by tasting', () => {
    const dir = dirOf('vnamed');
    sparseImage(join(dir, 'a0.img'), 8 * M);
    sparseImage(join(dir, 'b0.img'), 8 * M);
    sparseImage(join(dir, 'h0.img'), 8 * M);
    sparseImage(join(dir, 'ok0.img'), 8 * M);
    // Two complete devices named twin (different ids), and a component whose hardcoded name no longer fits.
    ok(dir, ['virstor', 'label', '-m', '1M', '-s', '64M', 'twin', 'a0.img']);
    ok(dir, ['virstor', 'label', '-m', '1M', '-s', '64M', 'twin', 'b0.img']);
    ok(dir, ['virstor', 'label', '-h', '-m', '1M', '-s', '64M', 'hv', 'h0.img']);
    ok(dir, ['virstor', 'label', '-m', '1M', '-s', '64M', 'good', 'ok0.img']);
    const twin = /^geomctl: (warning: )?virstor twin: components with different ids: id \d+ \(a0\.img\) and id \d+ \(b0\.img\); each of them is complete; clear the stale components with 'geomctl virstor clear'\n?$/m;
    renameSync(join(dir, 'h0.img'), join(dir, 'renamed.img'));
    const hv = "renamed.img: ignored: its metadata hardcodes provider 'h0.img', not 'renamed.img' (use -H to accept it)";
    for (const verb of ['list', 'status']) {
      // Found by tasting: warnings, exit 0.
      const all = run(dir, [verb]);
      expect(all.status, all.stderr).toBe(0);
      const warned = all.stderr.split('\n').filter(Boolean);
      expect(warned).toEqual([`geomctl: warning: ${hv}`, expect.stringMatching(twin)]);
      expect(warned[1]).toContain('warning:');
      expect(all.stdout).toContain('ok0.img');
      // Named: the named image's failure after the listing of the rest, exit 1; what concerns
      // images not named is not asked about.
      const named = run(dir, [verb, 'ok0.img', 'a0.img']);
      expect(named.status, named.stderr).toBe(1);
      expect(named.stdout).toContain('ok0.img');
      expect(named.stderr).toMatch(twin);
      expect(named.stderr).not.toContain('warning:');
      const ignored = run(dir, [verb, 'renamed.img']);
      expect([ignored.status, ignored.stderr]).toEqual([1, `geomctl: ${hv}\n`]);
    }
  });
});
