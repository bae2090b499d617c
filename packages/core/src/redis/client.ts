import { Redis } from 'ioredis';

/**
 * A Redis connection that fails fast instead of hanging: no offline queue (a call while
 * disconnected errors at once), a per-command timeout, and no replay of commands that were
 * in flight when the connection dropped (a replayed script could admit or enter twice).
 */
export function createRedis(url: string, opts: { keyPrefix?: string; connectionName?: string } = {}): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    keyPrefix: opts.keyPrefix ?? '',
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 1_000,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * times, 1_000),
    connectionName: opts.connectionName ?? 'concert-api',
  });
  // Connection errors surface on the commands; the client reconnects by itself.
  redis.on('error', () => {});
  return redis;
}

/** Gives a starting Redis a moment to connect; the API starts either way and /readyz tells. */
export async function waitForRedis(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done);
  });
}

export type { Redis };
