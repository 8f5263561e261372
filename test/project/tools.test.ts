// test/helpers/tools.ts: a test that needs a missing system tool skips on a
// developer's machine, and fails under CI=true naming the package to install.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { FILE_PACKAGES, PACKAGES, tool } from '../helpers/tools.js';

afterEach(() => vi.restoreAllMocks());

describe('tool', () => {
  it('finds an installed tool by its absolute path', () => {
    expect(tool('bash')).toMatch(/^\/.*\/bash$/);
  });

  it('a missing tool: a warning and undefined (the tests skip), without CI', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(tool('makefs', { env: {}, dirs: ['/nonexistent'] })).toBeUndefined();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('makefs is not installed (Debian package makefs: apt-get install makefs'));
  });

  it('a missing tool under CI=true fails, naming the package', () => {
    expect(() => tool('script', { env: { CI: 'true' }, dirs: ['/nonexistent'] })).toThrow(/^script is not installed \(Debian package bsdutils: apt-get install bsdutils; \.ci\/run installs it\); under CI=true/);
  });

  it('every package the suite needs is one .ci/run installs', async () => {
    const { readFileSync } = await import('node:fs');
    const run = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
    const listed = /^PACKAGES=\(([^)]*)\)/m.exec(run)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
    expect(listed).toEqual(expect.arrayContaining([...new Set([...Object.values(PACKAGES), ...Object.values(FILE_PACKAGES)])]));
  });
});
