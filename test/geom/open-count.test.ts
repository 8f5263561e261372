// One tasting pass per command (issue 10): the listing verbs open each image
// once, whatever path or provider name reaches it, counted with strace over
// the built bin/geomctl — with plain geoms and a stack among the images.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, geomctl, scratch, sparseImage } from '../helpers/cli.js';
import { tool } from '../helpers/tools.js';
import { spawnSync } from 'node:child_process';

const M = 1024 * 1024;
const s = scratch('geomctl-opens-');
afterAll(() => s.cleanup());

const IMAGES = ['data.img', 'j.img', 'c0.img', 'c1.img'];

/** How many times each image was opened (openat that succeeded) by `geomctl args`. */
function opens(strace: string, args: string[]): Record<string, number> {
  const log = join(s.dir, 'strace.log');
  const r = spawnSync(strace, ['-f', '-e', 'trace=openat', '-o', log, process.execPath, BIN, ...args], { cwd: s.dir, env: { ...process.env, NO_COLOR: '1' } });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  const counts: Record<string, number> = {};
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const m = /openat\([^,]+, "([^"]+)".*\) = \d+$/.exec(line);
    if (!m) continue;
    const name = IMAGES.find((img) => m[1] === img || m[1]?.endsWith(`/${img}`));
    if (name) counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

describe('one tasting pass', () => {
  const strace = tool('strace');
  it.skipIf(!strace)('list, status, dump and the class listings open each image at most once', () => {
    sparseImage(join(s.dir, 'data.img'), 64 * M);
    sparseImage(join(s.dir, 'j.img'), 64 * M);
    sparseImage(join(s.dir, 'c0.img'), 160 * M);
    sparseImage(join(s.dir, 'c1.img'), 64 * M);
    const ok = (args: string[]): void => expect(geomctl(args, { cwd: s.dir }).status).toBe(0);
    ok(['journal', 'label', 'data.img', 'j.img']);
    ok(['virstor', 'label', '-s', '1G', '-m', '1M', 'thin', 'c0.img', 'c1.img']);
    ok(['journal', 'label', '-s', '100M', 'virstor/thin']);
    for (const args of [['list'], ['status'], ['dump', 'c0.img'], ['journal', 'list'], ['virstor', 'list'], ['journal', 'status', 'virstor/thin'], ['list', 'virstor/thin.journal']]) {
      const counts = opens(strace as string, args);
      for (const [image, n] of Object.entries(counts)) expect(n, `geomctl ${args.join(' ')} opens ${image}`).toBe(1);
      if (args[0] !== 'dump') expect(Object.keys(counts).sort(), args.join(' ')).toEqual([...IMAGES].sort());
    }
  });
});
