import { defineConfig } from 'vitest/config';

// Two cores here and in CI: at most two test files at a time, each in its own
// process (several tests spawn bin/geomctl and flock images).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
