// FreeBSD habits (issue 9, items 8-11), through the built bin/geomctl:
// geom(8)'s `list [-a]` and `status [-ags]`; provider names on the command
// line (providers.md, "Naming a provider"); `journal sync` without an image
// syncing every journal found; -d adding to the places tasted.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage, type CliResult } from '../helpers/cli.js';

const M = 1024 * 1024;
const s = scratch('geomctl-habits-');
afterAll(() => s.cleanup());

const SCHEMA_DIR = resolve(__dirname, '../../schemas');
const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
for (const f of readdirSync(SCHEMA_DIR)) ajv.addSchema(JSON.parse(readFileSync(join(SCHEMA_DIR, f), 'utf8')) as Record<string, unknown>);

/** Whether a --json document validates against its command's schema (json-schemas.test.ts checks the rest). */
function validates(command: string, doc: unknown): string | undefined {
  const v = ajv.getSchema(`${command.replace(/ /g, '-')}.schema.json`);
  if (!v) return 'no schema';
  return v(doc) ? undefined : ajv.errorsText(v.errors);
}

/** A fresh directory under the scratch one: `.` is always tasted, so each case keeps its own. */
function place(name: string): string {
  const dir = s.path(name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function run(cwd: string, args: string[], input?: Buffer): CliResult {
  return geomctl(args, { cwd, ...(input ? { input } : {}) });
}

function ok(cwd: string, args: string[], input?: Buffer): CliResult {
  const r = run(cwd, args, input);
  expect(r.status, `geomctl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

/** A two-image journal: data.img (8 MiB) and j/j.img (101 MiB), labeled with a fixed id. */
function twoImageJournal(dir: string, id = 1001): void {
  mkdirSync(`${dir}/j`, { recursive: true });
  sparseImage(`${dir}/data.img`, 8 * M);
  sparseImage(`${dir}/j/j.img`, 101 * M);
  ok(dir, ['journal', 'label', '--id', String(id), 'data.img', 'j/j.img']);
}

/** A virstor device `name` of two 8 MiB components `<prefix>0.img`, `<prefix>1.img`. */
function virstor(dir: string, name: string, prefix: string): void {
  sparseImage(`${dir}/${prefix}0.img`, 8 * M);
  sparseImage(`${dir}/${prefix}1.img`, 8 * M);
  ok(dir, ['virstor', 'label', '-m', '1M', '-s', '32M', name, `${prefix}0.img`, `${prefix}1.img`]);
}

describe('geom(8) status [-ags] and list [-a] (item 8)', () => {
  const dir = place('status');
  virstor(dir, 'thin', 'c');
  virstor(dir, 'inc', 'i');
  // inc loses a component: incomplete, no provider.
  mkdirSync(`${dir}/away`);
  renameSync(`${dir}/i1.img`, `${dir}/away/i1.img`);

  it('status shows the providers only, as geom(8): an incomplete device is left out', () => {
    const r = ok(dir, ['virstor', 'status']);
    expect(r.stdout).toBe(['        Name             Status  Components', 'virstor/thin  72% physical free  c0.img', '                                 c1.img', ''].join('\n'));
    expect(ok(dir, ['status']).stdout).toBe(r.stdout);
  });

  it('-a adds the geoms without a provider, under their geom name', () => {
    const r = ok(dir, ['virstor', 'status', '-a']);
    expect(r.stdout.split('\n')).toEqual(['        Name             Status  Components', 'virstor/thin  72% physical free  c0.img', '                                 c1.img', '         inc  43% physical free  i0.img', '']);
    expect(ok(dir, ['status', '-a']).stdout).toBe(r.stdout);
  });

  it('-s is the script form: no header, name and status on every component line', () => {
    expect(ok(dir, ['virstor', 'status', '-s']).stdout).toBe('virstor/thin  72% physical free  c0.img\nvirstor/thin  72% physical free  c1.img\n');
    expect(ok(dir, ['status', '-as']).stdout).toBe(
      ['virstor/thin  72% physical free  c0.img', 'virstor/thin  72% physical free  c1.img', '         inc  43% physical free  i0.img', ''].join('\n'),
    );
  });

  it('-g names the rows by geom', () => {
    expect(ok(dir, ['virstor', 'status', '-g']).stdout).toBe(['Name             Status  Components', 'thin  72% physical free  c0.img', '                         c1.img', ''].join('\n'));
    expect(ok(dir, ['status', '-ags']).stdout).toBe(['thin  72% physical free  c0.img', 'thin  72% physical free  c1.img', ' inc  43% physical free  i0.img', ''].join('\n'));
  });

  it('list shows the incomplete device only with -a or by name, in text and JSON', () => {
    for (const verb of [['list'], ['virstor', 'list']]) {
      expect(ok(dir, verb).stdout).not.toContain('Geom name: inc');
      expect(ok(dir, [...verb, '-a']).stdout).toContain('Geom name: inc');
      const names = (JSON.parse(ok(dir, ['--json', ...verb]).stdout) as { geoms: { name: string }[] }).geoms.map((g) => g.name);
      expect(names).toEqual(['thin']);
      const all = (JSON.parse(ok(dir, ['--json', ...verb, '-a']).stdout) as { geoms: { name: string }[] }).geoms.map((g) => g.name);
      expect(all.sort()).toEqual(['inc', 'thin']);
    }
    expect(ok(dir, ['virstor', 'list', 'inc']).stdout).toContain('Status: Components=2, Online=1');
    expect(ok(dir, ['list', 'i0.img']).stdout).toContain('Geom name: inc');
  });

  it('the journal verbs take the flags too: -g names the geom, -s drops the header', () => {
    const jd = place('status-journal');
    twoImageJournal(jd, 4242);
    expect(ok(jd, ['-d', 'j', 'journal', 'status', '-gs']).stdout).toBe('gjournal 4242  CLEAN  data.img\ngjournal 4242  CLEAN  j.img\n');
    expect(ok(jd, ['-d', 'j', 'status', '-s']).stdout).toBe('data.img.journal  CLEAN  data.img\ndata.img.journal  CLEAN  j.img\n');
    expect(ok(jd, ['-d', 'j', 'journal', 'list', '-a']).stdout).toContain('Geom name: gjournal 4242');
  });

  it('an unknown flag is still a usage error', () => {
    const r = run(dir, ['status', '-x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown option '-x'");
  });
});

describe('provider names on the command line (item 9)', () => {
  const dir = place('names');
  twoImageJournal(dir);
  virstor(dir, 'thin', 'c');
  const payload = randomBytes(64 * 1024);
  writeFileSync(`${dir}/in.bin`, payload);

  it('journal verbs take the journal provider, with or without /dev/', () => {
    ok(dir, ['-d', 'j', 'journal', 'write', '-o', '1M', '-i', 'in.bin', 'data.img.journal']);
    expect(ok(dir, ['-d', 'j', 'journal', 'status', '/dev/data.img.journal']).stdout).toContain('data.img.journal   DIRTY  data.img');
    const read = ok(dir, ['-d', 'j', 'journal', 'read', '-o', '1M', '-l', '64k', '/dev/data.img.journal']);
    expect(read.stdoutBuffer.equals(payload)).toBe(true);
    const stop = ok(dir, ['-d', 'j', 'journal', 'stop', '-v', 'data.img.journal']);
    expect(stop.stdout).toContain('Device data.img.journal stopped');
    expect(ok(dir, ['-d', 'j', 'journal', 'status', 'data.img.journal']).stdout).toContain('CLEAN');
    expect(ok(dir, ['-d', 'j', 'journal', 'list', 'data.img.journal']).stdout).toContain('Geom name: gjournal 1001');
  });

  it('a journal provider may carry its data image directory, which is tasted', () => {
    const up = s.path('');
    expect(ok(up, ['-d', 'names/j', 'journal', 'status', 'names/data.img.journal']).stdout).toContain('data.img.journal   CLEAN  data.img');
  });

  it('virstor verbs take virstor/NAME, with or without /dev/', () => {
    expect(ok(dir, ['virstor', 'list', 'virstor/thin']).stdout).toContain('Geom name: thin');
    expect(ok(dir, ['virstor', 'status', '/dev/virstor/thin']).stdout).toContain('virstor/thin');
    ok(dir, ['virstor', 'write', '-o', '2M', '-i', 'in.bin', '/dev/virstor/thin']);
    expect(ok(dir, ['virstor', 'read', '-o', '2M', '-l', '64k', 'virstor/thin']).stdoutBuffer.equals(payload)).toBe(true);
    ok(dir, ['virstor', 'check', 'virstor/thin']);
    expect(ok(dir, ['-v', 'virstor', 'stop', 'virstor/thin']).stdout).toContain('Device thin has');
  });

  it('top-level list and status take provider names and show only their geoms', () => {
    const v = ok(dir, ['-d', 'j', 'status', 'virstor/thin']).stdout;
    expect(v).toContain('virstor/thin');
    expect(v).not.toContain('journal');
    const j = ok(dir, ['-d', 'j', 'list', '/dev/data.img.journal']).stdout;
    expect(j).toContain('Geom name: gjournal 1001');
    expect(j).not.toContain('Geom name: thin');
  });

  it('a provider name that names nothing is an error without advice to create a file', () => {
    const before = sha256(`${dir}/data.img`);
    for (const args of [
      ['journal', 'stop', 'nothere.img.journal'],
      ['journal', 'status', '/dev/nothere.img.journal'],
      ['status', 'virstor/nothere'],
    ]) {
      const r = run(dir, args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/^geomctl: \S*nothere\S*: no such file, and no geom found in \. offers provider (nothere\.img\.journal|virstor\/nothere); /);
      expect(r.stderr).not.toContain('truncate');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const v = run(dir, ['virstor', 'list', 'virstor/nothere']);
    expect(v.status).toBe(1);
    expect(v.stderr).toContain('no virstor device named nothere found');
    expect(sha256(`${dir}/data.img`)).toBe(before);
  });

  it('a provider name two images offer is refused, naming both', () => {
    const ad = place('ambiguous');
    mkdirSync(`${ad}/b`);
    for (const img of ['data.img', 'b/data.img']) {
      sparseImage(`${ad}/${img}`, 110 * M);
      ok(ad, ['journal', 'label', '-s', '100M', img]);
    }
    const r = run(ad, ['-d', 'b', 'journal', 'sync', 'data.img.journal']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('geomctl: data.img.journal: 2 data images offer this provider (b/data.img, data.img); name the data image itself\n');
    // A directory in the name says which: the provider is looked for there only.
    expect(ok(ad, ['-d', 'b', 'journal', 'stop', '-v', 'b/data.img.journal']).stdout).toBe('Device b/data.img.journal stopped: b/data.img holds its contents (0 replayed bytes verified).\n');
  });

  it('a virstor provider with no journal on it says so, and how to put one there (stacks: providers.md)', () => {
    const r = run(dir, ['journal', 'status', 'virstor/thin']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("geomctl: virstor/thin: no journal metadata in its last sector; label it with 'geomctl journal label', or see 'geomctl taste' for what it holds\n");
  });

  it('a file whose name is also a provider name is used as the file, with a warning', () => {
    const fd = place('shadow');
    sparseImage(`${fd}/x.img`, 120 * M);
    ok(fd, ['journal', 'label', '-s', '100M', 'x.img']);
    sparseImage(`${fd}/x.img.journal`, 120 * M);
    ok(fd, ['journal', 'label', '-s', '100M', 'x.img.journal']);
    const r = ok(fd, ['journal', 'status', 'x.img.journal']);
    expect(r.stdout).toContain('x.img.journal.journal');
    expect(r.stderr).toContain('warning: x.img.journal is a file, used as given; the provider x.img.journal (journal on x.img) is not');
  });
});

describe('journal sync without an image (item 10)', () => {
  const dir = place('syncall');
  twoImageJournal(dir, 2001);
  sparseImage(`${dir}/one.img`, 110 * M);
  ok(dir, ['journal', 'label', '--id', '2002', '-s', '100M', 'one.img']);
  const payload = randomBytes(128 * 1024);

  it('syncs every journal found by tasting, one line each', () => {
    ok(dir, ['-d', 'j', 'journal', 'write', 'data.img'], payload);
    ok(dir, ['journal', 'write', '-o', '4M', 'one.img'], payload);
    const before = ok(dir, ['-d', 'j', 'journal', 'status', '-s']).stdout;
    expect(before).toContain('data.img.journal  DIRTY  data.img');
    expect(before).toContain('one.img.journal  DIRTY  one.img');
    const r = ok(dir, ['-d', 'j', 'journal', 'sync']);
    expect(r.stdout).toBe('data.img.journal: CLEAN.\none.img.journal: CLEAN.\n');
    expect(ok(dir, ['-d', 'j', 'journal', 'status', '-s']).stdout).toBe(
      ['data.img.journal  CLEAN  data.img', 'data.img.journal  CLEAN  j.img', ' one.img.journal  CLEAN  one.img', ''].join('\n'),
    );
    const doc = JSON.parse(ok(dir, ['--json', '-d', 'j', 'journal', 'sync']).stdout) as { command: string; devices: { data: string; recovery: { action: string } }[] };
    expect(doc.command).toBe('journal sync');
    expect(validates('journal sync', doc)).toBeUndefined();
    expect(validates('journal sync', { ...doc, data: 'one.img' }), 'the two forms do not mix').toBeDefined();
    expect(doc.devices.map((d) => [d.data, d.recovery.action])).toEqual([
      ['data.img', 'none'],
      ['one.img', 'none'],
    ]);
    expect(ok(dir, ['journal', 'read', '-o', '4M', '-l', '128k', 'one.img']).stdoutBuffer.equals(payload)).toBe(true);
  });

  it('a journal that cannot be synced is reported, the others are synced, and the exit status is 1', () => {
    const bd = place('syncall-broken');
    sparseImage(`${bd}/good.img`, 110 * M);
    ok(bd, ['journal', 'label', '-s', '100M', 'good.img']);
    sparseImage(`${bd}/held.img`, 110 * M);
    ok(bd, ['journal', 'label', '-s', '100M', 'held.img']);
    ok(bd, ['journal', 'write', 'good.img'], payload);
    // Another process holds held.img (flock(1), as a second geomctl would).
    const holder: ChildProcess = spawn('flock', ['-x', `${bd}/held.img`, 'sleep', '30'], { stdio: 'ignore' });
    try {
      let r: CliResult;
      const deadline = Date.now() + 5000;
      do r = run(bd, ['journal', 'sync']);
      while (!r.stderr.includes('held.img') && Date.now() < deadline);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^geomctl: held\.img is in use by /m);
      expect(r.stdout).toBe('good.img.journal: CLEAN.\n');
    } finally {
      holder.kill();
    }
    expect(ok(bd, ['journal', 'status', 'good.img']).stdout).toContain('CLEAN');
  });

  it('finds nothing to do quietly where there is no journal', () => {
    const r = ok(place('syncall-empty'), ['journal', 'sync']);
    expect(r.stdout.trim()).toBe('');
  });
});

describe('-d adds to the places tasted (item 11)', () => {
  const dir = place('dirs');
  twoImageJournal(dir, 3001);

  it('-d j still tastes the current directory: the data image beside is found', () => {
    const r = ok(dir, ['-d', 'j', 'journal', 'status']);
    expect(r.stdout).toContain('data.img.journal   CLEAN  data.img');
    expect(ok(dir, ['-d', 'j', 'status']).stdout).toContain('data.img.journal');
  });

  it('the directory of a named image is tasted: the other image of its journal is found without -d', () => {
    const pair = place('dirs-pair');
    sparseImage(`${pair}/data.img`, 8 * M);
    sparseImage(`${pair}/j.img`, 101 * M);
    ok(pair, ['journal', 'label', 'data.img', 'j.img']);
    const up = s.path('');
    expect(ok(up, ['journal', 'status', 'dirs-pair/j.img']).stdout).toContain('data.img.journal   CLEAN  data.img');
    expect(ok(up, ['status', 'dirs-pair/data.img']).stdout).toContain('data.img.journal   CLEAN  data.img');
    ok(up, ['journal', 'sync', 'dirs-pair/data.img']);
    ok(up, ['journal', 'stop', 'dirs-pair/data.img.journal']);
    // Only the named image's directory: dirs/j is not beside dirs/data.img, so -d is still needed there.
    const r = run(up, ['journal', 'sync', 'dirs/data.img']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('no image with its journal was found in ., dirs;');
    ok(up, ['-d', 'dirs/j', 'journal', 'sync', 'dirs/data.img']);
  });

  it("a virstor image named in another directory brings its directory's components", () => {
    const vd = place('dirs-virstor');
    virstor(vd, 'vv', 'v');
    sparseImage(`${vd}/v2.img`, 8 * M);
    const up = s.path('');
    expect(run(up, ['virstor', 'status', 'vv']).status).toBe(1);
    ok(up, ['virstor', 'add', 'vv', 'dirs-virstor/v2.img']);
    expect(ok(up, ['-d', 'dirs-virstor', 'virstor', 'list', 'vv']).stdout).toContain('Status: Components=3, Online=3');
  });
});
