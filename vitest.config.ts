import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // better-sqlite3 is a native addon: forks isolate it more simply than worker threads.
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
