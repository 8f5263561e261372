// Fault injection (GEOMCTL_FAULT): spec parsing, counting across providers,
// EIO/ENOSPC without doing the I/O, and a real SIGKILL at the N-th write.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeomError, IoError, UsageError } from '../../src/errors.js';
import { FaultCounter, faultFromEnv, parseFaultSpec, withFaults } from '../../src/provider/fault.js';
import { MemoryProvider } from '../sim/memory.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'geomctl-fault-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('parseFaultSpec', () => {
  it('parses ACTION@OP:N', () => {
    expect(parseFaultSpec('kill@write:3')).toEqual({ action: 'kill', on: 'write', n: 3 });
    expect(parseFaultSpec('eio@barrier:1')).toEqual({ action: 'eio', on: 'barrier', n: 1 });
    expect(parseFaultSpec(' enospc@write:120 ')).toEqual({ action: 'enospc', on: 'write', n: 120 });
  });

  it('refuses anything else with a usage error that shows the expected form', () => {
    for (const bad of ['', 'kill', 'kill@write', 'kill@write:', 'kill@write:0', 'kill@write:-1', 'kill@write:1x', 'boom@write:1', 'kill@read:1', 'KILL@write:1', 'kill@write:01', 'kill@write:99999999999']) {
      const err = thrown(() => parseFaultSpec(bad));
      expect(err, bad).toBeInstanceOf(UsageError);
      const e = err as UsageError;
      expect(e.exitStatus).toBe(2);
      expect(e.message).toBe(`GEOMCTL_FAULT: bad fault spec '${bad}'`);
      expect(e.hint).toContain('kill@write:3');
    }
  });
});

describe('withFaults', () => {
  function pair(spec: string) {
    const counter = new FaultCounter(parseFaultSpec(spec));
    const a = new MemoryProvider('a.img', Buffer.alloc(4096));
    const b = new MemoryProvider('b.img', Buffer.alloc(4096));
    return { counter, a, b, fa: withFaults(a, counter), fb: withFaults(b, counter) };
  }

  it('fails exactly the N-th write across all wrapped providers, without writing it', () => {
    const { counter, a, b, fa, fb } = pair('eio@write:3');
    fa.write(0, Buffer.alloc(512, 1));
    fb.write(0, Buffer.alloc(512, 2));
    fa.read(0, 512); // reads are not counted
    fb.barrier(); // nor barriers, for a write fault
    const err = thrown(() => fa.write(1024, Buffer.alloc(512, 3)));
    expect(err).toBeInstanceOf(IoError);
    expect((err as IoError).errno).toBe('EIO');
    expect((err as GeomError).line).toBe('write of a.img at offset 1024 failed: EIO; injected by GEOMCTL_FAULT');
    expect(a.data[1024]).toBe(0); // not performed
    fb.write(512, Buffer.alloc(512, 4)); // one fault only: the 4th goes through
    expect(b.data[512]).toBe(4);
    expect(counter.counts).toEqual({ write: 4, barrier: 1 });
  });

  it('fails the N-th barrier with ENOSPC and passes the provider through otherwise', () => {
    const { counter, fa, fb } = pair('enospc@barrier:2');
    expect([fa.path, fa.name, fa.size, fa.mediaSectorSize, fa.writable]).toEqual(['a.img', 'a.img', 4096, 512, true]);
    fa.write(0, Buffer.alloc(512));
    fa.barrier();
    const err = thrown(() => fb.barrier()) as IoError;
    expect(err.message).toBe('fsync of b.img failed: ENOSPC');
    expect(err.code).toBe('IO');
    fb.barrier();
    expect(counter.counts).toEqual({ write: 1, barrier: 3 });
  });

  it('kills the process at the N-th write: earlier writes done, that one and later ones not', () => {
    // Bundle a tiny driver (the child runs plain Node, which cannot load .ts). fs-ext is a native
    // addon left external: the driver lives where node_modules resolves it.
    const cache = path.join(repo, 'node_modules', '.cache', 'geomctl-fault-test');
    fs.mkdirSync(cache, { recursive: true });
    const driver = path.join(cache, 'driver.mjs');
    buildSync({
      stdin: {
        contents: `
          import { openImage } from './src/provider/file.ts';
          import { faultFromEnv, withFaults } from './src/provider/fault.ts';
          const counter = faultFromEnv(process.env);
          const image = openImage(process.argv[2], { write: true });
          const p = counter ? withFaults(image, counter) : image;
          for (let i = 0; i < 5; i++) { p.write(i * 512, Buffer.alloc(512, i + 1)); p.barrier(); }
          process.stdout.write('finished');
        `,
        resolveDir: repo,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: driver,
      external: ['fs-ext'],
      logLevel: 'silent',
    });
    const img = path.join(dir, 'killed.img');
    fs.writeFileSync(img, Buffer.alloc(4096));
    const r = spawnSync(process.execPath, [driver, img], { env: { ...process.env, GEOMCTL_FAULT: 'kill@write:3' }, encoding: 'utf8' });
    expect(r.signal).toBe('SIGKILL');
    expect(r.stdout).toBe('');
    const after = fs.readFileSync(img);
    expect([0, 1, 2, 3, 4].map((i) => after[i * 512])).toEqual([1, 2, 0, 0, 0]);

    const clean = spawnSync(process.execPath, [driver, img], { env: { ...process.env, GEOMCTL_FAULT: '' }, encoding: 'utf8' });
    expect(clean.status).toBe(0);
    expect(clean.stdout).toBe('finished');
  });
});

describe('faultFromEnv', () => {
  it('is undefined when GEOMCTL_FAULT is unset or empty, a usage error when malformed', () => {
    expect(faultFromEnv({})).toBeUndefined();
    expect(faultFromEnv({ GEOMCTL_FAULT: '' })).toBeUndefined();
    expect(thrown(() => faultFromEnv({ GEOMCTL_FAULT: 'kill@write' }))).toBeInstanceOf(UsageError);
  });

  it('gives one counter per process for the same spec, so sessions count together', () => {
    const first = faultFromEnv({ GEOMCTL_FAULT: 'eio@write:7' });
    expect(first?.spec).toEqual({ action: 'eio', on: 'write', n: 7 });
    expect(faultFromEnv({ GEOMCTL_FAULT: 'eio@write:7' })).toBe(first);
    expect(faultFromEnv({ GEOMCTL_FAULT: 'eio@write:8' })).not.toBe(first);
  });
});
