import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites own their databases and spawn servers; two at once fit two cores.
    maxWorkers: 2,
    fileParallelism: true,
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci-results.json' }]] : ['default'],
  },
});
