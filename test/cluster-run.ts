/**
 * `pnpm test:cluster`: the suites that touch Redis, run against a real three-master Redis
 * Cluster (redis-server in cluster mode, made with redis-cli --cluster create) instead of the
 * single Redis. Extra arguments go to vitest (say, one file).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './harness.ts';
import { startRedisCluster, stopRedisCluster } from './redis-cluster.ts';

/**
 * Every suite that talks to the shared Redis, but those that run a redis-server of their own
 * (ops.redis-fault, ops.redis-restart, the client watchdog) or proxy one Redis node (seatmap).
 */
export const REDIS_SUITES = [
  'packages/core/src/queue/queue.store.test.ts',
  'packages/core/src/queue/queue.gate.test.ts',
  'packages/api/test/queue.test.ts',
  'packages/api/test/queue.inventory.test.ts',
  'packages/api/test/queue.prequeue.test.ts',
  'packages/api/test/queue.eta.test.ts',
  'packages/api/test/clock.skew.test.ts',
  'packages/api/test/races.multiprocess.test.ts',
  'packages/api/test/races.pgbouncer.test.ts',
  'packages/api/test/aftersale.multiprocess.test.ts',
  'packages/api/test/edge.test.ts',
  'packages/api/test/ops.ratelimit.test.ts',
  'packages/api/test/ops.observe.test.ts',
  'packages/api/test/ops.crash.test.ts',
  'packages/api/test/ops.shutdown.test.ts',
  'packages/api/test/ops.rehearse.test.ts',
  'packages/cli/test/cli.e2e.test.ts',
  'packages/cli/test/watch.test.ts',
];

const ports: number[] = [];
for (let i = 0; i < 3; i++) ports.push(await freePort());
const dir = mkdtempSync(path.join(tmpdir(), 'redis-cluster-'));
let status = 1;
try {
  const url = await startRedisCluster({ dir, ports });
  console.log(`test:cluster: Redis Cluster of 3 masters at ${url}`);
  const args = process.argv.slice(2);
  const child = spawn('vitest', ['run', ...(args.length ? args : REDIS_SUITES)], {
    stdio: 'inherit',
    env: { ...process.env, TEST_REDIS_URL: url },
  });
  status = await new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
} finally {
  await stopRedisCluster(ports);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(status);
