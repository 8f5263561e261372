// Issue 9, "Trust" items 5, 6 and 15, through the built bin/geomctl: no
// message offers a repair that throws data away while another reading keeps
// it (a forced --maxphys), no listing shows a device as fine while a read of
// it fails (a copied component), and `journal check` suggests -y only where
// -y would act.

import { closeSync, copyFileSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flipByte, geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';

const M = 1024 * 1024;

/** Validates a --json document against its schema in schemas/ (as test/project/json-schemas.test.ts does). */
function schemaErrors(command: string, doc: unknown): string | undefined {
  const dir = resolve(__dirname, '../../schemas');
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.schema.json'))) ajv.addSchema(JSON.parse(readFileSync(join(dir, f), 'utf8')) as object);
  const validate = ajv.getSchema(`${command.replace(/ /g, '-')}.schema.json`);
  if (!validate) return `no schema for ${command}`;
  return validate(doc) ? undefined : ajv.errorsText(validate.errors);
}

describe('a --maxphys that walks fewer journals than detection would (item 5)', () => {
  const s = scratch('geomctl-truth5-');
  const data = randomBytes(3 * M);
  let before: string;
  const run = (args: string[]) => geomctl(args, { cwd: s.dir });

  beforeAll(() => {
    // A one-image journal written with maxphys 1M: its 1 MiB entries are not
    // records at all for a 128k walk, which then finds no finished journal.
    sparseImage(s.path('d.img'), 112 * M);
    writeFileSync(s.path('in.bin'), data);
    expect(run(['journal', 'label', '-s', '100M', 'd.img']).status).toBe(0);
    expect(run(['journal', 'write', '-o', '1M', '-i', 'in.bin', 'd.img']).status).toBe(0);
    expect(run(['journal', 'status', 'd.img']).stdout).toMatch(/DIRTY/);
    before = sha256(s.path('d.img'));
  });
  afterAll(() => s.cleanup());

  it.each([
    ['sync', ['journal', 'sync', 'd.img']],
    ['sync -f', ['journal', 'sync', '-f', 'd.img']],
    ['stop', ['journal', 'stop', 'd.img']],
    ['stop -f', ['journal', 'stop', '-f', 'd.img']],
    ['write', ['journal', 'write', '-o', '0', '-i', 'in.bin', 'd.img']],
    ['write -f', ['journal', 'write', '-f', '-o', '0', '-i', 'in.bin', 'd.img']],
    ['write --sync -f', ['journal', 'write', '--sync', '-f', '-o', '0', '-i', 'in.bin', 'd.img']],
  ])('%s refuses, names --maxphys 1M, never offers -f, and leaves the image as it was', (_name, args) => {
    const r = run(['--maxphys', '128k', ...args]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: journal on d\.img: --maxphys 128k walks 0 finished journals, maxphys 1M walks 1 finished journal \(3145728 bytes to replay\)/);
    expect(r.stderr).toMatch(/give --maxphys 1M, or leave --maxphys out/);
    expect(r.stderr).not.toMatch(/-f |-f$|reinitialis|broken/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(sha256(s.path('d.img'))).toBe(before);
  });

  it.each([
    ['check', ['journal', 'check', 'd.img']],
    ['check -y', ['journal', 'check', '-y', 'd.img']],
  ])('%s reports the shortfall as the problem, suggests --maxphys 1M, not -y, and repairs nothing', (_name, args) => {
    const r = run(['--maxphys', '128k', ...args]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/problem: journal on d\.img: --maxphys 128k walks 0 finished journals, maxphys 1M walks 1 finished journal/);
    expect(r.stdout).not.toMatch(/broken|repaired/);
    expect(r.stderr).toBe('geomctl: d.img: 1 problem found; give --maxphys 1M, or leave --maxphys out to detect it\n');
    expect(sha256(s.path('d.img'))).toBe(before);
  });

  it.each([
    ['journal status', ['journal', 'status', 'd.img']],
    ['journal list', ['journal', 'list', 'd.img']],
    ['status', ['status', 'd.img']],
    ['list', ['list', 'd.img']],
  ])('%s warns that maxphys 1M replays what --maxphys 128k does not', (_name, args) => {
    const r = run(['--maxphys', '128k', ...args]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^geomctl: warning: journal on d\.img: --maxphys 128k walks 0 finished journals, maxphys 1M walks 1 finished journal .*give --maxphys 1M/);
    expect(r.stderr).not.toMatch(/-f\b/);
    expect(sha256(s.path('d.img'))).toBe(before);
  });

  it('read warns, scan shows both walks and names the maxphys that replays them', () => {
    const read = run(['--maxphys', '128k', 'journal', 'read', '-o', '1M', '-l', '512', 'd.img']);
    expect(read.status).toBe(0);
    expect(read.stderr).toMatch(/warning: journal on d\.img: --maxphys 128k walks 0 finished journals.*give --maxphys 1M/);
    const scan = run(['--maxphys', '128k', 'journal', 'scan', 'd.img']);
    expect(scan.status).toBe(0);
    expect(scan.stdout).toMatch(/walk with maxphys 128k: 0 finished journals/);
    expect(scan.stdout).toMatch(/walk with maxphys 1024k \(not used\): 1 finished journal/);
    expect(scan.stdout).toMatch(/--maxphys 128k walks fewer journals than maxphys 1M: give --maxphys 1M/);
  });

  it('the pending journal is still there: the right maxphys replays it whole', () => {
    expect(run(['--maxphys', '1M', 'journal', 'status', 'd.img']).stdout).toMatch(/DIRTY/);
    const r = run(['--maxphys', '1M', 'journal', 'sync', 'd.img']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('d.img: replayed 1 journal (3145728 bytes, maxphys 1048576)\n');
    const back = run(['journal', 'read', '-o', '1M', '-l', String(data.length), 'd.img']);
    expect(back.status).toBe(0);
    expect(back.stdoutBuffer.equals(data)).toBe(true);
    // Copied to the data area: the image itself holds the bytes now.
    const fd = openSync(s.path('d.img'), 'r');
    const copied = Buffer.alloc(data.length);
    readSync(fd, copied, 0, data.length, M);
    closeSync(fd);
    expect(copied.equals(data)).toBe(true);
  });
});

describe('journal check suggests -y only where -y acts (item 15)', () => {
  const s = scratch('geomctl-truth15-');
  const run = (args: string[]) => geomctl(args, { cwd: s.dir });
  afterAll(() => s.cleanup());

  it('metadata that does not decode: problems, exit 1, and no -y (it repairs nothing)', () => {
    sparseImage(s.path('m.img'), 112 * M);
    expect(run(['journal', 'label', '-s', '100M', 'm.img']).status).toBe(0);
    flipByte(s.path('m.img'), -512 + 90);
    const sum = sha256(s.path('m.img'));
    const r = run(['journal', 'check', 'm.img']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/problem: MD5 hash mismatch for m\.img/);
    expect(r.stderr).toBe('geomctl: m.img: 1 problem found\n');
    expect(r.stderr + r.stdout).not.toMatch(/check -y/);
    // And -y indeed does nothing to it.
    expect(run(['journal', 'check', '-y', 'm.img']).status).toBe(1);
    expect(sha256(s.path('m.img'))).toBe(sum);
  });

  it('a broken journal: -y is suggested, and it acts', () => {
    sparseImage(s.path('b.img'), 112 * M);
    expect(run(['journal', 'label', '-s', '100M', 'b.img']).status).toBe(0);
    writeFileSync(s.path('in.bin'), randomBytes(64 * 1024));
    expect(run(['journal', 'write', '-o', '0', '-i', 'in.bin', 'b.img']).status).toBe(0);
    // Wipe the journal header md_joffset names: nothing finished where the metadata points.
    const dump = run(['--json', 'journal', 'dump', 'b.img']);
    const md = (JSON.parse(dump.stdout) as { images: { metadata: { joffset: string | number } }[] }).images[0]!.metadata;
    const joffset = Number(md.joffset);
    const fd = openSync(s.path('b.img'), 'r+');
    writeSync(fd, Buffer.alloc(512), 0, 512, joffset);
    closeSync(fd);
    const r = run(['journal', 'check', 'b.img']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/problem: b\.img: journal is broken/);
    expect(r.stderr).toMatch(/^geomctl: b\.img: 1 problem found; 'geomctl journal check -y' repairs it/);
    const y = run(['journal', 'check', '-y', 'b.img']);
    expect(y.status, y.stderr).toBe(0);
    expect(y.stdout).toMatch(/repaired: repair/);
    expect(run(['journal', 'check', 'b.img']).status).toBe(0);
  });
});

describe('a copied component: every listing says the device cannot be used (item 6)', () => {
  const s = scratch('geomctl-truth6-');
  const run = (args: string[]) => geomctl(args, { cwd: s.dir });
  let sums: string[];
  const images = ['c0.img', 'c1.img', 'c0-backup.img'];

  beforeAll(() => {
    sparseImage(s.path('c0.img'), 64 * M);
    sparseImage(s.path('c1.img'), 64 * M);
    writeFileSync(s.path('in.bin'), randomBytes(M));
    expect(run(['virstor', 'label', '-s', '256M', 'thin', 'c0.img', 'c1.img']).status).toBe(0);
    expect(run(['virstor', 'write', '-o', '0', '-i', 'in.bin', 'thin']).status).toBe(0);
    copyFileSync(s.path('c0.img'), s.path('c0-backup.img'));
    sums = images.map((i) => sha256(s.path(i)));
  });
  afterAll(() => s.cleanup());

  const claim = /virstor thin: (c0-backup\.img and c0\.img|c0\.img and c0-backup\.img) both claim component 0/;

  it('read refuses, naming both images', () => {
    const r = run(['virstor', 'read', '-l', '4k', 'thin']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(claim);
  });

  it.each([
    ['virstor status thin', ['virstor', 'status', 'thin']],
    ['virstor status', ['virstor', 'status']],
    ['status', ['status']],
    ['status c0.img', ['status', 'c0.img']],
  ])('%s marks thin not usable, names both images, exits 1', (_name, args) => {
    const r = run(args);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/thin {2}not usable: component 0 claimed twice {2}c0/);
    expect(r.stderr).toMatch(claim);
    expect(images.map((i) => sha256(s.path(i)))).toEqual(sums);
  });

  it.each([
    ['virstor list thin', ['virstor', 'list', 'thin']],
    ['virstor list', ['virstor', 'list']],
    ['list', ['list']],
    ['list c0-backup.img', ['list', 'c0-backup.img']],
  ])('%s shows no provider, two components online, State not usable, exits 1', (_name, args) => {
    const r = run(args);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^Status: Components=2, Online=2$/m);
    expect(r.stdout).not.toMatch(/Online=3/);
    expect(r.stdout).toMatch(/^State: not usable: component 0 claimed twice$/m);
    expect(r.stdout).not.toMatch(/Providers:/);
    expect(r.stderr).toMatch(claim);
  });

  it.each([
    ['virstor list', ['virstor', 'list'], 'virstor list'],
    ['status', ['status'], 'status'],
  ])('--json %s carries usable: false and the problem, and exits 1', (_name, args, command) => {
    const r = run(['--json', ...args]);
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout) as { command: string; geoms: { name: string; usable: boolean; problem?: string; componentsOnline: number; provider: unknown }[] };
    expect(doc.command).toBe(command);
    expect(schemaErrors(command, doc)).toBeUndefined();
    const thin = doc.geoms.find((g) => g.name === 'thin');
    expect(thin?.usable).toBe(false);
    expect(thin?.problem).toMatch(/both claim component 0/);
    expect(thin?.componentsOnline).toBe(2);
    expect(thin?.provider).toBeNull();
    expect(r.stderr).toMatch(claim);
  });

  it('once the copy is cleared, thin lists as usable again and exits 0', () => {
    expect(run(['virstor', 'clear', 'c0-backup.img']).status).toBe(0);
    const r = run(['--json', 'virstor', 'status', 'thin']);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { geoms: { usable: boolean; problem?: string }[] };
    expect(schemaErrors('virstor status', doc)).toBeUndefined();
    expect(doc.geoms[0]?.usable).toBe(true);
    expect(doc.geoms[0]?.problem).toBeUndefined();
  });
});

describe('a component carrying the other one\'s index: as many images as md_count, component 0 missing', () => {
  const s = scratch('geomctl-truth6b-');
  const run = (args: string[]) => geomctl(args, { cwd: s.dir });

  beforeAll(() => {
    sparseImage(s.path('c0.img'), 64 * M);
    sparseImage(s.path('c1.img'), 64 * M);
    expect(run(['virstor', 'label', '-s', '256M', 'thin', 'c0.img', 'c1.img']).status).toBe(0);
    // c0.img's `no` (u16 at offset 70 of its metadata sector) made 1: both images claim component 1.
    const fd = openSync(s.path('c0.img'), 'r+');
    writeSync(fd, Buffer.from([1, 0]), 0, 2, 64 * M - 512 + 70);
    closeSync(fd);
  });
  afterAll(() => s.cleanup());

  it.each([
    ['virstor read', ['virstor', 'read', '-l', '4k', 'thin']],
    ['virstor list', ['virstor', 'list']],
    ['list c0.img', ['list', 'c0.img']],
  ])('%s names both images (tasting does not assemble the device), exits 1', (_name, args) => {
    const r = run(args);
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stderr).toMatch(/virstor thin: (c0\.img and c1\.img|c1\.img and c0\.img) both claim component 1/);
  });
});

describe('what is atomic, as README and the manual now say (item 7)', () => {
  const s = scratch('geomctl-truth7-');
  const run = (args: string[], env?: Record<string, string>) => geomctl(args, { cwd: s.dir, ...(env ? { env } : {}) });
  const A = Buffer.alloc(2 * M, 'A');
  const B = Buffer.alloc(2 * M, 'B');
  const saved = scratch('geomctl-truth7-saved-');
  const save = (): void => ['c0.img', 'c1.img'].forEach((i) => copyFileSync(s.path(i), saved.path(i)));
  const restore = (): void => ['c0.img', 'c1.img'].forEach((i) => copyFileSync(saved.path(i), s.path(i)));
  const read = (offset: string): Buffer => {
    const r = run(['virstor', 'read', '-o', offset, '-l', '2M', 'vz']);
    expect(r.status, r.stderr).toBe(0);
    return r.stdoutBuffer;
  };

  beforeAll(() => {
    sparseImage(s.path('c0.img'), 16 * M);
    sparseImage(s.path('c1.img'), 16 * M);
    writeFileSync(s.path('a.bin'), A);
    writeFileSync(s.path('b.bin'), B);
    expect(run(['virstor', 'label', '-m', '1M', '-s', '256M', 'vz', 'c0.img', 'c1.img']).status).toBe(0);
    expect(run(['virstor', 'write', '-o', '0', '-i', 'a.bin', 'vz']).status).toBe(0);
    save();
  });
  afterAll(() => {
    s.cleanup();
    saved.cleanup();
  });

  it('the docs no longer promise that a killed command leaves the images as they were, and name the carve-out', () => {
    const readme = readFileSync(resolve(__dirname, '../../README.md'), 'utf8').replace(/\s+/g, ' ');
    const man = readFileSync(resolve(__dirname, '../../man/geomctl.8'), 'utf8').replace(/\s+/g, ' ');
    expect(readme).not.toMatch(/fails or is killed leaves the images as they were\./);
    expect(readme).toMatch(/Not atomic: a virstor `write` over chunks that are already allocated/);
    expect(man).not.toMatch(/an undo log that makes each command all or nothing/);
    expect(man).not.toMatch(/A command that fails leaves the images as they were before it\./);
    expect(man).toMatch(/over chunks already allocated is not atomic/);
  });

  it('a killed write that allocates chunks leaves the allocation and the data as before or as after', () => {
    const listing = run(['virstor', 'list', 'vz']).stdout;
    let killed = 0;
    for (let n = 1; n < 40; n += 2) {
      restore();
      const r = run(['virstor', 'write', '-o', '100M', '-i', 'b.bin', 'vz'], { GEOMCTL_FAULT: `kill@write:${n}` });
      if (r.status === 0) break;
      killed++;
      // A writing command rolls back what the kill left half done.
      expect(run(['virstor', 'stop', 'vz']).status).toBe(0);
      const back = read('100M');
      if (back.equals(B)) continue; // killed after the commit point: all of it
      expect(back.equals(Buffer.alloc(2 * M))).toBe(true);
      expect(run(['virstor', 'list', 'vz']).stdout).toBe(listing);
    }
    expect(killed).toBeGreaterThan(0);
    restore();
  });

  it('a killed overwrite of allocated chunks may leave them partly new, sector by sector, with consistent metadata', () => {
    const listing = run(['virstor', 'list', 'vz']).stdout;
    let mixed = 0;
    for (let n = 1; n < 40; n++) {
      restore();
      const r = run(['virstor', 'write', '-o', '0', '-i', 'b.bin', 'vz'], { GEOMCTL_FAULT: `kill@write:${n}` });
      if (r.status === 0) break;
      expect(run(['virstor', 'stop', 'vz']).status).toBe(0);
      expect(run(['virstor', 'check', 'vz']).status).toBe(0);
      expect(run(['virstor', 'list', 'vz']).stdout).toBe(listing);
      const back = read('0');
      for (let o = 0; o < back.length; o += 512) {
        const sector = back.subarray(o, o + 512);
        expect(sector.equals(A.subarray(0, 512)) || sector.equals(B.subarray(0, 512))).toBe(true);
      }
      if (!back.equals(A) && !back.equals(B)) mixed++;
    }
    // What the documents now say: not atomic.
    expect(mixed).toBeGreaterThan(0);
    restore();
  });
});
