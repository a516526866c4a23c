import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // better-sqlite3 is a native addon: forks isolate it more simply than worker threads.
    pool: 'forks',
    testTimeout: 60_000, // a budget for property tests on a loaded 2-core machine, not a speed claim
    hookTimeout: 20_000,
  },
});
