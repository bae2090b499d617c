import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, waitForRedis } from '../redis/client.ts';
import type { QueueSettings, QueueStore, TokenState } from './queue.store.ts';
import { MemoryQueueStore } from './queue.store.memory.ts';
import { RedisQueueStore } from './queue.store.redis.ts';
import { deleteRedisKeys } from '../../../../test/redis-keys.ts';

/** One contract, two adapters: the embedded store must behave exactly like the Redis one. */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const adapters: Array<[string, () => { store: QueueStore; ready: () => Promise<void>; cleanup: () => Promise<void> }]> = [
  ['memory', () => ({ store: new MemoryQueueStore(), ready: async () => {}, cleanup: async () => {} })],
  [
    'redis',
    () => {
      const prefix = `test:${randomBytes(6).toString('hex')}:`;
      const redis = createRedis(REDIS_URL, { keyPrefix: prefix });
      return {
        store: new RedisQueueStore(redis),
        ready: async () => {
          await waitForRedis(redis, 5_000);
          if (redis.status !== 'ready') throw new Error(`Redis at ${REDIS_URL} is not reachable`);
        },
        cleanup: async () => {
          // Our own keys only: other suites share this Redis.
          await deleteRedisKeys(REDIS_URL, prefix);
          redis.disconnect();
        },
      };
    },
  ],
];

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const settings = (over: Partial<QueueSettings> = {}): QueueSettings => ({
  maxActive: 3,
  activeTtlSeconds: 60,
  idleTimeoutSeconds: 30,
  paused: false,
  ...over,
});
const tid = (n: number) => `tok${String(n).padStart(19, '0')}`;

describe.each(adapters)('queue store contract: %s', (_name, make) => {
  const { store, ready, cleanup } = make();
  beforeAll(ready);
  afterAll(cleanup);
  let concert = 0;
  const nextConcert = () => ++concert;
  const check = async (c: number, t: string, now: number) => (await store.check(c, t, now)).state;
  const status = async (c: number, t: string, now: number, d: QueueSettings): Promise<TokenState> => {
    const r = await store.status(c, t, now, d, false);
    if ('rateLimited' in r) throw new Error('unexpected rate limit');
    return r;
  };

  it('1,000 concurrent enters get distinct positions 1..1000 in arrival order; re-entering returns the same token and place', async () => {
    const c = nextConcert();
    const d = settings({ paused: true });
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => store.enter(c, i + 1, tid(i), T0, d)));
    expect(results.map((r) => r.position)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(new Set(results.map((r) => r.tokenId)).size).toBe(1000);
    expect(results.every((r) => r.status === 'WAITING' && r.created)).toBe(true);
    const again = await Promise.all([store.enter(c, 500, 'fresh-token-id-xxxxxxx', T0 + 10, d), store.enter(c, 1, 'fresh-token-id-yyyyyyy', T0 + 10, d)]);
    expect(again.map((r) => [r.tokenId, r.position, r.created])).toEqual([
      [tid(499), 500, false],
      [tid(0), 1, false],
    ]);
    expect((await store.stats(c, T0 + 10, d)).waiting).toBe(1000);
  });

  it('admits first come, first served up to maxActive, and a leave admits the head at once', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 2 });
    const r = [];
    for (let u = 1; u <= 4; u++) r.push(await store.enter(c, u, tid(u), T0 + u, d));
    expect(r.map((x) => x.status)).toEqual(['ACTIVE', 'ACTIVE', 'WAITING', 'WAITING']);
    expect(r[0]!.activeUntil).toBe(T0 + 1 + 60_000);
    expect(r.map((x) => x.position)).toEqual([null, null, 1, 2]);
    expect(await store.leave(c, tid(1), T0 + 10, d)).toBe(true);
    expect(await check(c, tid(3), T0 + 10)).toBe('ACTIVE');
    expect((await status(c, tid(4), T0 + 10, d)).position).toBe(1);
    expect(await store.leave(c, tid(1), T0 + 11, d)).toBe(false);
    expect(await check(c, tid(1), T0 + 11)).toBe('EXPIRED');
    // After a leave, entering again puts the user at the back with a new token.
    const back = await store.enter(c, 1, tid(100), T0 + 12, d);
    expect([back.created, back.tokenId, back.position]).toEqual([true, tid(100), 2]);
  });

  it('expires an ACTIVE token at activeUntil and gives the slot to the head on the next tick', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, activeTtlSeconds: 5 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.enter(c, 2, tid(2), T0, d);
    expect(await check(c, tid(1), T0 + 4_999)).toBe('ACTIVE');
    expect(await check(c, tid(1), T0 + 5_000)).toBe('EXPIRED');
    await store.tick(T0 + 5_000, d);
    expect(await check(c, tid(2), T0 + 5_000)).toBe('ACTIVE');
    expect((await status(c, tid(1), T0 + 5_000, d)).status).toBe('EXPIRED');
    const s = await store.stats(c, T0 + 5_000, d);
    expect([s.active, s.waiting, s.admittedTotal]).toEqual([1, 0, 2]);
  });

  it('drops WAITING tokens not polled within the idle timeout; those behind move up', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, idleTimeoutSeconds: 10 });
    for (let u = 1; u <= 4; u++) await store.enter(c, u, tid(u), T0, d);
    // 2 and 4 poll; 3 does not.
    await status(c, tid(2), T0 + 8_000, d);
    await status(c, tid(4), T0 + 8_000, d);
    await store.tick(T0 + 10_000, d);
    expect((await status(c, tid(3), T0 + 10_000, d)).status).toBe('EXPIRED');
    expect((await status(c, tid(4), T0 + 10_000, d)).position).toBe(2);
    // An ACTIVE token does not go idle: it lives its TTL.
    expect(await check(c, tid(1), T0 + 10_000)).toBe('ACTIVE');
  });

  it('pause holds everyone in place; resume admits again', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.enter(c, 2, tid(2), T0, d);
    await store.enter(c, 3, tid(3), T0, d);
    const paused = await store.configure(c, { paused: true }, T0 + 1, d);
    expect(paused.paused).toBe(true);
    await store.leave(c, tid(1), T0 + 2, d);
    await store.tick(T0 + 3, d);
    expect((await status(c, tid(2), T0 + 3, d)).position).toBe(1);
    expect((await store.stats(c, T0 + 3, d)).active).toBe(0);
    const resumed = await store.configure(c, { paused: false, maxActive: 2 }, T0 + 4, d);
    expect([resumed.paused, resumed.maxActive, resumed.active, resumed.waiting]).toEqual([false, 2, 2, 0]);
  });

  it('never exceeds maxActive while enters, leaves and expiries run at once', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 5, activeTtlSeconds: 1 });
    let t = T0;
    for (let round = 0; round < 20; round++) {
      t += 300;
      const ops: Array<Promise<unknown>> = [];
      for (let u = 0; u < 15; u++) {
        const user = round * 100 + u + 1;
        ops.push(store.enter(c, user, tid(user), t, d));
        if (u % 3 === 0) ops.push(store.leave(c, tid(user - 100), t, d));
        if (u % 4 === 0) ops.push(store.leave(c, tid(user - 200), t, d));
      }
      ops.push(store.tick(t, d));
      await Promise.all(ops);
      const s = await store.stats(c, t, d);
      expect(s.active).toBeLessThanOrEqual(5);
      expect(s.active).toBe(Math.min(5, s.active + s.waiting));
    }
  });

  it('tells each place when to poll, and refuses polls sooner than half of that', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 2, idleTimeoutSeconds: 60 });
    for (let u = 1; u <= 400; u++) await store.enter(c, u, tid(u), T0, d);
    // 2 admitted in the last minute: the ETA of place p is 30p seconds; the first ten places poll
    // every second, the rest after min(20 s, max(50p ms, ETA/4)).
    const head = await status(c, tid(3), T0 + 1, d);
    const tenth = await status(c, tid(12), T0 + 1, d);
    const eleventh = await status(c, tid(13), T0 + 1, d);
    const mid = await status(c, tid(42), T0 + 1, d);
    expect([head.position, tenth.position, eleventh.position, mid.position]).toEqual([1, 10, 11, 40]);
    expect([head.pollAfterMs, tenth.pollAfterMs, eleventh.pollAfterMs, mid.pollAfterMs]).toEqual([1_000, 1_000, 20_000, 20_000]);
    const active = await status(c, tid(1), T0 + 1, d);
    expect(active.pollAfterMs).toBe(29_999);
    expect((await status(c, tid(9_999), T0 + 1, d)).pollAfterMs).toBe(60_000);
    // Limited: a second poll within half the interval is refused, with the wait.
    expect(await store.status(c, tid(42), T0 + 1_000, d, true)).toEqual({ rateLimited: 9_001 });
    expect('rateLimited' in (await store.status(c, tid(42), T0 + 10_001, d, true))).toBe(false);
    expect(await store.status(c, tid(3), T0 + 300, d, true)).toEqual({ rateLimited: 201 });
    // With no admissions yet, distance alone sets the pace, capped by a third of the idle timeout.
    const c2 = nextConcert();
    const paused = settings({ paused: true, idleTimeoutSeconds: 30 });
    for (let u = 1; u <= 300; u++) await store.enter(c2, u, tid(u), T0, paused);
    expect((await status(c2, tid(1), T0, paused)).pollAfterMs).toBe(1_000);
    expect((await status(c2, tid(100), T0, paused)).pollAfterMs).toBe(5_000);
    expect((await status(c2, tid(300), T0, paused)).pollAfterMs).toBe(10_000);
  });

  it('counts admissions in the last minute for the ETA', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 2 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.enter(c, 2, tid(2), T0, d);
    const waiting = await store.enter(c, 3, tid(3), T0 + 1_000, d);
    expect(waiting.admittedLastMinute).toBe(2);
    expect((await status(c, tid(3), T0 + 61_000, d)).admittedLastMinute).toBe(0);
  });
});
