// The journal engine verbs through the built bin/geomctl: write, read, sync,
// stop, scan, check, export, list and status, on sparse scratch images.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';
import { kRandom } from '../model/journal-kernel.js';
import { randomBytes } from './journal-engine-support.js';

const M = 1024 * 1024;
let s: ReturnType<typeof scratch>;
beforeAll(() => {
  s = scratch('geomctl-jcli-');
});
afterAll(() => s.cleanup());

function ok(args: string[], input?: Buffer): { stdout: string; stderr: string; stdoutBuffer: Buffer } {
  const r = geomctl(args, { cwd: s.dir, input });
  expect(r.stderr.includes('    at ')).toBe(false);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

describe('journal engine verbs', { timeout: 60_000 }, () => {
  it('write, read, scan, sync, stop, export on one image', () => {
    sparseImage(s.path('one.img'), 160 * M);
    ok(['journal', 'label', '-c', '-s', '100M', 'one.img']);
    const input = randomBytes(kRandom(1), 3 * M + 1000);
    writeFileSync(s.path('in.bin'), input);
    ok(['journal', 'write', '-o', '1M', '-i', 'in.bin', 'one.img']);
    // Not synced: the metadata is dirty and names the finished journal.
    const dump = ok(['journal', 'dump', 'one.img']).stdout;
    expect(dump).toMatch(/flags: 2\n/);
    expect(ok(['journal', 'status', 'one.img']).stdout).toMatch(/one\.img\.journal\s+DIRTY\s+one\.img/);
    const read = ok(['journal', 'read', '-o', '1M', '-l', String(input.length), 'one.img']).stdoutBuffer;
    expect(read.equals(input)).toBe(true);
    const scan = JSON.parse(ok(['--json', 'journal', 'scan', 'one.img']).stdout) as { walks: { finished: number; journals: { records: { checksum: string }[] }[] }[]; state: string };
    expect(scan.state).toBe('DIRTY');
    expect(scan.walks[0]?.finished).toBe(1);
    expect(scan.walks[0]?.journals[0]?.records.every((r) => r.checksum === 'ok')).toBe(true);
    const before = sha256(s.path('one.img'));
    ok(['journal', 'read', '-O', 'copy.bin', 'one.img']);
    ok(['journal', 'check', 'one.img']);
    expect(sha256(s.path('one.img'))).toBe(before); // read-only verbs never write
    const sync = JSON.parse(ok(['--json', 'journal', 'sync', 'one.img']).stdout) as { state: string; recovery: { action: string; journals: number } };
    expect(sync).toMatchObject({ state: 'CLEAN', recovery: { action: 'replay', journals: 1 } });
    expect(ok(['journal', 'dump', 'one.img']).stdout).toMatch(/flags: 3\n/);
    // The data area alone now holds the input.
    const img = readFileSync(s.path('one.img'));
    expect(img.subarray(M, M + input.length).equals(input)).toBe(true);
    expect(ok(['journal', 'stop', '-v', 'one.img']).stdout).toMatch(/stopped/);
    ok(['journal', 'export', '-O', 'fs.img', 'one.img']);
    const exported = readFileSync(s.path('fs.img'));
    expect(exported.length).toBe(60 * M - 512);
    expect(exported.subarray(M, M + input.length).equals(input)).toBe(true);
    expect(statSync(s.path('fs.img')).blocks * 512).toBeLessThan(8 * M);
    expect(readFileSync(s.path('copy.bin')).subarray(M, M + input.length).equals(input)).toBe(true);
  });

  it('write --sync from stdin on two images, the journal image found by tasting', () => {
    sparseImage(s.path('d.img'), 16 * M);
    sparseImage(s.path('j.img'), 48 * M);
    ok(['journal', 'label', 'd.img', 'j.img']);
    const input = randomBytes(kRandom(2), 2 * M);
    ok(['journal', 'write', '--sync', '-o', '4096', 'd.img'], input);
    expect(ok(['journal', 'dump', 'd.img']).stdout).toMatch(/flags: 1\n/);
    expect(readFileSync(s.path('d.img')).subarray(4096, 4096 + input.length).equals(input)).toBe(true);
    expect(ok(['journal', 'list', 'd.img']).stdout).toMatch(/Role: Journal\n {3}Jstart: 0/);
  });

  it('a write three times the journal goes through', () => {
    sparseImage(s.path('bd.img'), 160 * M);
    sparseImage(s.path('bj.img'), 48 * M);
    ok(['journal', 'label', 'bd.img', 'bj.img']);
    const input = randomBytes(kRandom(3), 144 * M);
    writeFileSync(s.path('big.bin'), input);
    const r = ok(['--stats', 'journal', 'write', '-i', 'big.bin', 'bd.img', 'bj.img']);
    expect(r.stderr).toMatch(/forcedSwitches: [1-9]/);
    ok(['journal', 'read', '-l', String(input.length), '-O', 'back.bin', 'bd.img', 'bj.img']);
    expect(readFileSync(s.path('back.bin')).equals(input)).toBe(true);
  }, 60_000);

  it('usage errors and refusals exit 2 and 1 with one line', () => {
    sparseImage(s.path('u.img'), 160 * M);
    ok(['journal', 'label', '-s', '100M', 'u.img']);
    let r = geomctl(['journal', 'write', '-o', '100', 'u.img'], { cwd: s.dir, input: Buffer.alloc(512) });
    expect(r.status).toBe(2);
    r = geomctl(['journal', 'write', '-o', '59M', 'u.img'], { cwd: s.dir, input: Buffer.alloc(0) });
    expect(r.status).toBe(0);
    writeFileSync(s.path('two.bin'), Buffer.alloc(2 * M));
    r = geomctl(['journal', 'write', '-o', '59M', '-i', 'two.bin', 'u.img'], { cwd: s.dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: writing 2097152 bytes at 61865984 passes the end of u\.img\.journal/);
    expect(geomctl(['journal', 'export', 'u.img'], { cwd: s.dir }).status).toBe(2);
    expect(geomctl(['journal', 'read', '--json', 'u.img'], { cwd: s.dir }).status).toBe(2);
    r = geomctl(['journal', 'export', '-O', 'u.img', 'u.img'], { cwd: s.dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/an image of journal .*: writing there would destroy it/);
  });

  it('a broken journal: writing verbs refuse without -f; check -y repairs', () => {
    sparseImage(s.path('br.img'), 160 * M);
    ok(['journal', 'label', '-s', '100M', 'br.img']);
    ok(['journal', 'write', '-i', 'in.bin', 'br.img']);
    // Break the terminating header: the journal can no longer be finished.
    const img = readFileSync(s.path('br.img'));
    const md = img.subarray(img.length - 512);
    const joffset = Number(md.readBigUInt64LE(41));
    const scan = JSON.parse(ok(['--json', 'journal', 'scan', 'br.img']).stdout) as { walks: { journals: { offset: number }[] }[] };
    const term = scan.walks[0]?.journals[1]?.offset as number;
    expect(term).toBeGreaterThan(joffset);
    img.fill(0, term, term + 512);
    writeFileSync(s.path('br.img'), img);
    expect(ok(['journal', 'status', 'br.img']).stdout).toMatch(/BROKEN/);
    let r = geomctl(['journal', 'sync', 'br.img'], { cwd: s.dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: journal on br\.img is broken: no finished journal at offset \d+ \(id \d+\); 'geomctl journal scan br\.img' shows what is there; -f reinitialises it and marks the UFS dirty, as FreeBSD does on attach\n$/);
    r = geomctl(['journal', 'check', 'br.img'], { cwd: s.dir });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/problem: .*journal is broken/);
    ok(['journal', 'check', '-y', 'br.img']);
    expect(ok(['journal', 'status', 'br.img']).stdout).toMatch(/CLEAN/);
    ok(['journal', 'check', 'br.img']);
  });
});
