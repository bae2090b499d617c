import { createRedis, waitForRedis } from '../packages/core/src/redis/client.ts';

/** Deletes every key under a prefix, on a single Redis or on each master of a Redis Cluster. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = createRedis(url);
  try {
    await waitForRedis(redis, 5_000);
    const nodes = 'nodes' in redis ? redis.nodes('master') : [redis];
    for (const node of nodes) {
      for await (const batch of node.scanStream({ match: `${prefix}*`, count: 500 })) {
        // One key at a time: on a cluster the keys of one batch may live in different slots.
        for (const k of batch as string[]) await redis.unlink(k);
      }
    }
  } finally {
    redis.disconnect();
  }
}
