import net from 'node:net';

/**
 * The suites run on the real PostgreSQL and Redis. When either is missing the run fails here,
 * with the way to start it, rather than skipping what needs it.
 */
export default async function setup(): Promise<void> {
  const pg = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  // TEST_REDIS_URL may list a Redis Cluster's seed nodes, comma-separated: the first must answer.
  const redis = new URL((process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379').split(',')[0]!.trim());
  const missing: string[] = [];
  if (!(await reachable(pg.hostname, Number(pg.port || 5432)))) missing.push(`PostgreSQL at ${pg.host} (TEST_DATABASE_URL)`);
  if (!(await reachable(redis.hostname, Number(redis.port || 6379)))) missing.push(`Redis at ${redis.host} (TEST_REDIS_URL)`);
  if (missing.length) throw new Error(`The test suite needs ${missing.join(' and ')}; start them (see README.md) and run again.`);
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
