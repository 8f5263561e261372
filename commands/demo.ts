// geomctl demo: the main job end to end on scratch images (cli.md, "Top-level
// verbs"; issue: "User experience"). Each step runs geomctl itself as a child
// process, prints the command line and its output, and checks what it should
// have done; the demo exits 0 only when every check held.
//
// The story: label a journal, write a UFS image (made by makefs when it is
// installed, generated data otherwise) through it, kill geomctl in the middle
// of a second write (a simulated crash), let the next command replay the
// journal, sync, read back and compare, dump; then label a thin virstor device,
// write sparsely, add a component, map, check and export.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GeomError } from '../src/errors.js';
import { defineCommand, type Context } from './framework.js';

interface StepResult {
  status: number;
  stdout: Buffer;
  stderr: string;
}

const MiB = 1024 * 1024;

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** A fresh sparse image of `size` bytes (replacing any earlier one with --keep). */
function scratchImage(path: string, size: number): void {
  writeFileSync(path, '');
  truncateSync(path, size);
}

/** Finds makefs on PATH or in the sbin directories Debian installs it to. */
function findMakefs(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  return dirs.map((d) => join(d, 'makefs')).find((p) => existsSync(p));
}

class Demo {
  private failures = 0;
  /** Every check, for the --json document. */
  readonly checks: { what: string; ok: boolean }[] = [];
  constructor(
    private readonly ctx: Context,
    private readonly dir: string,
  ) {}

  private show(text: string): void {
    this.ctx.out.text(text);
  }

  /** Runs `geomctl args...` in the scratch directory and prints it like a shell session. */
  run(args: string[], opts: { input?: Buffer; env?: Record<string, string>; quietStdout?: boolean } = {}): StepResult {
    this.show(`$ ${opts.env ? `${Object.entries(opts.env).map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''}geomctl ${args.join(' ')}`);
    const r = spawnSync(process.execPath, [resolve(process.argv[1] ?? 'geomctl'), ...args], {
      cwd: this.dir,
      input: opts.input,
      env: { ...process.env, NO_COLOR: '1', ...(opts.env ?? {}) },
      maxBuffer: 256 * MiB,
    });
    const result = { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr.toString() };
    if (!opts.quietStdout && result.stdout.length) this.show(result.stdout.toString().trimEnd());
    if (result.stderr) this.show(result.stderr.trimEnd());
    return result;
  }

  check(ok: boolean, what: string): void {
    this.checks.push({ what, ok });
    this.show(ok ? `  ok: ${what}` : `  FAILED: ${what}`);
    if (!ok) this.failures++;
  }

  expectStatus(r: StepResult, status: number, what: string): void {
    this.check(r.status === status, `${what} (exit ${r.status}${r.status === status ? '' : `, expected ${status}`})`);
  }

  heading(text: string): void {
    this.show(`\n== ${text}`);
  }

  get failed(): number {
    return this.failures;
  }
}

/** The UFS payload: a real makefs image when makefs is there, generated data otherwise. */
function payload(dir: string, demo: Demo): Buffer {
  const makefs = findMakefs();
  if (makefs) {
    const tree = join(dir, 'tree');
    mkdirSync(tree);
    writeFileSync(join(tree, 'README'), 'written through a FreeBSD journal on a machine without FreeBSD\n');
    writeFileSync(join(tree, 'random.bin'), randomBytes(2 * MiB));
    const image = join(dir, 'ufs.img');
    const r = spawnSync(makefs, ['-t', 'ffs', '-o', 'version=2', '-s', '16m', image, tree]);
    if (r.status === 0) {
      demo.check(true, 'makefs -t ffs made a 16 MiB UFS2 image (ufs.img)');
      return readFileSync(image);
    }
  }
  demo.check(true, 'makefs not installed: using 16 MiB of generated data instead of a UFS image');
  const data = Buffer.alloc(16 * MiB);
  for (let off = 0; off < data.length; off += 64 * 1024) randomBytes(4096).copy(data, off);
  writeFileSync(join(dir, 'ufs.img'), data);
  return data;
}

function journalStory(demo: Demo, dir: string): void {
  demo.heading('gjournal: a data image with its journal at the end');
  scratchImage(join(dir, 'data.img'), 256 * MiB);
  const ufs = payload(dir, demo);
  demo.expectStatus(demo.run(['journal', 'label', '-c', '-s', '128M', 'data.img']), 0, 'label a one-image journal with checksums');
  demo.expectStatus(demo.run(['journal', 'write', '-i', 'ufs.img', 'data.img']), 0, 'write the UFS image through the journal');
  demo.expectStatus(demo.run(['journal', 'status', 'data.img']), 0, 'status shows the journal dirty, data not yet copied');

  demo.heading('a crash: geomctl killed at its 3rd write while writing over the start of the UFS');
  const overwrite = randomBytes(MiB);
  writeFileSync(join(dir, 'patch.bin'), overwrite);
  const crashed = demo.run(['journal', 'write', '-o', '0', '-i', 'patch.bin', 'data.img'], { env: { GEOMCTL_FAULT: 'kill@write:3' } });
  demo.check(crashed.status !== 0, 'the write died before it finished');

  demo.heading('replay: the next command finds the finished journals and copies them');
  demo.expectStatus(demo.run(['journal', 'scan', 'data.img']), 0, 'scan shows the journals on disk');
  demo.expectStatus(demo.run(['journal', 'sync', '-v', 'data.img']), 0, 'sync replays, copies and marks the journal clean');
  const back = demo.run(['journal', 'read', '-l', String(ufs.length), 'data.img'], { quietStdout: true });
  const expectOld = md5(ufs);
  const withPatch = Buffer.from(ufs);
  overwrite.copy(withPatch, 0);
  const got = md5(back.stdout);
  demo.check(back.status === 0 && (got === expectOld || got === md5(withPatch)), 'the journaled provider holds the UFS image, the killed write all or nothing');
  demo.expectStatus(demo.run(['journal', 'dump', 'data.img']), 0, 'dump prints the metadata as FreeBSD does');
  demo.expectStatus(demo.run(['journal', 'check', 'data.img']), 0, 'check finds nothing wrong');
}

function virstorStory(demo: Demo, dir: string): void {
  demo.heading('gvirstor: a 1 GiB thin device on two 64 MiB images');
  for (const name of ['c0.img', 'c1.img', 'c2.img']) scratchImage(join(dir, name), 64 * MiB);
  demo.expectStatus(demo.run(['virstor', 'label', '-v', '-s', '1G', '-m', '4M', 'thin', 'c0.img', 'c1.img']), 0, 'label a virstor device');
  const sparse = Buffer.alloc(48 * MiB);
  randomBytes(3 * MiB).copy(sparse, 0);
  randomBytes(MiB).copy(sparse, 40 * MiB);
  writeFileSync(join(dir, 'sparse.bin'), sparse);
  demo.expectStatus(demo.run(['virstor', 'write', '--sparse', '-o', '100M', '-i', 'sparse.bin', 'thin']), 0, 'write 48 MiB that hold 4 MiB of data, sparsely');
  demo.expectStatus(demo.run(['virstor', 'map', 'thin']), 0, 'map shows only the chunks that hold data');
  demo.expectStatus(demo.run(['virstor', 'add', 'thin', 'c2.img']), 0, 'add a third component');
  demo.expectStatus(demo.run(['virstor', 'status', 'thin']), 0, 'status shows three components');
  demo.expectStatus(demo.run(['virstor', 'check', 'thin']), 0, 'check finds nothing wrong');
  demo.expectStatus(demo.run(['virstor', 'export', '-O', 'thin.raw', 'thin']), 0, 'export the whole device as a sparse file');
  const exported = join(dir, 'thin.raw');
  if (existsSync(exported)) {
    const st = statSync(exported);
    const fd = readFileSync(exported).subarray(100 * MiB, 148 * MiB);
    demo.check(st.size === 1024 * MiB && md5(fd) === md5(sparse), 'the export is 1 GiB and holds what was written');
    demo.check(st.blocks * 512 < 64 * MiB, `the export is sparse (${Math.round((st.blocks * 512) / MiB)} MiB on disk)`);
  } else demo.check(false, 'the export exists');
  demo.expectStatus(demo.run(['list']), 0, 'the top-level list shows both geoms');
}

/** Whether `tool` is on PATH (serve's step needs an NBD client). */
function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, tool)));
}

function serveStory(demo: Demo): void {
  if (!onPath('nbdinfo')) {
    demo.check(true, 'nbdinfo not installed (Debian: libnbd-bin): the serve step is skipped');
    return;
  }
  demo.heading('serve: the thin device over NBD, to a real client');
  const r = demo.run(['serve', '--run', 'nbdinfo --map "$uri"', 'virstor/thin']);
  demo.expectStatus(r, 0, 'nbdinfo --map reads the allocation map over NBD');
  demo.check(/data/.test(r.stdout.toString()) && /hole,zero/.test(r.stdout.toString()), 'the NBD map shows allocated chunks and holes');
}

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'run the whole story (label, write, crash, replay, sync, dump) on scratch images',
  args: '',
  options: [{ long: 'keep', value: 'dir', kind: 'string', description: 'keep the scratch images in DIR instead of a temporary directory' }],
  examples: ['geomctl demo', 'geomctl demo --keep /tmp/geomctl-demo'],
  run(ctx, _args, opts) {
    const { keep } = opts;
    if (keep) mkdirSync(keep, { recursive: true });
    const dir = keep ?? mkdtempSync(join(tmpdir(), 'geomctl-demo-'));
    ctx.out.text(`geomctl demo: scratch images in ${dir}`);
    const demo = new Demo(ctx, dir);
    try {
      journalStory(demo, dir);
      virstorStory(demo, dir);
      serveStory(demo);
    } finally {
      if (!keep) rmSync(dir, { recursive: true, force: true });
    }
    ctx.out.document('demo', { directory: dir, kept: keep !== undefined, ok: demo.failed === 0, checks: demo.checks });
    if (demo.failed) throw new GeomError('CHECK', `demo: ${demo.failed} step(s) did not do what they should`, ctx.out.json ? "run 'geomctl demo' without --json to see each step's output" : 'see the FAILED lines above');
    ctx.out.text('\ndemo: every step did what it should');
  },
});
