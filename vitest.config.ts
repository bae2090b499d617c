import { defineConfig } from 'vitest/config';

/**
 * The suites that call the hot procedures (queue.status, concerts.seats, queue.enter,
 * reservations.hold, payments.pay) run twice: in `default`, batched like a browser frontend
 * (tRPC's own handler), and in `fast-path`, one request per call like the CLI, so those calls take
 * the server's fast path and every other call tRPC's unbatched handling. The race suites send one
 * request per call already (fast path in `default`); fast-path.test.ts compares the two paths on
 * generated requests. The slow operations suites (spawned processes, faults, compose, shutdown)
 * run once.
 */
const PROCEDURE_SUITES = ['smoke', 'queue', 'reservations', 'payments', 'idempotency', 'auth', 'balance'].map((s) => `packages/api/test/${s}.test.ts`);

export default defineConfig({
  test: {
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites own their databases and spawn servers; two at once fit two cores.
    maxWorkers: 2,
    fileParallelism: true,
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci-results.json' }]] : ['default'],
    projects: [
      { extends: true, test: { name: 'default', include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'bench/**/*.test.ts'] } },
      { extends: true, test: { name: 'fast-path', include: PROCEDURE_SUITES, env: { TEST_TRPC_LINK: 'single' } } },
    ],
  },
});
