import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, waitForRedis } from '../redis/client.ts';
import { seatMapVersionsKey } from '../redis/keys.ts';
import { MemorySeatVersionStore, RedisSeatVersionStore, type SeatChange, type SeatVersionStore } from './seatmap.cache.ts';
import { deleteRedisKeys } from '../../../../test/redis-keys.ts';

/** The seat-map version store: the memory adapter and the Redis one (a script per bump) keep the same counts. */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('seat-map versions in Redis', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const redis = createRedis(REDIS_URL, { keyPrefix: prefix });
  // A second client, as a second API process would have.
  const other = createRedis(REDIS_URL, { keyPrefix: prefix });
  const stores: SeatVersionStore[] = [new RedisSeatVersionStore(redis), new RedisSeatVersionStore(other)];

  beforeAll(async () => {
    await Promise.all([waitForRedis(redis, 5_000), waitForRedis(other, 5_000)]);
    if (redis.status !== 'ready') throw new Error(`Redis at ${REDIS_URL} is not reachable`);
  });
  afterAll(async () => {
    await deleteRedisKeys(REDIS_URL, prefix);
    redis.disconnect();
    other.disconnect();
  });

  it('counts every change exactly, however many processes bump at once, and `freed` only for changes that may free seats', async () => {
    const memory = new MemorySeatVersionStore();
    const changes: Array<[number, SeatChange]> = Array.from({ length: 400 }, (_, i) => [i % 3 === 0 ? 7 : 8, i % 5 === 0 ? 'any' : 'claim']);
    await Promise.all(changes.map(([schedule, change], i) => stores[i % 2]!.bump(1, schedule, change)));
    for (const [schedule, change] of changes) await memory.bump(1, schedule, change);
    for (const schedule of [7, 8, 9]) {
      const [a, b, m] = await Promise.all([stores[0]!.get(1, schedule), stores[1]!.get(1, schedule), memory.get(1, schedule)]);
      expect({ n: a!.n, freed: a!.freed }).toEqual({ n: m.n, freed: m.freed });
      expect(b).toEqual(a);
    }
    expect((await stores[0]!.get(1, 7))!.freed).toBeGreaterThan(0);
    // One epoch for the concert, whoever bumped first; another concert's is its own.
    await stores[1]!.bump(2, 7, 'claim');
    expect((await stores[0]!.get(2, 7))!.epoch).not.toBe((await stores[0]!.get(1, 7))!.epoch);
  });

  it('a hash that lost its data (Redis restarted empty) starts a new epoch with the next bump, never the old one', async () => {
    await stores[0]!.bump(3, 1, 'claim');
    const before = (await stores[0]!.get(3, 1))!;
    // The epoch is only ever set where there is none: later bumps keep it.
    await stores[1]!.bump(3, 1, 'any');
    expect((await stores[0]!.get(3, 1))!).toEqual({ epoch: before.epoch, n: before.n + 1, freed: before.freed + 1 });
    await redis.del(seatMapVersionsKey(3));
    expect(await stores[0]!.get(3, 1)).toBeUndefined();
    await stores[0]!.bump(3, 1, 'claim');
    const after = (await stores[0]!.get(3, 1))!;
    expect(after).toEqual({ epoch: expect.any(String), n: 1, freed: 0 });
    expect(after.epoch).not.toBe(before.epoch);
  });
});
