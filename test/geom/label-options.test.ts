// The options both label verbs share parse alike (commands/shared-options.ts):
// `--sectorsize 4k` was a size for journal label and a usage error for
// virstor label.

import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sparseImage } from '../helpers/cli.js';

const s = scratch('geomctl-label-options-');
afterAll(() => s.cleanup());

describe('label --sectorsize and --id, alike in both classes', () => {
  it.each([
    ['journal', (img: string) => ['journal', 'label', '--sectorsize', '4k', '--id', '77', '-s', '100M', img]],
    ['virstor', (img: string) => ['virstor', 'label', '--sectorsize', '4k', '--id', '77', '-s', '1G', 'ss', img]],
  ])('%s label takes --sectorsize 4k and --id, and the image tastes at 4096-byte sectors', (cls, argv) => {
    const img = sparseImage(s.path(`${cls}.img`), 256 * 1024 * 1024);
    const r = geomctl(argv(img), { cwd: s.dir });
    expect(r.status, r.stderr).toBe(0);
    const taste = geomctl(['--json', 'taste', img], { cwd: s.dir });
    const image = JSON.parse(taste.stdout).images[0];
    expect(image.class).toBe(cls.toUpperCase());
    expect(image.sectorSize).toBe(4096);
    const dump = geomctl(['--json', 'dump', img], { cwd: s.dir });
    expect(JSON.stringify(JSON.parse(dump.stdout))).toMatch(/"id":77\b/);
  });
});
