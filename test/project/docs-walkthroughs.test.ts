// The documentation's command sequences run, verbatim (issue 9, item 13): a
// user who pastes a README walkthrough or a manual EXAMPLES display into a
// shell must see every command succeed. The test is generic — it finds the
// sequences in the documents, so a walkthrough added later is run too.
//
// Which text is a sequence:
//
// - README.md: every ```sh fenced block, except
//   - a transcript: a block whose first line starts with "$ " (a command and
//     its output, e.g. the JSON example); it is shown, not run;
//   - the block right after the line `<!-- docs-test: skip -->` (installing
//     and the whole test suite: `npm ci`, `npm test`).
//   Other fences (```, ```json, diagrams) are never run.
//   The block right after `<!-- docs-test: inputs -->` makes the input files
//   the walkthroughs read (ufs.img, disk.raw): it is run first in every
//   scratch directory, before each sequence of either document (and so is
//   checked itself). There must be exactly one.
// - man/geomctl.8: in the EXAMPLES section, every `.Bd -literal` … `.Ed`
//   display, and every run of consecutive `.Dl` lines, is a sequence. An mdoc
//   comment `.\" docs-test: COMMAND` in EXAMPLES is run (hidden) before the
//   next sequence: it stands for what the reader brings, e.g. images copied
//   off a FreeBSD machine.
//
// How a sequence runs: in a fresh scratch directory, the inputs block first,
// with `geomctl` on PATH (a symlink to the built bin/geomctl, as `npm link`
// makes one), one line at a time in one bash process with `set -o pipefail`
// (a `\` at the end of a line continues it). Every line must exit 0, unless
// its trailing comment begins `# exit N`: the document shows a failing
// command on purpose, and N is the status it must exit with. Lines hold one
// command each (no here-documents or multi-line `if`/`for`).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, scratch } from '../helpers/cli.js';

const ROOT = resolve(__dirname, '../..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const MANUAL = readFileSync(join(ROOT, 'man/geomctl.8'), 'utf8');

interface Sequence {
  /** Where it comes from, for the test name: "README.md:57". */
  where: string;
  /** The command lines, continuations joined. */
  lines: string[];
  /** Hidden set-up lines run before it (the manual's docs-test comments). */
  setup: string[];
}

/** Joins `\`-continued lines; drops blank lines and whole-line comments. */
function commandLines(text: string[]): string[] {
  const out: string[] = [];
  let pending = '';
  for (const raw of text) {
    if (raw.endsWith('\\')) {
      pending += `${raw.slice(0, -1)} `;
      continue;
    }
    const line = pending + raw;
    pending = '';
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    out.push(line);
  }
  if (pending.trim() !== '') out.push(pending);
  return out;
}

/** README.md's ```sh blocks: the walkthroughs, and the one that makes the inputs. */
function readmeSequences(): { walkthroughs: Sequence[]; inputs: Sequence[] } {
  const lines = README.split('\n');
  const walkthroughs: Sequence[] = [];
  const inputs: Sequence[] = [];
  let directive: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const d = /^<!-- docs-test: (\S+) -->$/.exec(line.trim());
    if (d) {
      directive = d[1];
      continue;
    }
    if (!line.startsWith('```')) {
      if (line.trim() !== '') directive = undefined;
      continue;
    }
    const info = line.slice(3).trim();
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] as string).startsWith('```'); i++) body.push(lines[i] as string);
    const seq: Sequence = { where: `README.md:${start + 1}`, lines: commandLines(body), setup: [] };
    const given = directive;
    directive = undefined;
    if (info !== 'sh' || given === 'skip') continue;
    if (given !== undefined && given !== 'inputs') throw new Error(`README.md:${start}: unknown docs-test directive '${given}'`);
    if ((body.find((l) => l.trim() !== '') ?? '').startsWith('$ ')) continue; // a transcript
    (given === 'inputs' ? inputs : walkthroughs).push(seq);
  }
  return { walkthroughs, inputs };
}

/** Text of a literal display line: the few roff escapes a shell line may need. */
function unroff(line: string): string {
  return line.replace(/\\&/g, '').replace(/\\-/g, '-').replace(/\\\(aq/g, "'").replace(/\\e/g, '\\');
}

/** The manual's EXAMPLES displays and .Dl runs, with the hidden set-up before each. */
function manualSequences(): Sequence[] {
  const lines = MANUAL.split('\n');
  const from = lines.findIndex((l) => l.trim() === '.Sh EXAMPLES');
  if (from < 0) throw new Error('man/geomctl.8 has no EXAMPLES section');
  const out: Sequence[] = [];
  let setup: string[] = [];
  for (let i = from + 1; i < lines.length && !(lines[i] as string).startsWith('.Sh '); i++) {
    const line = lines[i] as string;
    const hidden = /^\.\\" docs-test: (.*)$/.exec(line);
    if (hidden) {
      setup.push(hidden[1] as string);
      continue;
    }
    const start = i;
    let body: string[] | undefined;
    if (/^\.Bd -literal\b/.test(line)) {
      body = [];
      for (i++; i < lines.length && (lines[i] as string).trim() !== '.Ed'; i++) body.push(unroff(lines[i] as string));
    } else if (line.startsWith('.Dl ')) {
      body = [];
      for (; i < lines.length && (lines[i] as string).startsWith('.Dl '); i++) body.push(unroff((lines[i] as string).slice(4)));
      i--;
    }
    if (!body) continue;
    out.push({ where: `man/geomctl.8:${start + 1}`, lines: commandLines(body), setup });
    setup = [];
  }
  return out;
}

/** The status a line must exit with: its trailing `# exit N` comment, or 0. */
function expectedStatus(line: string): number {
  const m = /\s#\s*exit (\d+)\b/.exec(line);
  return m ? Number(m[1]) : 0;
}

const quote = (a: string): string => `'${a.replace(/'/g, "'\\''")}'`;

/**
 * The bash script for a sequence: each line verbatim, in braces so that its
 * own trailing comment stays a comment, then a check of its exit status.
 */
function script(lines: string[]): string {
  const parts = ['set -o pipefail'];
  for (const line of lines) {
    const want = expectedStatus(line);
    parts.push(`{ ${line}\n}`);
    parts.push(`__rc=$?; if [ "$__rc" -ne ${want} ]; then echo ">>> exit status $__rc, expected ${want}:" ${quote(line)} >&2; exit 100; fi`);
  }
  return `${parts.join('\n')}\n`;
}

const s = scratch('geomctl-docs-');
afterAll(() => s.cleanup());

// `geomctl` on PATH, as `npm link` puts it there.
const binDir = s.path('bin');
mkdirSync(binDir);
symlinkSync(BIN, join(binDir, 'geomctl'));

let runs = 0;
function runSequence(seq: Sequence, inputs: Sequence[]): { status: number; stdout: string; stderr: string } {
  const dir = s.path(`run${runs++}`);
  mkdirSync(dir);
  const lines = [...inputs.flatMap((i) => i.lines), ...seq.setup, ...seq.lines];
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ''}`, NO_COLOR: '1' };
  delete env.GEOMCTL_PATH;
  delete env.GEOMCTL_FAULT;
  delete env.GEOMCTL_DEBUG;
  const r = spawnSync('bash', ['-c', script(lines)], { cwd: dir, env, encoding: 'utf8', maxBuffer: 1 << 28, timeout: 170_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const makefs = ['/usr/sbin/makefs', '/usr/bin/makefs', '/sbin/makefs'].some((p) => existsSync(p));
const readme = readmeSequences();
const manual = manualSequences();

describe.skipIf(!makefs)('documented command sequences run verbatim (the inputs need makefs)', () => {
  it('the documents have the sequences this test expects to find', () => {
    expect(readme.inputs, 'exactly one <!-- docs-test: inputs --> block').toHaveLength(1);
    expect(readme.walkthroughs.length).toBeGreaterThanOrEqual(2);
    expect(manual.length).toBeGreaterThanOrEqual(3);
    // The README says how to put geomctl on PATH for the walkthroughs.
    expect(README).toMatch(/npm link/);
  });

  for (const seq of [...readme.walkthroughs, ...manual]) {
    it(`${seq.where}: ${seq.lines[0] ?? ''}${seq.lines.length > 1 ? ' …' : ''}`, () => {
      const r = runSequence(seq, readme.inputs);
      expect(r.status, `${r.stderr.slice(-3000)}`).toBe(0);
    }, 180_000);
  }
});

describe('the convention for failing commands', () => {
  it('a line exiting otherwise than documented fails its sequence, and "# exit N" is honoured', () => {
    const seq = (lines: string[]): Sequence => ({ where: 'test', lines, setup: [] });
    expect(runSequence(seq(['true', 'geomctl dump nope.img']), []).status).toBe(100);
    expect(runSequence(seq(['geomctl dump nope.img   # exit 1: no such image', 'true']), []).status).toBe(0);
    expect(runSequence(seq(['true   # exit 1: but it succeeds']), []).stderr).toMatch(/exit status 0, expected 1/);
    expect(runSequence(seq(['false | cat']), []).status).toBe(100); // pipefail
  });
});
