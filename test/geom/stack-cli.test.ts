// Stacked geoms through the built bin/geomctl (providers.md, "Tasting and
// stacks"): a journal on a virstor provider through every journal verb, a
// virstor whose component is a journal provider, provider names wherever
// images are taken, the depth bound and loops, and FreeBSD's view of a stack
// geomctl built — read back through the independent kernel models
// (test/model/), never through src/.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage, type CliResult } from '../helpers/cli.js';
import { ModelKernel } from '../model/virstor-kernel.js';
import { GJ_FLAG_CLEAN, kDecodeMetadata, kJournaledContents, kRandom, kRandomBytes } from '../model/journal-kernel.js';

const K = 1024;
const M = 1024 * K;

const s = scratch('geomctl-stack-');
afterAll(() => s.cleanup());

function run(dir: string, args: string[], input?: Buffer): CliResult {
  return geomctl(args, { cwd: dir, ...(input ? { input } : {}) });
}

function ok(dir: string, args: string[], input?: Buffer): CliResult {
  const r = run(dir, args, input);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  expect(r.stderr).not.toMatch(/\n\s+at .*:\d+/);
  return r;
}

let dirs = 0;
function freshDir(): string {
  const dir = s.path(`d${dirs++}`);
  mkdirSync(dir);
  return dir;
}

/** virstor thin on c0.img (1 GiB virtual, 4 MiB chunks), with a one-image journal labeled on virstor/thin. */
function journalOnVirstor(): string {
  const dir = freshDir();
  sparseImage(join(dir, 'c0.img'), 400 * M);
  ok(dir, ['virstor', 'label', '-s', '1G', '-m', '4M', 'thin', 'c0.img']);
  ok(dir, ['journal', 'label', '-s', '128M', 'virstor/thin']);
  return dir;
}

/** The virstor device of c0.img as FreeBSD's kernel would assemble it (test/model/virstor-kernel.ts). */
function kernelVirstor(dir: string): ModelKernel {
  return ModelKernel.taste([{ name: 'c0.img', data: readFileSync(join(dir, 'c0.img')) }]);
}

describe('a journal on virstor/thin', () => {
  it('works through every journal verb, and list and status show virstor/thin as its consumer', () => {
    const dir = journalOnVirstor();
    const data = kRandomBytes(kRandom(7), 3 * M);
    writeFileSync(join(dir, 'r3'), data);
    ok(dir, ['journal', 'write', '-o', '1M', '-i', 'r3', 'virstor/thin']);
    expect(ok(dir, ['journal', 'status']).stdout).toMatch(/virstor\/thin\.journal\s+DIRTY\s+virstor\/thin/);
    // Read through the data provider's name and through the journal provider's name.
    expect(ok(dir, ['journal', 'read', '-o', '1M', '-l', '3M', 'virstor/thin']).stdoutBuffer.equals(data)).toBe(true);
    expect(ok(dir, ['journal', 'read', '-o', '1M', '-l', '3M', '/dev/virstor/thin.journal']).stdoutBuffer.equals(data)).toBe(true);
    expect(ok(dir, ['journal', 'scan', 'virstor/thin']).stdout).toMatch(/1 finished journal/);
    expect(ok(dir, ['journal', 'check', 'virstor/thin']).stdout).toMatch(/virstor\/thin: no problems/);
    const dump = ok(dir, ['journal', 'dump', 'virstor/thin']).stdout;
    expect(dump).toMatch(/^Metadata on virstor\/thin:/);
    expect(dump).toMatch(/provsize: 1073741824/);
    const list = ok(dir, ['journal', 'list']).stdout;
    expect(list).toMatch(/Providers:\n1\. Name: virstor\/thin\.journal\n/);
    expect(list).toMatch(/Consumers:\n1\. Name: virstor\/thin\n\s+Mediasize: 1073741824/);
    // The top-level listings show both geoms of the stack.
    const status = ok(dir, ['status']).stdout;
    expect(status).toMatch(/virstor\/thin\s+\d+% physical free\s+c0\.img/);
    expect(status).toMatch(/virstor\/thin\.journal\s+DIRTY\s+virstor\/thin/);
    expect(ok(dir, ['list', 'virstor/thin.journal']).stdout).toMatch(/Name: virstor\/thin\.journal/);
    ok(dir, ['journal', 'sync', 'virstor/thin']);
    expect(ok(dir, ['journal', 'status', 'virstor/thin']).stdout).toMatch(/CLEAN/);
    // After the sync the bytes are in virstor/thin itself.
    expect(ok(dir, ['virstor', 'read', '-o', '1M', '-l', '3M', 'thin']).stdoutBuffer.equals(data)).toBe(true);
    ok(dir, ['journal', 'export', '-O', 'out.img', 'virstor/thin']);
    expect(readFileSync(join(dir, 'out.img')).subarray(M, 4 * M).equals(data)).toBe(true);
    ok(dir, ['journal', 'stop', 'virstor/thin.journal']);
    expect(ok(dir, ['virstor', 'check', 'thin']).stdout).toMatch(/0 errors/);
  });

  it('the journal metadata lies at virtual offset virsize - sectorsize of virstor/thin, in a chunk virstor allocated, as FreeBSD tastes it', () => {
    const dir = journalOnVirstor();
    const data = kRandomBytes(kRandom(8), 2 * M);
    writeFileSync(join(dir, 'r2'), data);
    ok(dir, ['journal', 'write', '--sync', '-o', '4M', '-i', 'r2', 'virstor/thin']);
    const k = kernelVirstor(dir);
    const virsize = 1024 * M;
    const lastChunk = Math.floor((virsize - 512) / k.chunkSize);
    expect(k.map[lastChunk]!.flags & 1).toBe(1);
    const { md, hashOk } = kDecodeMetadata(k.read(virsize - 512, 512));
    expect(md.magic).toBe('GEOM::JOURNAL');
    expect(hashOk).toBe(true);
    expect(md.provsize).toBe(virsize);
    expect(md.flags & GJ_FLAG_CLEAN).toBe(GJ_FLAG_CLEAN);
    // FreeBSD's journaled provider over FreeBSD's virstor device holds what geomctl wrote.
    const virtual = k.readAll();
    const journaled = kJournaledContents({ d: virtual, j: virtual, sectorSize: 512 }, { maxphys: M });
    expect(journaled.subarray(4 * M, 6 * M).equals(data)).toBe(true);
  });

  it('a relabel of virstor/thin over its journal is refused without -f, naming the journal, images untouched', () => {
    const dir = journalOnVirstor();
    const before = sha256(join(dir, 'c0.img'));
    const r = run(dir, ['journal', 'label', '-s', '128M', 'virstor/thin']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: virstor\/thin is the image of journal virstor\/thin\.journal, which is CLEAN/);
    expect(sha256(join(dir, 'c0.img'))).toBe(before);
  });
});

describe('a virstor on data.img.journal', () => {
  it('label, write, read, check and map through the journal provider', () => {
    const dir = freshDir();
    sparseImage(join(dir, 'data.img'), 300 * M);
    ok(dir, ['journal', 'label', '-s', '100M', 'data.img']);
    ok(dir, ['virstor', 'label', '-s', '1G', '-m', '1M', 'vj', 'data.img.journal']);
    const data = kRandomBytes(kRandom(9), 3 * M);
    writeFileSync(join(dir, 'r3'), data);
    ok(dir, ['virstor', 'write', '-o', '5M', '-i', 'r3', 'vj']);
    expect(ok(dir, ['virstor', 'read', '-o', '5M', '-l', '3M', 'virstor/vj']).stdoutBuffer.equals(data)).toBe(true);
    expect(ok(dir, ['virstor', 'check', 'vj']).stdout).toMatch(/virstor vj: 3 allocated chunks, 0 errors/);
    expect(ok(dir, ['virstor', 'map', 'vj']).stdout).toMatch(/0x500000\s+0x300000\s+0x\w+\s+data\.img\.journal/);
    const list = ok(dir, ['virstor', 'list', 'vj']).stdout;
    expect(list).toMatch(/Consumers:\n1\. Name: data\.img\.journal\n/);
    // The journal below is CLEAN after each command: its journals were copied to data.img.
    expect(ok(dir, ['journal', 'status', 'data.img']).stdout).toMatch(/CLEAN/);
    // FreeBSD's view: the journaled provider of data.img, then virstor over it.
    const d = readFileSync(join(dir, 'data.img'));
    const provider = kJournaledContents({ d, j: d, sectorSize: 512 }, { maxphys: M });
    const k = ModelKernel.taste([{ name: 'data.img.journal', data: provider }]);
    expect(k.read(5 * M, 3 * M).equals(data)).toBe(true);
  });
});

describe('stacks', () => {
  it('a geom consuming its own provider is refused, naming the loop, images untouched', () => {
    const dir = journalOnVirstor();
    const before = sha256(join(dir, 'c0.img'));
    const r = run(dir, ['virstor', 'add', 'thin', 'virstor/thin.journal']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('geomctl: a loop of providers: virstor/thin → virstor/thin.journal → virstor/thin; a geom cannot consume its own provider; name another image\n');
    expect(sha256(join(dir, 'c0.img'))).toBe(before);
  });

  it('are assembled 8 levels deep and no deeper', () => {
    const dir = freshDir();
    sparseImage(join(dir, 'c.img'), 1024 * M);
    // virstor v1 on c.img, a journal on virstor/v1, virstor v3 on virstor/v1.journal, ...
    let below = 'c.img';
    const names: string[] = [];
    for (let level = 1; level <= 9; level++) {
      if (level % 2 === 1) {
        ok(dir, ['virstor', 'label', '-s', `${64 - level}G`, '-m', '1M', `v${level}`, below]);
        below = `virstor/v${level}`;
      } else {
        ok(dir, ['journal', 'label', '-s', '100M', below]);
        below = `${below}.journal`;
      }
      names.push(below);
    }
    const status = ok(dir, ['status']);
    for (const name of names.slice(0, 8)) expect(status.stdout).toMatch(new RegExp(`^\\s*${name.replace(/[./]/g, '\\$&')}\\s`, 'm'));
    expect(status.stdout).not.toContain('virstor/v9');
    expect(status.stderr).toMatch(/^geomctl: warning: virstor\/v9: not assembled: stacks are at most 8 levels deep\n/);
    // The virstor class still tastes v9 on virstor/v7.journal, and says why it cannot open it.
    expect(status.stderr).toMatch(/\ngeomctl: warning: a stack deeper than 8 levels: virstor\/v9 → virstor\/v7\.journal → .* → virstor\/v1\n$/);
  });
});
