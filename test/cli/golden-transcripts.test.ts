// Golden transcripts (test/helpers/golden.ts): what `journal scan` and the
// dump, list and status verbs of both classes and of the top level print, as
// a user sees it, compared whole with test/golden/*.txt — every line, its
// order, its alignment and the exit status, not a few regexes. Images are
// built the same way every run (--id, fixed data); the scratch directory and
// the random journal ids are filtered.

import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sparseImage } from '../helpers/cli.js';
import { expectGolden, expectTranscript, normalise } from '../helpers/golden.js';

const M = 1024 * 1024;
/** The device ids the images are labeled with: not random, so not filtered. */
const KEEP = ['4242', '4343', '4444', '51'];

/** Deterministic, non-repeating data (a zero block would be skipped by sparse paths). */
function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

let s: ReturnType<typeof scratch>;

function ok(args: string[]): void {
  const r = geomctl(args, { cwd: s.dir });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
}

beforeAll(() => {
  s = scratch('geomctl-golden-');
  writeFileSync(s.path('a.bin'), pattern(256 * 1024, 1));
  writeFileSync(s.path('b.bin'), pattern(96 * 1024, 2));
  // A one-image journal, left DIRTY with one finished journal.
  sparseImage(s.path('data.img'), 300 * M);
  ok(['journal', 'label', '--id', '4242', '-s', '100M', 'data.img']);
  ok(['journal', 'write', '-o', '1M', '-i', 'a.bin', 'data.img']);
  // A two-image journal with checksums, written twice: the first journal replayed, the second pending.
  sparseImage(s.path('d2.img'), 64 * M);
  sparseImage(s.path('j2.img'), 120 * M);
  ok(['journal', 'label', '--id', '4343', '-c', 'd2.img', 'j2.img']);
  ok(['journal', 'write', '-o', '0', '-i', 'a.bin', 'd2.img', 'j2.img']);
  ok(['journal', 'write', '-o', '8M', '-i', 'b.bin', 'd2.img', 'j2.img']);
  // A one-image journal whose terminating header is gone: BROKEN.
  sparseImage(s.path('broken.img'), 160 * M);
  ok(['journal', 'label', '--id', '4444', '-s', '100M', 'broken.img']);
  ok(['journal', 'write', '-i', 'a.bin', 'broken.img']);
  const walked = JSON.parse(geomctl(['--json', 'journal', 'scan', 'broken.img'], { cwd: s.dir }).stdout) as { walks: { journals: { offset: number }[] }[] };
  const terminator = walked.walks[0]?.journals[1]?.offset as number;
  const img = readFileSync(s.path('broken.img'));
  img.fill(0, terminator, terminator + 512);
  writeFileSync(s.path('broken.img'), img);
  // A thin virstor device of two components with two chunks written.
  sparseImage(s.path('c0.img'), 64 * M);
  sparseImage(s.path('c1.img'), 64 * M);
  ok(['virstor', 'label', '--id', '51', '-s', '1G', '-m', '1M', 'thin', 'c0.img', 'c1.img']);
  ok(['virstor', 'write', '-o', '0', '-i', 'a.bin', 'thin']);
  ok(['virstor', 'write', '-o', '700M', '-i', 'b.bin', 'thin']);
});

afterAll(() => s.cleanup());

const golden = (name: string, commands: string[][]): void => expectTranscript(name, s.dir, commands, { keep: KEEP });

describe('golden transcripts', () => {
  it('journal scan: every header and record walked, both maxphys walks, text and JSON', () => {
    golden('journal-scan.txt', [
      ['journal', 'scan', 'data.img'],
      ['journal', 'scan', 'd2.img', 'j2.img'],
      ['--maxphys', '128k', 'journal', 'scan', 'd2.img', 'j2.img'],
      ['--json', 'journal', 'scan', 'd2.img'],
    ]);
  });

  it('a broken journal: what scan, status and check show, and the refusal of sync', () => {
    golden('journal-broken.txt', [
      ['journal', 'scan', 'broken.img'],
      ['journal', 'status', 'broken.img'],
      ['journal', 'check', 'broken.img'],
      ['journal', 'sync', 'broken.img'],
    ]);
  });

  it('journal dump, list and status', () => {
    golden('journal-verbs.txt', [
      ['journal', 'dump', 'data.img', 'd2.img', 'j2.img'],
      ['journal', 'list'],
      ['journal', 'status'],
      ['journal', 'status', '-s'],
      ['--json', 'journal', 'status'],
      ['journal', 'list', 'nothere.img'],
    ]);
  });

  it('virstor dump, list and status', () => {
    golden('virstor-verbs.txt', [
      ['virstor', 'dump', 'c0.img', 'c1.img'],
      ['virstor', 'list'],
      ['virstor', 'status'],
      ['virstor', 'status', '-s'],
      ['--json', 'virstor', 'status'],
      ['virstor', 'list', 'nothere'],
    ]);
  });

  it('top-level dump, list and status over both classes', () => {
    golden('toplevel-verbs.txt', [
      ['dump', 'data.img', 'c1.img'],
      ['list'],
      ['status'],
      ['--json', 'status'],
    ]);
  });
});

describe('a map written big-endian', () => {
  it('virstor check says the map makes sense only byte-swapped', () => {
    const v = scratch('geomctl-golden-swapped-');
    try {
      writeFileSync(v.path('a.bin'), pattern(3 * M, 3));
      sparseImage(v.path('s0.img'), 64 * M);
      sparseImage(v.path('s1.img'), 64 * M);
      const setup = (args: string[]): void => expect(geomctl(args, { cwd: v.dir }).status, args.join(' ')).toBe(0);
      setup(['virstor', 'label', '--id', '51', '-s', '1G', '-m', '1M', 'swapped', 's0.img', 's1.img']);
      setup(['virstor', 'write', '-o', '100M', '-i', 'a.bin', 'swapped']);
      // Rewrite every map entry (u16 flags, u16 component, u32 chunk at 0, 2, 4) as a big-endian machine would.
      const c0 = readFileSync(v.path('s0.img'));
      for (let p = 0; p < 1024 * 8; p += 8) {
        c0.writeUInt16BE(c0.readUInt16LE(p), p);
        c0.writeUInt16BE(c0.readUInt16LE(p + 2), p + 2);
        c0.writeUInt32BE(c0.readUInt32LE(p + 4), p + 4);
      }
      writeFileSync(v.path('s0.img'), c0);
      expectTranscript('virstor-swapped.txt', v.dir, [['virstor', 'check', 'swapped']], { keep: KEEP });
    } finally {
      v.cleanup();
    }
  });
});

describe('the normaliser', () => {
  it('filters the scratch directory and gives each random id one placeholder, keeping the ones asked for', () => {
    const text = [
      '/tmp/x/data.img: header  id 3940434462 next 1104832495',
      'record  journal 3940434462, 1 entry',
      'header  id 1104832495 next 7  (not finished)',
      'md_jid 1104832495, Geom name: gjournal 4242',
      '       jid: 7',
      '  MD5 hash: e8e9a7f9f7189d5278aee28f27957fec',
      '{"id": 4242, "jid": 7}',
    ].join('\n');
    expect(normalise(text, { dirs: ['/tmp/x'], keep: ['4242'] })).toBe(
      [
        '$DIR/data.img: header  id <id1> next <id2>',
        'record  journal <id1>, 1 entry',
        'header  id <id2> next <id3>  (not finished)',
        'md_jid <id2>, Geom name: gjournal 4242',
        '       jid: <id3>',
        '  MD5 hash: <id4>',
        '{"id": 4242, "jid": <id3>}',
      ].join('\n'),
    );
  });

  it('a golden that is missing is an error (unless GEOMCTL_UPDATE_GOLDEN=1 writes it)', () => {
    if (process.env.GEOMCTL_UPDATE_GOLDEN === '1') return;
    expect(() => expectGolden('no-such-golden.txt', 'x')).toThrow(/test\/golden\/no-such-golden\.txt is missing: run this test with GEOMCTL_UPDATE_GOLDEN=1/);
  });
});

describe('a stack', () => {
  it('list, status and dump of a journal on virstor/thin and the virstor below it', () => {
    const st = scratch('geomctl-golden-stack-');
    try {
      const run = (args: string[]): void => expect(geomctl(args, { cwd: st.dir }).status, args.join(' ')).toBe(0);
      sparseImage(`${st.dir}/c0.img`, 400 * M);
      run(['virstor', 'label', '--id', '4343', '-s', '1G', '-m', '4M', 'thin', 'c0.img']);
      run(['journal', 'label', '--id', '4444', '-s', '128M', 'virstor/thin']);
      writeFileSync(`${st.dir}/a.bin`, pattern(256 * 1024, 1));
      run(['journal', 'write', '-o', '1M', '-i', 'a.bin', 'virstor/thin']);
      expectTranscript('stack.txt', st.dir, [['status'], ['list'], ['journal', 'status', '-s', 'virstor/thin.journal'], ['journal', 'dump', 'virstor/thin'], ['virstor', 'list', 'thin'], ['--json', 'list', 'virstor/thin.journal']], { keep: KEEP });
    } finally {
      st.cleanup();
    }
  });
});
