// Start-up: on Node.js 22.1 and later bin/geomctl turns on Node's compile
// cache (module.enableCompileCache), so V8's compiled code of the bundle is
// reused by the next run; on Node 20, which has no such call, geomctl runs the
// same without it. The cache goes where Node puts it by default (under the
// OS's temporary directory, so TMPDIR here) unless NODE_COMPILE_CACHE says
// otherwise, and NODE_DISABLE_COMPILE_CACHE=1 turns it off. .ci/run runs this
// file on every supported major.

import module from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch } from '../helpers/cli.js';

const s = scratch('geomctl-compile-cache-');
afterAll(() => s.cleanup());

const hasCompileCache = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function';

/** The environment without any compile-cache setting of the caller's, with TMPDIR at `tmp`. */
function env(tmp: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, ...extra };
  delete e.NODE_COMPILE_CACHE;
  if (!('NODE_DISABLE_COMPILE_CACHE' in extra)) delete e.NODE_DISABLE_COMPILE_CACHE;
  return e;
}

function filesUnder(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length;
}

describe(`the compile cache (Node ${process.versions.node})`, () => {
  it(hasCompileCache ? 'is written under the temporary directory by default' : 'is not there, and geomctl runs the same', () => {
    const tmp = s.path('default');
    for (let i = 0; i < 2; i++) {
      const r = geomctl(['--version'], { env: env(tmp) });
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
      expect(r.stderr).toBe('');
    }
    expect(filesUnder(`${tmp}/node-compile-cache`) > 0).toBe(hasCompileCache);
  });

  it('goes where NODE_COMPILE_CACHE says', () => {
    const dir = s.path('chosen');
    const r = geomctl(['--version'], { env: { ...env(s.path('unused')), NODE_COMPILE_CACHE: dir } });
    expect(r.status).toBe(0);
    expect(filesUnder(dir) > 0).toBe(hasCompileCache);
    expect(existsSync(s.path('unused/node-compile-cache'))).toBe(false);
  });

  it('is off with NODE_DISABLE_COMPILE_CACHE=1', () => {
    const tmp = s.path('disabled');
    const r = geomctl(['--version'], { env: env(tmp, { NODE_DISABLE_COMPILE_CACHE: '1' }) });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(existsSync(`${tmp}/node-compile-cache`)).toBe(false);
  });
});
