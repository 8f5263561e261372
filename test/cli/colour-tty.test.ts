// Colour on a terminal (issue 12, part 1; geomctl(8), ENVIRONMENT): real
// commands run under a pseudo-terminal made by util-linux script(1), and the
// escape codes chalk writes are checked: "geomctl:" of an error red, a
// warning yellow, status words by meaning (green, yellow, red), the headers of
// list and status bold, scan's finished and unfinished journals and map's
// columns told apart. Then their absence: off a terminal, with --json,
// NO_COLOR, --no-color, FORCE_COLOR=0 and TERM=dumb; and FORCE_COLOR=1 colours
// a pipe. With the escapes taken out, what a terminal shows is byte for byte
// what a pipe gets (the golden text), and dump is never coloured.

import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, geomctl, scratch, sparseImage } from '../helpers/cli.js';
import { tool } from '../helpers/tools.js';

const SCRIPT = tool('script');
const M = 1024 * 1024;
const ESC = '\x1b';
/** chalk's basic SGR codes (level 1), each with its reset. */
const bold = (t: string): string => `\x1b[1m${t}\x1b[22m`;
const red = (t: string): string => `\x1b[31m${t}\x1b[39m`;
const green = (t: string): string => `\x1b[32m${t}\x1b[39m`;
const yellow = (t: string): string => `\x1b[33m${t}\x1b[39m`;
const blue = (t: string): string => `\x1b[34m${t}\x1b[39m`;
const magenta = (t: string): string => `\x1b[35m${t}\x1b[39m`;
const cyan = (t: string): string => `\x1b[36m${t}\x1b[39m`;
const SGR = /\x1b\[[0-9;]*m/g;

const s = scratch('geomctl-colour-');
afterAll(() => s.cleanup());

const quote = (a: string): string => `'${a.replace(/'/g, "'\\''")}'`;

/** A user's colour terminal: no colour setting of the test runner's own (CI, NO_COLOR, FORCE_COLOR) leaks in. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color' };
  for (const name of ['NO_COLOR', 'FORCE_COLOR', 'CI', 'GEOMCTL_DEBUG', 'GEOMCTL_PATH']) delete env[name];
  return { ...env, ...extra };
}

interface PtyRun {
  status: number;
  /** What reached the terminal (its line ends made \n again). */
  terminal: string;
  /** stdout or stderr, when redirected to a file. */
  stdout: string;
  stderr: string;
}

/**
 * Runs geomctl in `dir` under a pseudo-terminal: stdout and stderr both on it,
 * unless `redirect` sends one of them to a file (then that stream is no TTY).
 */
function pty(args: string[], opts: { env?: Record<string, string>; redirect?: 'stdout' | 'stderr'; dir?: string } = {}): PtyRun {
  const files = { stdout: s.path('pty.stdout'), stderr: s.path('pty.stderr') };
  for (const f of Object.values(files)) rmSync(f, { force: true });
  const redirect = opts.redirect === 'stdout' ? ` >${quote(files.stdout)}` : opts.redirect === 'stderr' ? ` 2>${quote(files.stderr)}` : '';
  const command = `stty cols 150 rows 30 2>/dev/null; exec ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}${redirect}`;
  const r = spawnSync(SCRIPT!, ['-qfec', command, '/dev/null'], { cwd: opts.dir ?? s.dir, env: userEnv(opts.env), encoding: 'utf8', timeout: 60_000, input: '' });
  expect(r.error, 'script(1) ran and finished in time').toBeUndefined();
  const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  return { status: r.status ?? -1, terminal: r.stdout.replace(/\r\n/g, '\n'), stdout: read(files.stdout), stderr: read(files.stderr) };
}

/** Off a TTY: plain pipes (the harness's NO_COLOR=1 emptied: an empty NO_COLOR is none). */
function piped(args: string[], env: Record<string, string> = {}, dir = s.dir) {
  return geomctl(args, { cwd: dir, env: userEnv({ NO_COLOR: '', ...env }) });
}

const ok = (args: string[]): void => {
  const r = piped(args);
  expect(r.status, r.stderr).toBe(0);
};

/** Zeroes one sector of an image in place (no need to read 200 MiB to change 512 bytes). */
function zeroSector(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(512), 0, 512, offset);
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!SCRIPT)('colour under a pseudo-terminal (util-linux script)', () => {
  beforeAll(() => {
    writeFileSync(s.path('in.bin'), randomBytes(64 * 1024));
    writeFileSync(s.path('big.in'), randomBytes(32 * M));
    // clean.img stays CLEAN; dirty.img keeps a finished journal and the unfinished one after it.
    for (const name of ['clean.img', 'dirty.img', 'broken.img']) {
      sparseImage(s.path(name), 200 * M);
      ok(['journal', 'label', '-s', '100M', name]);
    }
    ok(['journal', 'write', '-i', 'in.bin', 'dirty.img']);
    // broken.img: its terminating header zeroed, so no journal ever finishes (journal.md: broken).
    ok(['journal', 'write', '-i', 'in.bin', 'broken.img']);
    const scan = JSON.parse(piped(['--json', 'journal', 'scan', 'broken.img']).stdout) as { walks: { journals: { offset: number }[] }[] };
    zeroSector(s.path('broken.img'), scan.walks[0]?.journals[1]?.offset as number);
    // full.img: pending journals fill 75% of its journal space, past the kernel's force_switch (70%).
    sparseImage(s.path('full.img'), 200 * M);
    ok(['journal', 'label', '-s', '100M', 'full.img']);
    writeFileSync(s.path('75M.bin'), Buffer.alloc(75 * M));
    ok(['journal', 'write', '-i', '75M.bin', 'full.img']);
    rmSync(s.path('75M.bin'));
    // damaged.img: checksummed records, one byte of the first record's data changed (its MD5 fails).
    sparseImage(s.path('damaged.img'), 200 * M);
    ok(['journal', 'label', '-c', '-s', '100M', 'damaged.img']);
    ok(['journal', 'write', '-i', 'in.bin', 'damaged.img']);
    const header = (JSON.parse(piped(['--json', 'journal', 'scan', 'damaged.img']).stdout) as { walks: { journals: { offset: number }[] }[] }).walks[0]?.journals[0]?.offset as number;
    // Flipped, not overwritten: in.bin is random, so a fixed byte would already be there 1 run in 256.
    const fd = openSync(s.path('damaged.img'), 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, header + 1024 + 100);
    writeSync(fd, Buffer.from([byte[0] ^ 0xff]), 0, 1, header + 1024 + 100);
    closeSync(fd);
    // vd has room; low is running out of it (fewer free chunks than the kernel's watermark of 100).
    for (const name of ['v0.img', 'v1.img', 'low0.img', 'low1.img']) sparseImage(s.path(name), 64 * M);
    ok(['virstor', 'label', '-m', '1M', '-s', '512M', 'vd', 'v0.img', 'v1.img']);
    ok(['virstor', 'label', '-m', '1M', '-s', '512M', 'low', 'low0.img', 'low1.img']);
    ok(['virstor', 'write', '-o', '2M', '-i', 'in.bin', 'vd']);
    ok(['--quiet', 'virstor', 'write', '-i', 'big.in', 'low']);
  });

  it('errors: "geomctl:" red, on the usage errors too; warnings yellow', () => {
    const missing = pty(['journal', 'label', 'missing.img']);
    expect(missing.status).toBe(1);
    expect(missing.terminal).toMatch(new RegExp(`^${escape(red('geomctl:'))} missing\\.img: `));
    const usage = pty(['journal', 'label', '--no-such-option', 'x.img']);
    expect(usage.status).toBe(2);
    expect(usage.terminal.startsWith(`${red('geomctl:')} unknown option`)).toBe(true);
    const warned = pty(['-d', 'no-such-dir', 'journal', 'status', 'clean.img']);
    expect(warned.status).toBe(0);
    expect(warned.terminal).toContain(`${yellow('geomctl: warning:')} no-such-dir: no such directory`);
  });

  it('journal states by meaning: CLEAN green, DIRTY and a journal running out of space yellow, BROKEN red; headers bold', () => {
    const r = pty(['journal', 'status', 'clean.img', 'dirty.img', 'broken.img']);
    expect(r.status, r.terminal).toBe(0);
    expect(r.terminal).toContain(bold('              Name  Status  Components'));
    expect(r.terminal).toContain(`clean.img.journal   ${green('CLEAN')}  clean.img`);
    expect(r.terminal).toContain(`dirty.img.journal   ${yellow('DIRTY')}  dirty.img`);
    expect(r.terminal).toContain(`broken.img.journal  ${red('BROKEN')}  broken.img`);
    const list = pty(['journal', 'list', 'dirty.img', 'broken.img']);
    expect(list.terminal).toMatch(/^\x1b\[1mGeom name: gjournal \d+\x1b\[22m\n/);
    expect(list.terminal).toContain(`State: ${yellow('DIRTY')}\n`);
    expect(list.terminal).toContain(`State: ${red('BROKEN')}\n`);
    expect(list.terminal).toContain(`${bold('Providers:')}\n`);
    expect(list.terminal).toContain(`${bold('Consumers:')}\n`);
    // Running out of journal space: used past the kernel's force_switch, in yellow.
    const full = pty(['journal', 'list', 'full.img', 'dirty.img']);
    expect(full.terminal).toContain(`Journal used: ${yellow('75%')}\n`);
    expect(full.terminal).toContain('Journal used: 0%\n');
  });

  it('virstor states by meaning: room green, running out of space yellow, incomplete red', () => {
    const r = pty(['virstor', 'status', 'vd', 'low']);
    expect(r.status, r.terminal).toBe(0);
    expect(r.terminal).toMatch(new RegExp(`virstor/vd  ${escape(green('97% physical free'))}  v0\\.img`));
    expect(r.terminal).toMatch(new RegExp(`virstor/low  ${escape(yellow('72% physical free'))}  low0\\.img`));
    const list = pty(['virstor', 'list', 'vd']);
    expect(list.terminal).toContain(`Status: ${green('Components=2, Online=2')}\n`);
    expect(list.terminal).toContain(`State: ${green('97% physical free')}\n`);
    // One component of two, alone in a directory: the device is incomplete (shown with -a).
    const alone = s.path('alone');
    rmSync(alone, { recursive: true, force: true });
    mkdirSync(alone);
    copyFileSync(s.path('v0.img'), `${alone}/v0.img`);
    const half = pty(['virstor', 'status', '-a'], { dir: alone });
    expect(half.status, half.terminal).toBe(0);
    expect(half.terminal).toMatch(/ vd {2}\x1b\[31m\d+% physical free\x1b\[39m {2}v0\.img\n/);
    const halfList = pty(['virstor', 'list', '-a'], { dir: alone });
    expect(halfList.terminal).toContain(`Status: ${red('Components=2, Online=1')}\n`);
  });

  it("scan tells finished journals (green) from the unfinished one (yellow), a damaged one ends red; map's columns each their colour", () => {
    // --quiet: no spinner on the terminal between the lines.
    const scan = pty(['--quiet', 'journal', 'scan', 'dirty.img']);
    expect(scan.status, scan.terminal).toBe(0);
    expect(scan.terminal.startsWith('\x1b[1mJournal of dirty.img: jstart')).toBe(true);
    expect(scan.terminal).toContain(`State: ${yellow('DIRTY')}, checksum no`);
    expect(scan.terminal).toMatch(/ {2}\x1b\[32mheader {2}id \d+ next \d+\x1b\[39m\n/);
    expect(scan.terminal).toMatch(/ {2}\x1b\[33mheader {2}id \d+ next \d+ {2}\(not finished\)\x1b\[39m\n/);
    // A damaged journal: the walk's end, on a record whose checksum fails, is red.
    const damaged = pty(['--quiet', 'journal', 'scan', 'damaged.img']);
    expect(damaged.terminal).toMatch(/ {2}\x1b\[31mend {5}checksum: the record at \d+ fails its MD5 checksum\x1b\[39m\n/);
    const map = pty(['virstor', 'map', 'vd']);
    expect(map.status, map.terminal).toBe(0);
    expect(map.terminal).toBe(`${bold('Offset          Length          Mapped to       File')}\n${cyan('0x200000')}        ${magenta('0x100000')}        ${blue('0x200000')}        v0.img (chunks 2 -> component 0 chunks 2)\n`);
  });

  it('with the escapes taken out, a terminal shows what a pipe gets; dump is never coloured', () => {
    for (const args of [['status'], ['list'], ['--quiet', 'journal', 'scan', 'dirty.img'], ['virstor', 'map', 'low'], ['virstor', 'status', '-s', 'low'], ['--quiet', 'journal', 'check', 'clean.img'], ['--quiet', 'virstor', 'check', 'vd']]) {
      const terminal = pty(args);
      const plain = piped(args);
      expect(terminal.terminal, args.join(' ')).toMatch(SGR);
      expect(plain.stdout.includes(ESC)).toBe(false);
      expect(terminal.terminal.replace(SGR, ''), args.join(' ')).toBe(plain.stdout);
    }
    for (const args of [['dump', 'dirty.img'], ['virstor', 'dump', 'v0.img']]) {
      const terminal = pty(args);
      expect(terminal.status).toBe(0);
      expect(terminal.terminal.includes(ESC), args.join(' ')).toBe(false);
      expect(terminal.terminal).toBe(piped(args).stdout);
    }
  });

  /** Commands whose stdout and stderr both colour on a terminal: a listing, an error and a warning. */
  const LISTING = ['status'];
  const ERROR = ['journal', 'label', 'missing.img'];
  const WARNING = ['-d', 'no-such-dir', 'status'];

  it('no colour with NO_COLOR, --no-color, --json, FORCE_COLOR=0 or TERM=dumb, on the terminal itself', () => {
    // The control: each of them colours without the setting (so the checks below can fail).
    for (const args of [LISTING, ERROR, WARNING]) expect(pty(args).terminal).toMatch(SGR);
    const cases: { env?: Record<string, string>; flag?: string }[] = [{ env: { NO_COLOR: '1' } }, { flag: '--no-color' }, { flag: '--json' }, { env: { FORCE_COLOR: '0' } }, { env: { TERM: 'dumb' } }];
    for (const { env, flag } of cases) {
      for (const args of [LISTING, ERROR, WARNING]) {
        const r = pty(flag ? [flag, ...args] : args, { env });
        expect(r.terminal.trim().length, `${flag ?? JSON.stringify(env)} ${args.join(' ')}`).toBeGreaterThan(0);
        expect(r.terminal.includes(ESC), `${flag ?? JSON.stringify(env)} ${args.join(' ')}: ${JSON.stringify(r.terminal)}`).toBe(false);
      }
    }
    // no-color.org: an empty NO_COLOR is as good as none.
    expect(pty(LISTING, { env: { NO_COLOR: '' } }).terminal).toMatch(SGR);
  });

  it('each stream decides for itself: a redirected stream is plain while the other, on the terminal, is coloured', () => {
    const listing = pty(WARNING, { redirect: 'stdout' });
    expect(listing.stdout).toContain('Status');
    expect(listing.stdout.includes(ESC)).toBe(false);
    expect(listing.terminal).toContain(yellow('geomctl: warning:'));
    const error = pty(ERROR, { redirect: 'stderr' });
    expect(error.stderr).toMatch(/^geomctl: missing\.img: /);
    const warned = pty(WARNING, { redirect: 'stderr' });
    expect(warned.stderr).toMatch(/^geomctl: warning: no-such-dir/);
    expect(warned.terminal).toMatch(/^\x1b\[1m +Name +Status +Components\x1b\[22m\n/);
  });

  it('off a terminal: no colour, unless FORCE_COLOR asks for it (and NO_COLOR or --no-color still win)', () => {
    for (const args of [LISTING, ERROR, WARNING, ['list'], ['virstor', 'map', 'vd'], ['journal', 'scan', 'dirty.img']]) {
      const r = piped(args);
      expect(r.stdout.includes(ESC) || r.stderr.includes(ESC), args.join(' ')).toBe(false);
    }
    for (const level of ['1', '2', '3', 'true', '']) {
      const listing = piped(LISTING, { FORCE_COLOR: level });
      expect(listing.stdout, `FORCE_COLOR=${level}`).toContain(yellow('DIRTY'));
      expect(piped(ERROR, { FORCE_COLOR: level }).stderr.startsWith(red('geomctl:'))).toBe(true);
    }
    for (const level of ['0', 'false']) expect(piped(LISTING, { FORCE_COLOR: level }).stdout.includes(ESC)).toBe(false);
    for (const r of [piped(LISTING, { FORCE_COLOR: '1', NO_COLOR: '1' }), piped(['--no-color', ...LISTING], { FORCE_COLOR: '1' }), piped(['--json', ...LISTING], { FORCE_COLOR: '1' }), piped(['--json', ...ERROR], { FORCE_COLOR: '1' })]) {
      expect(r.stdout.includes(ESC) || r.stderr.includes(ESC)).toBe(false);
    }
  });
});

/** A string as a RegExp that matches it literally. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
