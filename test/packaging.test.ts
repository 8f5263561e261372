// Packaging (issue "User experience"): `npm pack` makes a tarball with only
// what geomctl needs, and it installs and runs in an empty directory.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { scratch } from './helpers/cli.js';

const ROOT = resolve(__dirname, '..');
const s = scratch('geomctl-pack-');
afterAll(() => s.cleanup());

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('npm pack', () => {
  it('packs only the runtime files, and the tarball installs and runs', () => {
    // --ignore-scripts: `prepare` would rebuild dist/ under the CLI tests running beside this one.
    const listing = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', s.dir], ROOT)) as { filename: string; files: { path: string }[] }[];
    const files = listing[0]!.files.map((f) => f.path);
    expect(files).toContain('bin/geomctl');
    expect(files).toContain('dist/geomctl.mjs');
    expect(files).toContain('man/geomctl.8');
    expect(files.filter((f) => /^(src|test|commands|bench)\//.test(f))).toEqual([]);

    const tarball = join(s.dir, readdirSync(s.dir).find((f) => f.endsWith('.tgz'))!);
    const app = s.path('app');
    execFileSync('mkdir', ['-p', app]);
    npm(['init', '-y'], app);
    npm(['install', '--no-audit', '--no-fund', tarball], app);
    const version = execFileSync('npx', ['geomctl', '--version'], { cwd: app, encoding: 'utf8' }).trim();
    expect(version).toBe(JSON.parse(npm(['pkg', 'get', 'version'], ROOT)));
  }, 240_000);

  it('runs on a Node.js that package.json engines names (engines lists only versions tested)', () => {
    // engines is "^20.0.0 || ^22.0.0": the majors the suite has passed on. A run
    // on another major fails here until it has passed and engines names it.
    const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const majors = [...engines.matchAll(/\^(\d+)\.0\.0/g)].map((m) => Number(m[1]));
    expect(majors.length).toBeGreaterThan(0);
    expect(majors).toContain(Number(process.versions.node.split('.')[0]));
  });
});
