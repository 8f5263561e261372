// The one-line messages of issue 9, item 18, black-box through bin/geomctl:
// each says what is true of this command line, no more and no less.
// - an error line with a hint has no double punctuation (".;");
// - "Provider too small for journalling" does not echo the user's own -s
//   back as the default, and says what -s would fit;
// - a read past the end without -l does not invent "-l 0" / "0 bytes";
// - one byte is "1 byte";
// - ELOOP and EFBIG say what to do;
// - an invalid option value is refused wherever it stands, even when a later
//   occurrence of the option is valid;
// - list, status and taste that find nothing print nothing (zero bytes);
// - a write reading a terminal says so, once, on stderr;
// - a rollback of an unfinished transaction says what it rolled back;
// - the journal walk's spinner ends at its total, with no absurd rate.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, geomctl, scratch, sha256, sparseImage, type CliResult } from '../helpers/cli.js';

const M = 1024 * 1024;
const s = scratch('geomctl-one-liners-');
afterAll(() => s.cleanup());

const run = (args: string[], opts: { env?: Record<string, string>; input?: Buffer; cwd?: string } = {}): CliResult =>
  geomctl(args, { cwd: opts.cwd ?? s.dir, ...(opts.env ? { env: opts.env } : {}), ...(opts.input ? { input: opts.input } : {}) });

function ok(args: string[], opts: { input?: Buffer; cwd?: string } = {}): CliResult {
  const r = run(args, opts);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

/** The single stderr line of a failed command, checked for the bar every message meets. */
function oneLine(r: CliResult, status: number): string {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.status, r.stderr).toBe(status);
  const line = lines[0] as string;
  expect(line).toMatch(/^geomctl: \S/);
  expect(line, 'no double punctuation').not.toMatch(/[.;:,][.;:,]/);
  return line;
}

const SCRIPT = '/usr/bin/script';
const quote = (a: string): string => `'${a.replace(/'/g, "'\\''")}'`;

/** Runs a shell command line under a pseudo-terminal (stdin, stdout and stderr on it); returns what the terminal showed. */
function pty(command: string, env: Record<string, string> = {}): { status: number; terminal: string } {
  const r = spawnSync(SCRIPT, ['-qfec', `stty cols 100 rows 30 2>/dev/null; ${command}`, '/dev/null'], {
    cwd: s.dir,
    env: { ...process.env, NO_COLOR: '1', TERM: 'xterm-256color', GEOMCTL_DEBUG: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
    input: '',
  });
  expect(r.error, 'script(1) ran and finished in time').toBeUndefined();
  return { status: r.status ?? -1, terminal: r.stdout };
}

const geomctlLine = (args: string[]): string => `exec ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}`;

beforeAll(() => {
  sparseImage(s.path('d.img'), 1024 * M);
  sparseImage(s.path('j.img'), 1024 * M);
  sparseImage(s.path('small.img'), 150 * M);
  sparseImage(s.path('one.img'), 300 * M);
  ok(['journal', 'label', '-s', '100M', 'one.img']);
  sparseImage(s.path('c0.img'), 32 * M);
  ok(['virstor', 'label', '-m', '1M', '-s', '64M', 'vs', 'c0.img']);
  writeFileSync(s.path('byte.bin'), 'x');
  symlinkSync('loop-b', s.path('loop-a'));
  symlinkSync('loop-a', s.path('loop-b'));
});

describe('error lines', () => {
  it('a FreeBSD message ending in a full stop, with a hint after it: no ".;"', () => {
    const line = oneLine(run(['journal', 'label', '-s', '200M', 'd.img', 'j.img']), 2);
    expect(line).toBe('geomctl: jsize argument is valid only for all-in-one configuration; the journal takes the whole journal image');
  });

  it('a journal that does not fit names the -s given, not a "default", and the largest -s that fits', () => {
    const before = sha256(s.path('small.img'));
    const line = oneLine(run(['journal', 'label', '-s', '256M', 'small.img']), 1);
    expect(line).not.toMatch(/default/);
    expect(line).toContain('small.img');
    expect(line).toContain('-s 268435456');
    expect(line).toMatch(/-s \d+ or less|at most/);
    expect(sha256(s.path('small.img'))).toBe(before);
  });

  it('a read at an offset past the end, without -l, names -o alone', () => {
    const j = oneLine(run(['journal', 'read', '-o', '1G', 'one.img']), 1);
    expect(j).toContain('-o 1073741824');
    expect(j).not.toMatch(/-l|\b0 bytes/);
    const v = oneLine(run(['virstor', 'read', '-o', '65M', 'vs']), 1);
    expect(v).toContain('-o 68157440');
    expect(v).not.toMatch(/-l|\b0 bytes/);
  });

  it('one byte is "1 byte"', () => {
    const v = oneLine(run(['virstor', 'write', '-o', '64M', '-i', 'byte.bin', 'vs']), 1);
    expect(v).toMatch(/\b1 byte\b/);
    const j = oneLine(run(['journal', 'write', '-o', '209714688', '-i', 'byte.bin', 'one.img']), 1);
    expect(j).toMatch(/\b1 byte\b/);
    for (const line of [v, j]) expect(line).not.toMatch(/\b1 bytes/);
  });

  it('a write at the end of the device from a pipe says the offset is at the end, not "longer than the 0 bytes"', () => {
    for (const args of [['virstor', 'write', '-o', '64M', 'vs'], ['journal', 'write', '-o', '209714688', 'one.img']]) {
      const line = oneLine(run(args, { input: Buffer.from('x') }), 1);
      expect(line).not.toMatch(/\b0 bytes/);
      expect(line).toMatch(/-o\b/);
    }
  });

  it('ELOOP says what to do', () => {
    for (const args of [['dump', 'loop-a'], ['virstor', 'write', '-i', 'loop-a', 'vs'], ['virstor', 'read', '-l', '4k', '-O', 'loop-a', 'vs']]) {
      const line = oneLine(run(args), 1);
      expect(line).toContain('ELOOP');
      expect(line).toMatch(/symbolic link.*; |; .*symbolic link/);
    }
  });

  it('EFBIG (a file size limit) says what to do, and the -O file is removed', () => {
    for (const verb of [['virstor', 'read', '-O', 'big.out', 'vs'], ['virstor', 'export', '-O', 'big.out', 'vs']]) {
      const r = spawnSync('bash', ['-c', `ulimit -f 1024; ${geomctlLine(verb)}`], { cwd: s.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      const line = oneLine({ status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, stdoutBuffer: Buffer.from(r.stdout) }, 1);
      expect(line).toContain('EFBIG');
      expect(line).toMatch(/ulimit -f/);
      expect(existsSync(s.path('big.out'))).toBe(false);
    }
  });
});

describe('option values', () => {
  it('an invalid value is refused even when the option is given again with a valid one', () => {
    sparseImage(s.path('v0.img'), 64 * M);
    const before = sha256(s.path('v0.img'));
    for (const args of [
      ['virstor', 'label', '-m', '1M', '-s', '12Q', '-s', '64M', 'x', 'v0.img'],
      ['virstor', 'label', '-m', '12Q', '-m', '1M', '-s', '64M', 'x', 'v0.img'],
      ['virstor', 'label', '-s', '64M', '-s', '12Q', '-m', '1M', 'x', 'v0.img'],
      ['journal', 'label', '-s', '12Q', '-s', '100M', 'v0.img'],
    ]) {
      const line = oneLine(run(args), 2);
      expect(line).toContain('12Q');
    }
    expect(sha256(s.path('v0.img'))).toBe(before);
  });
});

describe('finding nothing', () => {
  it('list, status and taste print nothing at all on stdout', () => {
    const empty = s.path('empty');
    mkdirSync(empty);
    for (const args of [['list'], ['status'], ['journal', 'list'], ['journal', 'status'], ['virstor', 'list'], ['virstor', 'status']]) {
      const r = run(args, { cwd: empty });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdoutBuffer.length, `${args.join(' ')} stdout: ${JSON.stringify(r.stdout)}`).toBe(0);
      expect(r.stderr).toBe('');
    }
    // taste of images that all fail: the errors, and nothing on stdout.
    const r = run(['taste', 'no-such.img'], { cwd: empty });
    expect(r.status).toBe(1);
    expect(r.stdoutBuffer.length).toBe(0);
    // A named blank image: list and status fail for it, with nothing on stdout.
    sparseImage(s.path('empty/blank.img'), M);
    for (const args of [['list', 'blank.img'], ['status', 'blank.img']]) {
      const b = run(args, { cwd: empty });
      expect(b.status).toBe(1);
      expect(b.stdoutBuffer.length, `${args.join(' ')}`).toBe(0);
    }
  });
});

describe.skipIf(!existsSync(SCRIPT))('at a terminal', () => {
  it('a write without -i reading a terminal says, once, that it reads standard input', () => {
    for (const args of [['journal', 'write', 'one.img'], ['virstor', 'write', 'vs']]) {
      const r = pty(`${geomctlLine(args)} 2>&1`);
      expect(r.status, r.terminal).toBe(0);
      const said = r.terminal.split(/\r?\n/).filter((l) => l.includes('standard input'));
      expect(said, r.terminal).toHaveLength(1);
      expect(said[0]).toMatch(/^geomctl: reading .*standard input.*Ctrl-D.*-i FILE/);
      // --quiet: nothing; and never when stdin is not a terminal.
      expect(pty(`${geomctlLine(['-q', ...args])} 2>&1`).terminal).not.toContain('standard input');
      expect(run(args, { input: Buffer.alloc(0) }).stderr).toBe('');
    }
  });

  it("the journal walk's spinner ends at its total, and shows no rate measured over too short a time", () => {
    sparseImage(s.path('w.img'), 400 * M);
    ok(['journal', 'label', '-s', '200M', 'w.img']);
    writeFileSync(s.path('in.bin'), randomBytes(4 * M));
    ok(['journal', 'write', '-i', 'in.bin', 'w.img']); // pending: a walk to show
    const r = pty(`${geomctlLine(['journal', 'scan', 'w.img'])} >/dev/null`);
    expect(r.status, r.terminal).toBe(0);
    const shown = [...r.terminal.matchAll(/walking the journal: ([\d.]+[BKMGTPE]) \/ ([\d.]+[BKMGTPE])(?: \(([\d.]+[BKMGTPE])\/s\))?/g)];
    expect(shown.length, r.terminal).toBeGreaterThan(0);
    const last = shown.at(-1) as RegExpMatchArray;
    expect(last[1], r.terminal).toBe(last[2]);
    expect(['200M', '400M']).toContain(last[2]); // one walk, or two when the maxphys is detected and the walks diverge
    // A rate, when shown, was measured over at least half a second: at most twice the total per second.
    const bytes = (text: string): number => parseFloat(text) * unit(text);
    for (const m of shown) if (m[3]) expect(bytes(m[3])).toBeLessThanOrEqual(2 * bytes(m[2] as string) * 1.05); // humanize() rounds
  });

  it('a rate is shown once the operation has run long enough to measure it', () => {
    // 32 MiB read to a pipe that only starts draining after a second and a half.
    const r = pty(`${geomctlLine(['virstor', 'read', '-l', '32M', 'vs']).replace(/^exec /, '')} | (sleep 1.5; cat >/dev/null)`);
    expect(r.status, r.terminal).toBe(0);
    expect(r.terminal).toMatch(/reading vs: 32M \/ 32M \(\d+(\.\d)?[BKMG]\/s\)/);
  });
});

/** The multiplier of a humanize()d size's suffix. */
function unit(text: string): number {
  const suffix = text.replace(/[\d.]/g, '');
  return 1024 ** Math.max(0, 'BKMGTPE'.indexOf(suffix));
}

describe('rolling back an unfinished transaction', () => {
  const dir = s.path('rb');
  /** The kill that leaves a hot undo log, once found. */
  let killAt: number | undefined;

  /** A virstor write killed at its n-th image write; whether it left a hot undo log (one a read-only verb refuses, not a torn one). */
  function crashAt(n: number): boolean {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    sparseImage(`${dir}/r0.img`, 32 * M);
    sparseImage(`${dir}/r1.img`, 32 * M);
    ok(['virstor', 'label', '-m', '1M', '-s', '64M', 'rb', 'r0.img', 'r1.img'], { cwd: dir });
    run(['virstor', 'write', '-i', '../in4.bin', 'rb'], { cwd: dir, env: { GEOMCTL_FAULT: `kill@write:${n}` } });
    return run(['virstor', 'map', 'rb'], { cwd: dir }).stderr.includes('unfinished');
  }

  function crash(): void {
    if (killAt !== undefined && crashAt(killAt)) return;
    writeFileSync(s.path('in4.bin'), randomBytes(4 * M));
    for (let n = 1; n <= 30; n++) {
      if (crashAt(n)) {
        killAt = n;
        return;
      }
    }
    throw new Error('no kill left a hot undo log');
  }

  it("says, in one line on stderr, which undo log it rolled back; the exit status is the command's own", () => {
    crash();
    const r = run(['virstor', 'stop', 'rb'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^geomctl: rolled back an unfinished transaction .*r0\.img\.geomctl-undo/);
    expect(readdirSync(dir).some((f) => f.endsWith('.geomctl-undo'))).toBe(false);
    // --json: still said (the document does not carry it); --quiet: not.
    crash();
    const json = run(['--json', 'virstor', 'stop', 'rb'], { cwd: dir });
    expect(json.status).toBe(0);
    expect(json.stderr).toMatch(/^geomctl: rolled back an unfinished transaction [^\n]*\n$/);
    expect(JSON.parse(json.stdout).command).toBe('virstor stop');
    crash();
    const quiet = run(['-q', 'virstor', 'stop', 'rb'], { cwd: dir });
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).toBe('');
    expect(readdirSync(dir).some((f) => f.endsWith('.geomctl-undo'))).toBe(false);
  }, 120_000);
});
