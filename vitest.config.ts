import { configDefaults, defineConfig } from 'vitest/config';

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

/**
 * The suites that mock modules, spy on shared prototypes or change the process's environment run
 * each in a process of its own (vitest's default isolation). Every other suite shares its worker's
 * modules with the suites before it (`isolate: false`): importing the app afresh for each of 120
 * files was a third of the suite's time on a slow two-core machine (a fresh-clone CI run took
 * 1,045 s there; 18 short suites ran in 48 s isolated and 30 s shared).
 */
const ISOLATED_SUITES = [
  'bench/cpu.test.ts',
  'packages/api/src/transformer.test.ts',
  'packages/api/test/edge.test.ts',
  'packages/api/test/holds.claims.test.ts',
  'packages/api/test/holds.crowd.test.ts',
  'packages/api/test/money.chaos.test.ts',
  'packages/api/test/ops.compose.test.ts',
  'packages/api/test/users.lookup.test.ts',
  'packages/core/src/users/users.service.batching.test.ts',
];
const ALL_SUITES = ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'bench/**/*.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites own their databases and spawn servers, and spend much of their time waiting on them:
    // three at once on two cores (two had one core idle a third of the time: a fresh-clone CI run
    // on a slow two-core machine took 1,045 s; the suite ran in 931 s with two, 854 s with two and
    // shared modules, 734 s with three and shared modules, all passing).
    maxWorkers: 3,
    fileParallelism: true,
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci-results.json' }]] : ['default'],
    projects: [
      { extends: true, test: { name: 'default', include: ALL_SUITES, exclude: [...configDefaults.exclude, ...ISOLATED_SUITES], isolate: false } },
      { extends: true, test: { name: 'isolated', include: ISOLATED_SUITES } },
      { extends: true, test: { name: 'fast-path', include: PROCEDURE_SUITES, env: { TEST_TRPC_LINK: 'single' } } },
    ],
  },
});
