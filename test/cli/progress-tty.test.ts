// Progress only on a TTY (cli.md, "Progress"; quality.md, "User experience"):
// the long verbs run under a pseudo-terminal made by util-linux script(1) and
// must show ora's spinner with bytes done / total (and a rate once measurable); off a TTY, with
// --json and with --quiet they print nothing but their result (a rollback of
// an unfinished transaction is reported even so). NO_COLOR and
// --no-color take the colour out of everything, the spinner included.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, geomctl, scratch, sparseImage } from '../helpers/cli.js';
import { tool } from '../helpers/tools.js';
import { createEngine } from '../../src/engine/engine.js';
import { openImage } from '../../src/provider/file.js';

const SCRIPT = tool('script');
const M = 1024 * 1024;
/**
 * ora's text: "write: 22M / 40M (35M/s)" — humanize()d bytes done, total, and
 * the rate once it has been measured over half a second (test/cli/one-liners.test.ts
 * checks that it then appears).
 */
const SPINNER = /\d+(\.\d)?[BKMGTPE] \/ \d+(\.\d)?[BKMGTPE]( \(\d+(\.\d)?[BKMGTPE]\/s\))?/;
/** SGR sequences: colour and other character attributes. */
const SGR = /\x1b\[[0-9;]*m/;
const ESC = '\x1b';

const s = scratch('geomctl-tty-');
afterAll(() => s.cleanup());

const quote = (a: string): string => `'${a.replace(/'/g, "'\\''")}'`;

/** The environment a user's terminal would give: colour allowed unless the test asks. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // A colour terminal: chalk (under ora) would not colour a dumb or unknown TERM anyway.
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', ...extra };
  if (!('NO_COLOR' in extra)) delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  // chalk turns colour off under CI=true (CI sets it): this terminal is meant to be a user's.
  delete env.CI;
  delete env.GEOMCTL_DEBUG;
  return env;
}

interface PtyRun {
  status: number;
  /** Everything geomctl wrote to the terminal: its stderr, and its stdout with `stdoutToTerminal`. */
  terminal: string;
  /** What went to stdout when it was redirected to a file. */
  stdout: string;
}

/**
 * Runs geomctl under a pseudo-terminal (stdin, stdout and stderr on the pty),
 * stdout redirected to a file so that the terminal shows stderr alone, unless
 * `stdoutToTerminal`. `size: false` leaves the pty without a window size
 * (script(1) without a terminal makes one of 0 x 0); by default it gets 100 x 30.
 */
function pty(args: string[], opts: { env?: Record<string, string>; size?: boolean; stdoutToTerminal?: boolean } = {}): PtyRun {
  const out = s.path('pty.stdout');
  rmSync(out, { force: true });
  const stty = opts.size === false ? '' : 'stty cols 100 rows 30 2>/dev/null; ';
  const redirect = opts.stdoutToTerminal ? '' : ` >${quote(out)}`;
  const command = `${stty}exec ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}${redirect}`;
  const r = spawnSync(SCRIPT!, ['-qfec', command, '/dev/null'], { cwd: s.dir, env: userEnv(opts.env), encoding: 'utf8', timeout: 60_000, input: '' });
  expect(r.error, 'script(1) ran and finished in time').toBeUndefined();
  return { status: r.status ?? -1, terminal: r.stdout, stdout: existsSync(out) ? readFileSync(out, 'utf8') : '' };
}

/** The same command off a TTY: plain pipes. */
function piped(args: string[], env: Record<string, string> = {}) {
  return geomctl(args, { cwd: s.dir, env: userEnv(env) });
}

/**
 * `before` runs first, off a TTY, each time (sync needs a journal left dirty by
 * a write); `note` is the one stderr line a successful run may print without
 * --quiet or --json (a replay is reported: it changed the data image).
 */
const LONG: { what: string; args: string[]; before?: string[]; note?: RegExp }[] = [
  { what: 'journal write', args: ['journal', 'write', '--sync', '-i', 'in.bin', 'j.img'] },
  { what: 'journal sync', args: ['journal', 'sync', 'j.img'], before: ['journal', 'write', '-i', 'in.bin', 'j.img'], note: /^j\.img: replayed 1 journal \(\d+ bytes, maxphys \d+\)\n$/ },
  { what: 'journal read', args: ['journal', 'read', '-l', '32M', '-O', 'jread.out', 'j.img'] },
  { what: 'journal export', args: ['journal', 'export', '-O', 'jexport.out', 'j.img'] },
  { what: 'virstor write', args: ['virstor', 'write', '-i', 'in.bin', 'vd'] },
  { what: 'virstor read', args: ['virstor', 'read', '-l', '32M', '-O', 'vread.out', 'vd'] },
  { what: 'virstor export', args: ['virstor', 'export', '-O', 'vexport.out', 'vd'] },
];

describe.skipIf(!SCRIPT)('progress under a pseudo-terminal (util-linux script)', () => {
  beforeAll(() => {
    writeFileSync(s.path('in.bin'), randomBytes(32 * M));
    sparseImage(s.path('j.img'), 200 * M);
    // Big enough that a 32 MiB write stays above the kernel's 100-chunk watermark (no warning).
    sparseImage(s.path('v0.img'), 256 * M);
    sparseImage(s.path('v1.img'), 256 * M);
    for (const args of [
      ['journal', 'label', '-s', '100M', 'j.img'],
      ['virstor', 'label', '-m', '1M', '-s', '512M', 'vd', 'v0.img', 'v1.img'],
    ]) {
      const r = geomctl(args, { cwd: s.dir });
      expect(r.status, r.stderr).toBe(0);
    }
  });

  const prepare = (before: string[] | undefined): void => {
    if (!before) return;
    const r = geomctl(before, { cwd: s.dir });
    expect(r.status, r.stderr).toBe(0);
  };

  for (const { what, args, before, note } of LONG) {
    it(`${what} shows a spinner with bytes and a rate on a TTY`, () => {
      prepare(before);
      const r = pty(args);
      expect(r.status, r.terminal).toBe(0);
      expect(r.terminal).toMatch(SPINNER);
      expect(r.stdout).toBe('');
    });

    it(`${what} prints nothing off a TTY, with --json and with --quiet`, () => {
      prepare(before);
      const plain = piped(args);
      expect(plain.status, plain.stderr).toBe(0);
      if (note) expect(plain.stderr).toMatch(note);
      else expect(plain.stderr).toBe('');
      expect(plain.stdout).toBe('');
      prepare(before);
      const json = piped(['--json', ...args]);
      expect(json.stderr).toBe('');
      expect(JSON.parse(json.stdout).command).toBe(what);
      prepare(before);
      const quietPty = pty(['--quiet', ...args]);
      expect(quietPty.status).toBe(0);
      expect(quietPty.terminal).toBe('');
      prepare(before);
      const jsonPty = pty(['--json', ...args]);
      expect(jsonPty.status).toBe(0);
      expect(jsonPty.terminal).toBe('');
      expect(JSON.parse(jsonPty.stdout).command).toBe(what);
    });
  }

  it('the spinner is coloured on a terminal, and not with NO_COLOR or --no-color', () => {
    const args = ['virstor', 'read', '-l', '32M', '-O', 'vread.out', 'vd'];
    // Both streams on the terminal (chalk, under ora, colours only when stdout is a TTY too).
    const run = (a: string[], env: Record<string, string> = {}) => pty(a, { env, stdoutToTerminal: true });
    // The control: without either, ora colours its spinner (so the check below can fail).
    expect(run(args).terminal).toMatch(SGR);
    for (const r of [run(args, { NO_COLOR: '1' }), run(args, { NO_COLOR: 'yes' }), run(['--no-color', ...args])]) {
      expect(r.status).toBe(0);
      expect(r.terminal).toMatch(SPINNER);
      expect(r.terminal).not.toMatch(SGR);
    }
    // no-color.org: an empty NO_COLOR is as good as none.
    expect(run(args, { NO_COLOR: '' }).terminal).toMatch(SGR);
  });

  // Listings are coloured on a terminal (test/cli/colour-tty.test.ts has the details);
  // dump (FreeBSD's text) and JSON never are, and NO_COLOR takes the colour out of all.
  it('text results on a terminal: listings coloured, dump and JSON plain, nothing coloured with NO_COLOR', () => {
    for (const args of [['list'], ['journal', 'dump', 'j.img'], ['virstor', 'map', 'vd'], ['status'], ['--json', 'virstor', 'list']]) {
      const coloured = args[0] === 'list' || args[0] === 'status' || args[1] === 'map';
      for (const env of [{}, { NO_COLOR: '1' }] as Record<string, string>[]) {
        const r = pty(args, { env, stdoutToTerminal: true });
        expect(r.status, r.terminal).toBe(0);
        expect(r.terminal.trim().length).toBeGreaterThan(0);
        expect(r.terminal.includes(ESC), `${args.join(' ')} ${JSON.stringify(env)}: ${JSON.stringify(r.terminal)}`).toBe(coloured && !('NO_COLOR' in env));
      }
    }
  });

  // virstor check and map stream the allocation map: a spinner once the map is large (here 64 MiB: 8 TiB of 1 MiB chunks).
  const bigDevice = (): void => {
    if (existsSync(s.path('big0.img'))) return;
    sparseImage(s.path('big0.img'), 160 * M);
    sparseImage(s.path('big1.img'), 80 * M);
    writeFileSync(s.path('big.in'), randomBytes(4096));
    for (const args of [
      ['virstor', 'label', '-m', '1M', '-s', '8T', 'big', 'big0.img', 'big1.img'],
      ['virstor', 'write', '-o', '4T', '-i', 'big.in', 'big'],
    ]) {
      const r = geomctl(args, { cwd: s.dir });
      expect(r.status, r.stderr).toBe(0);
    }
  };

  for (const { verb, result } of [
    { verb: 'check', result: /^virstor big: 1 allocated chunks, 0 errors, 0 warnings\n$/ },
    { verb: 'map', result: /^Offset .*\n0x40000000000 +0x100000 +0x8000000 +big0\.img \(chunks 4194304 -> component 0 chunks 128\)\n$/ },
  ]) {
    it(`virstor ${verb} of a large map shows a spinner on a TTY, and nothing off it or with --json or --quiet`, () => {
      bigDevice();
      const args = ['virstor', verb, 'big'];
      const r = pty(args);
      expect(r.status, r.terminal).toBe(0);
      expect(r.terminal).toMatch(SPINNER);
      expect(r.stdout).toMatch(result);
      // Both on the terminal: the result lines stay whole around the spinner (their colours aside).
      const both = pty(args, { stdoutToTerminal: true });
      expect(both.terminal.replace(/\r\n/g, '\n').replace(new RegExp(SGR.source, 'g'), '')).toContain(r.stdout.split('\n').at(-2));
      const plain = piped(args);
      expect(plain.status, plain.stderr).toBe(0);
      expect(plain.stderr).toBe('');
      expect(plain.stdout).toBe(r.stdout);
      expect(pty(['--quiet', ...args]).terminal).toBe('');
      const jsonPty = pty(['--json', ...args]);
      expect(jsonPty.terminal).toBe('');
      expect(JSON.parse(jsonPty.stdout).command).toBe(`virstor ${verb}`);
      // A small map is over at once: no spinner.
      const small = pty(['virstor', verb, 'vd']);
      expect(small.status, small.terminal).toBe(0);
      expect(small.terminal).toBe('');
    });
  }

  it('a pseudo-terminal without a window size (0 columns) still shows progress and finishes', () => {
    const r = pty(['virstor', 'read', '-l', '32M', '-O', 'vread.out', 'vd'], { size: false });
    expect(r.status).toBe(0);
    expect(r.terminal).toMatch(SPINNER);
    expect(r.terminal.length).toBeLessThan(64 * 1024);
  });

  it('journal scan, scan --all and check show the walk on a TTY, and nothing off it, with --json or --quiet', () => {
    const dirty = ['journal', 'write', '-i', 'in.bin', 'j.img'];
    const cases: { args: string[]; labels: string[] }[] = [
      { args: ['journal', 'scan', 'j.img'], labels: ['walking the journal'] },
      { args: ['journal', 'scan', '--all', 'j.img'], labels: ['walking the journal', 'reading the journal space'] },
      { args: ['journal', 'check', 'j.img'], labels: ['walking the journal'] },
    ];
    try {
      for (const { args, labels } of cases) {
        prepare(dirty); // a journal to walk
        const r = pty(args);
        expect(r.status, r.terminal).toBe(0);
        for (const label of labels) expect(r.terminal).toMatch(new RegExp(`${label}: ${SPINNER.source}`));
        expect(r.stdout).not.toBe('');
        const plain = piped(args);
        expect(plain.status, plain.stderr).toBe(0);
        expect(plain.stderr).toBe('');
        expect(pty(['--quiet', ...args]).terminal).toBe('');
        const jsonPty = pty(['--json', ...args]);
        expect(jsonPty.terminal).toBe('');
        expect(JSON.parse(jsonPty.stdout).command).toBe(args.slice(0, 2).join(' '));
      }
    } finally {
      prepare(['journal', 'sync', 'j.img']);
    }
  });

  it('rolling back an unfinished transaction on open shows a spinner on a TTY, and no spinner off it', () => {
    const image = s.path('rb.img');
    /** An abandoned transaction over 8 MiB of old bytes: a hot undo log beside rb.img. */
    const crash = (): void => {
      writeFileSync(image, randomBytes(8 * M));
      truncateSync(image, 110 * M);
      const e = createEngine({ providers: [openImage(image, { write: true })], cacheLimit: M });
      for (let off = 0; off < 8 * M; off += M) e.write(0, off, Buffer.alloc(M, 0x5a), 'META');
      e.abort();
      e.close();
      expect(existsSync(`${image}.geomctl-undo`)).toBe(true);
    };
    // Any writing verb rolls back first: here a journal label over the image.
    const args = ['journal', 'label', '-f', '-s', '100M', 'rb.img'];
    crash();
    const r = pty(args);
    expect(r.status, r.terminal).toBe(0);
    expect(r.terminal).toMatch(new RegExp(`rolling back an unfinished transaction: ${SPINNER.source}`));
    crash();
    // Off a TTY no spinner: only the line saying what was rolled back.
    const rolledBack = /^geomctl: rolled back an unfinished transaction \(undo log rb\.img\.geomctl-undo\)[^\n]*\n$/;
    const plain = piped(args);
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(rolledBack);
    crash();
    expect(pty(['--quiet', ...args]).terminal).toBe('');
    crash();
    const jsonPty = pty(['--json', ...args]);
    expect(jsonPty.terminal.replace(/\r\n/g, '\n')).toMatch(rolledBack);
    expect(JSON.parse(jsonPty.stdout).command).toBe('journal label');
    expect(existsSync(`${image}.geomctl-undo`)).toBe(false);
  });
});
