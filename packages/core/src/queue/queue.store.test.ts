import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, waitForRedis } from '../redis/client.ts';
import { LINE_PRUNE_MS, type QueueSettings, type QueueStore, type TokenState } from './queue.store.ts';
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
  opensAt: null,
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
    // No departure yet, two slots held for 10 s: a slot is expected to turn over every 2 × 10 s,
    // so place p waits 10p s; the first ten places poll every second, the rest after
    // min(20 s, max(50p ms, ETA/4)).
    const at = T0 + 10_000;
    const head = await status(c, tid(3), at, d);
    const tenth = await status(c, tid(12), at, d);
    const eleventh = await status(c, tid(13), at, d);
    const mid = await status(c, tid(42), at, d);
    expect([head.position, tenth.position, eleventh.position, mid.position]).toEqual([1, 10, 11, 40]);
    expect([head.etaMs, eleventh.etaMs, mid.etaMs]).toEqual([10_000, 110_000, 400_000]);
    expect([head.pollAfterMs, tenth.pollAfterMs, eleventh.pollAfterMs, mid.pollAfterMs]).toEqual([1_000, 1_000, 20_000, 20_000]);
    const active = await status(c, tid(1), at, d);
    expect(active.pollAfterMs).toBe(25_000);
    expect((await status(c, tid(9_999), at, d)).pollAfterMs).toBe(60_000);
    // Limited: a second poll within half the interval is refused, with the wait.
    expect(await store.status(c, tid(42), at + 1_000, d, true)).toEqual({ rateLimited: 9_000 });
    expect('rateLimited' in (await store.status(c, tid(42), at + 10_000, d, true))).toBe(false);
    expect(await store.status(c, tid(3), at + 300, d, true)).toEqual({ rateLimited: 200 });
    // With nobody being admitted (paused), distance alone sets the pace, capped by a third of the idle timeout.
    const c2 = nextConcert();
    const paused = settings({ paused: true, idleTimeoutSeconds: 30 });
    for (let u = 1; u <= 300; u++) await store.enter(c2, u, tid(u), T0, paused);
    const p1 = await status(c2, tid(1), T0, paused);
    expect([p1.pollAfterMs, p1.etaMs]).toEqual([1_000, null]);
    expect((await status(c2, tid(100), T0, paused)).pollAfterMs).toBe(5_000);
    expect((await status(c2, tid(300), T0, paused)).pollAfterMs).toBe(10_000);
  });

  it('estimates the wait from the slots’ observed turnover, bounded by the ACTIVE tokens’ expiry', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 2, activeTtlSeconds: 60 });
    for (let u = 1; u <= 10; u++) await store.enter(c, u, tid(u), T0, d);
    // Two slots held for 4 s, then both turn over (a payment spends its token, a fan leaves) and 3, 4 are admitted.
    expect(await store.leave(c, tid(1), T0 + 4_000, d)).toBe(true);
    expect(await store.leave(c, tid(2), T0 + 4_000, d)).toBe(true);
    // Decayed sums: 2 departures over 2 × 30 s × (1 − e^(−4/30)) slot-seconds: a slot turns over every ~3.7 s.
    const exposure = 2 * 30 * (1 - Math.exp(-4 / 30));
    const hold = (exposure * 1000) / 2;
    const p1 = await status(c, tid(5), T0 + 4_000, d);
    const p6 = await status(c, tid(10), T0 + 4_000, d);
    expect([p1.position, p6.position]).toEqual([1, 6]);
    expect(p1.etaMs).toBe(Math.floor(hold / 2));
    expect(p6.etaMs).toBe(Math.floor((6 * hold) / 2));
    const stats = await store.stats(c, T0 + 4_000, d);
    expect([stats.admittedTotal, stats.admittedLastMinute, stats.etaBackMs]).toEqual([4, 4, Math.floor((6 * hold) / 2)]);

    // A young line: nobody has left yet, so a slot is expected to be kept twice its holders' mean age;
    // and place 1 is admitted at the latest when the first ACTIVE token expires.
    const c2 = nextConcert();
    const short = settings({ maxActive: 2, activeTtlSeconds: 5 });
    for (let u = 1; u <= 5; u++) await store.enter(c2, u, tid(u), T0, short);
    expect((await status(c2, tid(3), T0 + 1_000, short)).etaMs).toBe(1_000);
    expect((await status(c2, tid(4), T0 + 1_000, short)).etaMs).toBe(2_000);
    expect((await status(c2, tid(3), T0 + 4_000, short)).etaMs).toBe(1_000);
    expect((await status(c2, tid(4), T0 + 4_000, short)).etaMs).toBe(1_000);
    expect((await status(c2, tid(5), T0 + 4_000, short)).etaMs).toBe(12_000);
  });

  it('pre-queues everyone who enters before the opening at a random place, ahead of every later arrival', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, idleTimeoutSeconds: 120 });
    // Two fans are already in line when the operator sets an opening time: they keep their places.
    await store.enter(c, 1, tid(1), T0, settings({ paused: true }));
    await store.enter(c, 2, tid(2), T0, settings({ paused: true }));
    const opensAt = T0 + 60_000;
    const configured = await store.configure(c, { opensAt, paused: false }, T0, d);
    expect([configured.state, configured.preQueued, configured.waiting, configured.opensAt]).toEqual(['PRE_QUEUE', 2, 0, opensAt]);
    const pre = [];
    for (let u = 3; u <= 202; u++) pre.push(await store.enter(c, u, tid(u), T0 + u * 100, d));
    expect(pre.every((t) => t.status === 'PRE_QUEUE' && t.position === null && t.opensAt === opensAt)).toBe(true);
    expect(pre[0]!.etaMs).toBe(opensAt - (T0 + 300));
    // Polls are spread: between half of and the whole ceiling (30 s), not all at one instant.
    const polls = pre.map((t) => t.pollAfterMs);
    expect(Math.min(...polls)).toBeGreaterThanOrEqual(15_000);
    expect(Math.max(...polls)).toBeLessThanOrEqual(30_000);
    expect(new Set(polls).size).toBeGreaterThan(150);
    // Near the opening, they are spread over the seconds after it.
    const near = await status(c, tid(3), opensAt - 1_000, d);
    expect(near.pollAfterMs).toBeGreaterThanOrEqual(1_000);
    expect(near.pollAfterMs).toBeLessThanOrEqual(6_000);
    // Nobody is admitted before the opening; a stats poll shows the pre-queue.
    expect((await store.stats(c, opensAt - 1, d)).active).toBe(0);

    const after = await store.enter(c, 500, tid(500), opensAt + 1, d);
    const line = await store.stats(c, opensAt + 1, d);
    expect([line.state, line.preQueued, line.waiting, line.active]).toEqual(['OPEN', 0, 202, 1]);
    expect(await check(c, tid(1), opensAt + 1)).toBe('ACTIVE');
    expect((await status(c, tid(2), opensAt + 1, d)).position).toBe(1);
    const places = [];
    for (let u = 3; u <= 202; u++) places.push((await status(c, tid(u), opensAt + 2, d)).position!);
    expect([...places].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 2));
    expect(places).not.toEqual(Array.from({ length: 200 }, (_, i) => i + 2));
    expect(after.position).toBe(202);
  });

  it('admits nobody while every seat is held, resumes when a hold lapses, turns the line SOLD_OUT and reopens it in order', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, activeTtlSeconds: 60, idleTimeoutSeconds: 10 });
    // The inventory has never been read: the first tick claims it, once.
    await store.enter(c, 1, tid(1), T0, d);
    expect(await store.tick(T0, d)).toContain(c);
    expect(await store.tick(T0 + 1, d)).not.toContain(c);
    await store.setInventory(c, { available: 0, held: 2, nextLapse: T0 + 5_000 }, T0 + 1, d);
    await store.leave(c, tid(1), T0 + 2, d);
    await store.enter(c, 2, tid(2), T0 + 2, d);
    await store.enter(c, 3, tid(3), T0 + 2, d);
    const held = await store.stats(c, T0 + 3, d);
    expect([held.state, held.active, held.waiting, held.etaBackMs]).toEqual(['ALL_HELD', 0, 2, null]);
    const s2 = await status(c, tid(2), T0 + 3, d);
    expect([s2.status, s2.position, s2.etaMs]).toEqual(['WAITING', 1, null]);
    // The first hold lapses at T0 + 5 s: admission resumes with no read of the database.
    await store.tick(T0 + 5_000, d);
    expect(await check(c, tid(2), T0 + 5_000)).toBe('ACTIVE');

    // A committed change asks for a read sooner than the periodic one; never two claims at once.
    const read = T0 + 5_000;
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null }, read, d);
    expect(await store.tick(read + 200, d)).not.toContain(c);
    await store.seatsChanged(c);
    expect(await store.tick(read + 50, d)).not.toContain(c);
    expect(await store.tick(read + 200, d)).toContain(c);
    expect(await store.tick(read + 300, d)).not.toContain(c);
    // Nothing available or held: whoever waits is SOLD_OUT, a newcomer too, and nobody idles out.
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null }, read + 300, d);
    expect((await store.stats(c, read + 300, d)).state).toBe('SOLD_OUT');
    const s3 = await status(c, tid(3), read + 300, d);
    expect([s3.status, s3.position, s3.etaMs, s3.pollAfterMs]).toEqual(['SOLD_OUT', null, null, 60_000]);
    const late = await store.enter(c, 4, tid(4), read + 400, d);
    expect(late.status).toBe('SOLD_OUT');
    await store.tick(read + 60_000, d);
    expect((await store.stats(c, read + 60_000, d)).droppedIdleTotal).toBe(0);
    // Seats come back: the line reopens in its order, and whoever stopped polling has an idle timeout to return.
    await store.leave(c, tid(2), read + 60_000, d);
    await store.setInventory(c, { available: 3, held: 0, nextLapse: null }, read + 60_000, d);
    expect(await check(c, tid(3), read + 60_000)).toBe('ACTIVE');
    expect((await status(c, tid(4), read + 60_000, d)).position).toBe(1);
    const reopened = await store.stats(c, read + 65_000, d);
    expect([reopened.state, reopened.waiting, reopened.droppedIdleTotal]).toEqual(['OPEN', 1, 0]);
    await store.tick(read + 75_001, d);
    expect((await store.stats(c, read + 75_001, d)).droppedIdleTotal).toBe(1);
  });

  it('stops settling a line once it has been quiet for LINE_PRUNE_MS, and settles it again when someone enters', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, activeTtlSeconds: 600, idleTimeoutSeconds: 3600 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.setInventory(c, { available: 5, held: 0, nextLapse: null }, T0, d);
    // Someone ACTIVE: never quiet, however long.
    await store.tick(T0 + 1_000, d);
    await store.tick(T0 + 1_000 + LINE_PRUNE_MS, d);
    expect(await store.concerts()).toContain(c);
    // Empty: the tick that first sees it quiet starts the clock; LINE_PRUNE_MS later the line is out.
    const left = T0 + 2_000 + LINE_PRUNE_MS;
    await store.leave(c, tid(1), left, d);
    await store.tick(left, d);
    await store.tick(left + LINE_PRUNE_MS - 1, d);
    expect(await store.concerts()).toContain(c);
    expect(store.lastTick()?.get(c)?.active).toBe(0);
    await store.tick(left + LINE_PRUNE_MS, d);
    expect(await store.concerts()).not.toContain(c);
    expect(store.lastTick()?.has(c)).toBe(false);
    // A new entrant puts it back: the ticker admits them when the slot frees up.
    const back = left + LINE_PRUNE_MS + 10;
    await store.enter(c, 2, tid(2), back, d);
    await store.enter(c, 3, tid(3), back, d);
    expect(await store.concerts()).toContain(c);
    await store.tick(back + 600_001, d);
    expect(await check(c, tid(3), back + 600_001)).toBe('ACTIVE');
    expect(store.lastTick()?.get(c)).toMatchObject({ active: 1, waiting: 0 });
  });

  it('stops settling a sold-out line whoever waits in it, and settles it again when its seats change', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, idleTimeoutSeconds: 10 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.leave(c, tid(1), T0, d);
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null }, T0, d);
    await store.enter(c, 2, tid(2), T0 + 1, d);
    expect((await status(c, tid(2), T0 + 1, d)).status).toBe('SOLD_OUT');
    await store.tick(T0 + 2, d);
    await store.tick(T0 + 2 + LINE_PRUNE_MS, d);
    expect(await store.concerts()).not.toContain(c);
    // A refund: the change puts the line back, the tick claims a read and the waiting fan is admitted.
    await store.seatsChanged(c);
    expect(await store.concerts()).toContain(c);
    const refund = T0 + 10 + LINE_PRUNE_MS;
    expect(await store.tick(refund, d)).toContain(c);
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null }, refund, d);
    expect(await check(c, tid(2), refund)).toBe('ACTIVE');
    await store.tick(refund + LINE_PRUNE_MS, d);
    expect(await store.concerts()).toContain(c);
  });

  it('takes a writer’s read of the seats at once, and never lets an older read replace a newer one', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.enter(c, 2, tid(2), T0, d);
    expect(await store.tick(T0, d)).toContain(c);
    await store.setInventory(c, { available: 4, held: 0, nextLapse: null }, T0, d);
    // A hold of the last seats commits; its writer reads the seats after marking the change, and
    // the leave that follows (a payment giving up its token) admits nobody.
    const first = await store.seatsChanged(c);
    await store.setInventory(c, { available: 0, held: 4, nextLapse: T0 + 60_000 }, T0 + 10, d, first);
    await store.leave(c, tid(1), T0 + 20, d);
    expect([await check(c, tid(2), T0 + 20), (await store.stats(c, T0 + 20, d)).state]).toEqual(['WAITING', 'ALL_HELD']);
    // Two changes, their reads answered out of order: the later change's read stands.
    const second = await store.seatsChanged(c);
    const third = await store.seatsChanged(c);
    expect(third).toBeGreaterThan(second);
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null }, T0 + 30, d, third);
    await store.setInventory(c, { available: 0, held: 4, nextLapse: T0 + 60_000 }, T0 + 31, d, second);
    expect((await store.stats(c, T0 + 40, d)).state).toBe('SOLD_OUT');
    // A tick's read claimed before a change (seats refunded) and answered after that change's own read is older too.
    expect(await store.tick(T0 + 1_100, d)).toContain(c);
    const refund = await store.seatsChanged(c);
    await store.setInventory(c, { available: 2, held: 0, nextLapse: null }, T0 + 1_150, d, refund);
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null }, T0 + 1_200, d);
    expect(await check(c, tid(2), T0 + 1_200)).toBe('ACTIVE');
    expect((await store.stats(c, T0 + 1_200, d)).state).toBe('OPEN');
  });

  it('counts admissions per bucket for the operator’s sparkline', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.leave(c, tid(1), T0 + 15_000, d);
    await store.enter(c, 2, tid(2), T0 + 15_000, d);
    await store.leave(c, tid(2), T0 + 25_000, d);
    await store.enter(c, 3, tid(3), T0 + 25_000, d);
    // Buckets are (from, from + 10 s]: T0's admission is in the first.
    expect(await store.admissions(c, T0 + 30_000, 10_000, 4)).toEqual([1, 0, 1, 1]);
  });
});

/** Redis can lose its data (a restart without its append-only file, a FLUSHALL): the registry with it. */
describe('queue store on Redis: the ticker’s registry after Redis lost its data', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const redis = createRedis(REDIS_URL, { keyPrefix: prefix });
  const store = new RedisQueueStore(redis);
  beforeAll(async () => {
    await waitForRedis(redis, 5_000);
    if (redis.status !== 'ready') throw new Error(`Redis at ${REDIS_URL} is not reachable`);
  });
  afterAll(async () => {
    await deleteRedisKeys(REDIS_URL, prefix);
    redis.disconnect();
  });

  it('the next entrant registers the concert again, and the ticker settles its line', async () => {
    const c = 1;
    const d = settings({ maxActive: 1, idleTimeoutSeconds: 3600 });
    await store.enter(c, 1, tid(1), T0, d);
    expect(await store.concerts()).toEqual([c]);
    // Every key of this store gone, as after a restart without persistence (this prefix only: the Redis is shared).
    await deleteRedisKeys(REDIS_URL, prefix);
    expect(await store.concerts()).toEqual([]);
    await store.enter(c, 2, tid(2), T0 + 1, d);
    await store.enter(c, 3, tid(3), T0 + 1, d);
    expect(await store.concerts()).toEqual([c]);
    // The ticker, not a poll, admits the next fan when the ACTIVE one's time is up.
    expect(await store.tick(T0 + 60_001, d)).toEqual([c]);
    expect(await check(store, c, tid(3), T0 + 60_001)).toBe('ACTIVE');
  });
});

async function check(store: QueueStore, c: number, t: string, now: number) {
  return (await store.check(c, t, now)).state;
}
