import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, waitForRedis } from '../redis/client.ts';
import { addLife, blendPrior, etaCurve, LINE_PRUNE_MS, type QueueSettings, type QueueStore, SOLD_OUT_POLL_MS, type TokenState } from './queue.store.ts';
import { MemoryQueueStore } from './queue.store.memory.ts';
import { RedisQueueStore } from './queue.store.redis.ts';
import { ETA_PRIOR_KEY, queueKeys } from '../redis/keys.ts';
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
        store: new RedisQueueStore(redis, { priorReadMs: 0 }),
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
    // No departure yet, two slots held for 10 s of a 60 s TTL: the ETA is the curve's (etaCurve;
    // the last test holds both adapters to it), drawn from the life table's prior alone. The
    // first ten places poll every second, the rest by distance alone (50p ms, at most 20 s):
    // an ETA that has learnt nothing does not pace them (ETA_EVIDENCE).
    const at = T0 + 10_000;
    const head = await status(c, tid(3), at, d);
    const tenth = await status(c, tid(12), at, d);
    const eleventh = await status(c, tid(13), at, d);
    const mid = await status(c, tid(42), at, d);
    expect([head.position, tenth.position, eleventh.position, mid.position]).toEqual([1, 10, 11, 40]);
    expect([head.etaMs, eleventh.etaMs, mid.etaMs]).toEqual([4_712, 116_281, 442_425]);
    expect([head.pollAfterMs, tenth.pollAfterMs, eleventh.pollAfterMs, mid.pollAfterMs]).toEqual([1_000, 1_000, 1_000, 2_000]);
    expect((await status(c, tid(400), at, d)).pollAfterMs).toBe(19_900);
    const active = await status(c, tid(1), at, d);
    expect(active.pollAfterMs).toBe(25_000);
    expect((await status(c, tid(9_999), at, d)).pollAfterMs).toBe(60_000);
    // Limited: a second poll within half the interval is refused, with the wait.
    expect(await store.status(c, tid(42), at + 500, d, true)).toEqual({ rateLimited: 500 });
    expect('rateLimited' in (await store.status(c, tid(42), at + 1_000, d, true))).toBe(false);
    expect(await store.status(c, tid(3), at + 300, d, true)).toEqual({ rateLimited: 200 });
    // Once the line has seen as many departures as it has slots (two here), the learnt ETA paces
    // the polls: min(20 s, max(50p ms, ETA/4)).
    await store.leave(c, tid(1), at + 2_000, d);
    expect((await status(c, tid(102), at + 2_000, d)).pollAfterMs).toBe(99 * 50);
    await store.leave(c, tid(2), at + 3_000, d);
    const far = await status(c, tid(102), at + 3_000, d);
    expect(far.position).toBe(98);
    expect(far.etaMs!).toBeGreaterThan(80_000);
    expect(far.pollAfterMs).toBe(Math.min(20_000, Math.floor(far.etaMs! / 4)));
    // With nobody being admitted (paused), distance alone sets the pace, capped by a third of the idle timeout.
    const c2 = nextConcert();
    const paused = settings({ paused: true, idleTimeoutSeconds: 30 });
    for (let u = 1; u <= 300; u++) await store.enter(c2, u, tid(u), T0, paused);
    const p1 = await status(c2, tid(1), T0, paused);
    expect([p1.pollAfterMs, p1.etaMs]).toEqual([1_000, null]);
    expect((await status(c2, tid(100), T0, paused)).pollAfterMs).toBe(5_000);
    expect((await status(c2, tid(300), T0, paused)).pollAfterMs).toBe(10_000);
  });

  it('times a slot from when its holder notices the admission, learns how long holders keep it, and reads a cached curve', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, activeTtlSeconds: 60 });
    for (let u = 1; u <= 12; u++) await store.enter(c, u, tid(u), T0, d);
    // Fan 1 noticed at T0 (its enter said ACTIVE). Fan 2, at the head, polls at T0 + 1 s and is told
    // to come back in a second; fan 1 leaves at T0 + 1.5 s: fan 2 is admitted but has not noticed.
    expect((await status(c, tid(2), T0 + 1_000, d)).pollAfterMs).toBe(1_000);
    await store.leave(c, tid(1), T0 + 1_500, d);
    expect(await check(c, tid(2), T0 + 1_500)).toBe('ACTIVE');
    // Fan 3 cannot be admitted before fan 2 has even seen its slot (at T0 + 2 s).
    expect((await status(c, tid(3), T0 + 1_600, d)).etaMs).toBeGreaterThanOrEqual(400);
    // Then each holder keeps the slot 2 s after noticing it: fan k polls (ACTIVE: noticed) and leaves 2 s later.
    let t = T0 + 2_000;
    for (let k = 2; k <= 8; k++) {
      expect((await status(c, tid(k), t, d)).status).toBe('ACTIVE');
      t += 2_000;
      await store.leave(c, tid(k), t, d);
    }
    // Fan 9 was admitted at t and notices now: place 1 (fan 10) is expected about 2 s later, and
    // place 2 a cycle after that (a head fan's notice, half a second, plus 2 s); a second and a
    // half on, fan 9's slot is old: half a second to go.
    expect((await status(c, tid(9), t, d)).status).toBe('ACTIVE');
    const p1 = (await status(c, tid(10), t, d)).etaMs!;
    const p2 = (await status(c, tid(11), t, d)).etaMs!;
    expect(p1).toBeGreaterThan(1_700);
    expect(p1).toBeLessThan(2_300);
    expect(p2 - p1).toBeGreaterThan(2_200);
    expect(p2 - p1).toBeLessThan(2_800);
    const later = (await status(c, tid(10), t + 1_500, d)).etaMs!;
    expect(later).toBeGreaterThan(200);
    expect(later).toBeLessThan(800);
    // Within ETA_CURVE_MS the curve is not drawn again: a departure moves everyone a place along it.
    const before = (await status(c, tid(12), t + 1_600, d)).etaMs!;
    expect((await status(c, tid(12), t + 1_600, d)).position).toBe(3);
    await store.leave(c, tid(9), t + 1_650, d);
    const after = await status(c, tid(12), t + 1_700, d);
    expect(after.position).toBe(2);
    // Drawn at t + 1.5 s, read at t + 1.6 s and t + 1.7 s: place 2 after one departure is where place 3 was.
    expect(after.etaMs).toBe(before - 100);
  });

  /**
   * Buyers who go 2–10 s after noticing, and walk-aways who hold on: by 180 s the ten slots of a
   * 300 s TTL are held by ten fans who noticed 20–155 s ago and never left, and none has lapsed
   * yet. Nobody has been seen to leave past 10 s, so they are read as holding on, mostly, until
   * their slots lapse (145 s on for the oldest; place 2 then waits for the refill's quick
   * departure, about 151 s): told 50 s and 128 s (the pseudo-holders at the buyers' pace still
   * wear the plateau down a little). Before 2026-12-06 the straight line past the table's ages ran
   * down from the quick departures and read them as about to leave (24 s and 35 s); the
   * pseudo-holders weighed as fresh holders at every age (18 s and 36 s); and there were 0.1 of
   * them (ETA_PRIOR_HAZARD) instead of 0.03 (23 s and 48 s).
   */
  it('reads holders watched long past every departure as holding on until their slots lapse', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 10, activeTtlSeconds: 300, idleTimeoutSeconds: 600 });
    const end = T0 + 180_000;
    const walkAways = [155, 140, 125, 110, 95, 80, 65, 50, 35, 20].map((ago) => end - ago * 1_000);
    let u = 0;
    // A buyer every 2 s who notices at once and leaves 2–10 s later, and the walk-aways between them.
    for (let t = T0; t < end - 25_000; t += 2_000) {
      while (walkAways.length > 0 && walkAways[0]! <= t) {
        const w = walkAways.shift()!;
        expect((await store.enter(c, ++u, tid(u), w, d)).status).toBe('ACTIVE');
        await status(c, tid(u), w, d);
      }
      expect((await store.enter(c, ++u, tid(u), t, d)).status).toBe('ACTIVE');
      await status(c, tid(u), t, d);
      await store.leave(c, tid(u), t + 2_000 + ((u * 3_571) % 8_000), d);
    }
    for (const w of walkAways) {
      expect((await store.enter(c, ++u, tid(u), w, d)).status).toBe('ACTIVE');
      await status(c, tid(u), w, d);
    }
    const [p1, p2] = [await store.enter(c, ++u, tid(u), end, d), await store.enter(c, ++u, tid(u), end, d)];
    expect([p1.status, p1.position, p2.position]).toEqual(['WAITING', 1, 2]);
    const [e1, e2] = [(await status(c, p1.tokenId, end, d)).etaMs!, (await status(c, p2.tokenId, end, d)).etaMs!];
    expect(e1).toBeGreaterThan(40_000);
    expect(e2).toBeGreaterThan(100_000);
    expect(e2).toBeLessThanOrEqual(160_000);
    // Nor does the line teach the deployment's prior a curve whose tail it has not seen
    // (ETA_PRIOR_OPEN), though it remembers enough departures: a new line of this TTL is told what
    // a deployment with no prior tells it. (Offered, with its plateau, it told a new line's place 1
    // 1.5 s a second after its ten holders noticed, where a deployment with no prior tells 0.5 s.)
    await store.tick(end, d);
    const fresh = new MemoryQueueStore();
    const told: number[] = [];
    for (const [at, on] of [[store, nextConcert()], [fresh, 1]] as const) {
      for (let v = 1; v <= 12; v++) await at.enter(on, v, tid(v), end + 1_000, d);
      await at.tick(end + 1_000, d);
      told.push(((await at.status(on, tid(11), end + 2_000, d, false)) as TokenState).etaMs!);
    }
    expect(told[0]).toBe(told[1]);
  });

  it('never tells a place a wait beyond the expiry of the ACTIVE token it waits for', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 2, activeTtlSeconds: 5 });
    for (let u = 1; u <= 5; u++) await store.enter(c, u, tid(u), T0, d);
    // Nobody has left yet: the holders may keep their slots to the TTL; place 1 waits for the first expiry, place 2 for the second.
    expect((await status(c, tid(3), T0 + 4_000, d)).etaMs).toBeLessThanOrEqual(1_000);
    expect((await status(c, tid(4), T0 + 4_000, d)).etaMs).toBeLessThanOrEqual(1_000);
    expect((await status(c, tid(5), T0 + 4_000, d)).etaMs).toBeGreaterThan(1_000);
  });

  /**
   * A wave of ten fans hours ago (one left at 3 s, the rest at 35–75 s), then a new wave: 60 fans,
   * the first ten admitted and noticing at once. 20 s on, nobody of the new wave has left, and what
   * the line learnt hours ago has decayed to nothing (e^-180): the ETA is a fresh line's. Found by a
   * review of coldThink: the youngest departure and the oldest age were read from any bucket above
   * 0, and the decayed wave set them for 12 hours, so place 40 was told 1,304 s instead of 173 s.
   */
  it('reads a new wave hours after the last one as a fresh line', async () => {
    const d = settings({ maxActive: 10, activeTtlSeconds: 600, idleTimeoutSeconds: 86_400 });
    const wave = async (c: number, first: number, at: number) => {
      for (let i = 0; i < 60; i++) await store.enter(c, first + i, tid(first + i), at, d);
      for (let i = 0; i < 10; i++) await status(c, tid(first + i), at, d);
      return [(await status(c, tid(first + 10), at + 20_000, d)).etaMs, (await status(c, tid(first + 49), at + 20_000, d)).etaMs];
    };
    const fresh = await wave(nextConcert(), 5_000, T0);
    const c = nextConcert();
    for (let u = 6_000; u < 6_010; u++) await store.enter(c, u, tid(u), T0, d);
    for (let u = 6_000; u < 6_010; u++) await status(c, tid(u), T0, d);
    await store.leave(c, tid(6_000), T0 + 3_000, d);
    for (let i = 1; i < 10; i++) await store.leave(c, tid(6_000 + i), T0 + 30_000 + i * 5_000, d);
    const later = await wave(c, 7_000, T0 + 3 * 3_600_000);
    expect(later[0]).toBeCloseTo(fresh[0]!, -2);
    expect(Math.abs(later[1]! - fresh[1]!) / fresh[1]!).toBeLessThan(0.01);
  });

  /**
   * A line of 10 slots (TTL 60 s), one fan arriving every `everyMs` until `loweredMs`; then 20
   * more, and the operator sets maxActive 4. Each fan polls when told; an admitted one notices at
   * that poll and leaves `think` ms later (Infinity: lets the slot lapse). Returns, per place
   * waiting at the lowering, (told − real) ÷ real of the ETA it was told then, real being the
   * wait from the lowering to its admission.
   */
  const loweredWhileFull = async (o: { everyMs: number; loweredMs: number; think: () => number }) => {
    const c = nextConcert();
    const d = settings({ maxActive: 10, activeTtlSeconds: 60, idleTimeoutSeconds: 3600 });
    const lowered = T0 + o.loweredMs;
    const fans: Array<{ u: number; next: number; admitted: number | null; leaveAt: number }> = [];
    const arrive = async (now: number) => {
      const u = fans.length + 1;
      const r = await store.enter(c, u, tid(u), now, d);
      const active = r.status === 'ACTIVE';
      fans.push({ u, next: now + r.pollAfterMs, admitted: active ? now : null, leaveAt: active ? now + o.think() : Infinity });
    };
    const told = new Map<number, number>();
    for (let now = T0; now < T0 + 900_000; now += 100) {
      if (now < lowered && (now - T0) % o.everyMs === 0) await arrive(now);
      if (now === lowered) {
        for (let i = 0; i < 20; i++) await arrive(now);
        expect((await store.configure(c, { maxActive: 4 }, now, d)).active).toBe(10);
        for (const f of fans.filter((x) => x.admitted === null)) {
          const r = await status(c, tid(f.u), now, d);
          told.set(f.u, r.etaMs!);
          f.next = now + r.pollAfterMs;
        }
      }
      if ((now - T0) % 500 === 0) await store.tick(now, d);
      for (const f of fans) {
        if (now >= f.leaveAt) {
          await store.leave(c, tid(f.u), now, d);
          f.leaveAt = Infinity;
        }
        if (f.admitted !== null || f.next > now) continue;
        const r = await status(c, tid(f.u), now, d);
        if (r.status === 'ACTIVE') {
          f.admitted = r.activeUntil! - 60_000;
          f.leaveAt = now + o.think();
        } else f.next = now + r.pollAfterMs;
      }
      if (now > lowered && fans.every((f) => f.admitted !== null)) break;
    }
    expect(told.size).toBeGreaterThan(25);
    expect(fans.every((f) => f.admitted !== null)).toBe(true);
    return [...told].map(([u, etaMs]) => {
      const real = fans[u - 1]!.admitted! - lowered;
      return (etaMs - real) / real;
    });
  };
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

  it('after the operator lowers maxActive below the ACTIVE count, tells waiting places the departures that admit nobody', async () => {
    // Fans who leave 10–30 s after noticing, one every 1.5 s for a minute. The first 6 of the 10
    // departures after the lowering admit nobody, and only 4 slots refill. Before etaCurve counted
    // those 6 (issue 12), every place was told 58–89% too short (median −61%); counting them but
    // refilling all 10 slots, places 5 on were told 38–52% too short (median −45%).
    let seed = 7;
    const think = () => 10_000 + ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 20_000;
    const errors = await loweredWhileFull({ everyMs: 1_500, loweredMs: 60_000, think });
    const said = `errors by place (%): ${errors.map((e) => Math.round(e * 100)).join(' ')}`;
    // Seen: median +7% (|error| 7%), from −10% to +50%.
    expect(Math.abs(median(errors)), said).toBeLessThan(0.15);
    expect(median(errors.map(Math.abs)), said).toBeLessThan(0.15);
    expect(Math.min(...errors), said).toBeGreaterThan(-0.3);
  });

  // 32 s on a slow machine's Redis, over 60 s with the type-check running beside it (a CI run).
  it('after the operator lowers maxActive below the ACTIVE count, bounds a place by the activeUntil of the (place + over)-th ACTIVE token', { timeout: 240_000 }, async () => {
    // Fans who let their slots lapse, one every 3 s for two minutes: place p is admitted when the
    // (p + 6)-th slot lapses, not the p-th. Bounded by the p-th activeUntil (issue 12), places 1–10
    // were told 58–87% too short; with nothing of the fix, every place 28–87% too short (median −56%).
    const errors = await loweredWhileFull({ everyMs: 3_000, loweredMs: 120_200, think: () => Infinity });
    const said = `errors by place (%): ${errors.map((e) => Math.round(e * 100)).join(' ')}`;
    // Seen: median +2%, from −6% to +16%.
    expect(Math.abs(median(errors)), said).toBeLessThan(0.15);
    expect(Math.min(...errors), said).toBeGreaterThan(-0.3);
  });

  // The Redis store wrote "no opening" as 0, the epoch itself: an opening at 1970-01-01T00:00:00Z
  // (a date the API takes) read back as null there and as the date here (a hostile review).
  it('keeps an opening at the epoch as that date, and null as none', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1 });
    const epoch = await store.configure(c, { opensAt: 0 }, T0, d);
    expect([epoch.state, epoch.opensAt]).toEqual(['OPEN', 0]);
    const ticket = await store.enter(c, 1, tid(1), T0, d);
    expect([ticket.status, ticket.opensAt]).toEqual(['ACTIVE', 0]);
    expect((await store.stats(c, T0, d)).opensAt).toBe(0);
    expect((await store.configure(c, { opensAt: null }, T0, d)).opensAt).toBeNull();
    expect((await status(c, tid(1), T0 + 1, d)).opensAt).toBeNull();
    // Unconfigured, the defaults' null is none as well.
    expect((await store.stats(nextConcert(), T0, d)).opensAt).toBeNull();
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

  it('an enter that asks for it admits nobody to a line whose seats were never read, and says they were not', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 2 });
    const blocked = await store.enter(c, 1, tid(1), T0, d, { unreadSeatsBlock: true });
    expect([blocked.status, blocked.position, blocked.etaMs, blocked.seatsRead]).toEqual(['WAITING', 1, null, false]);
    // Every other settle waits for the read too: a tick's, a poll's, an enter that did not ask
    // (a tick admitted on no counts while the enter's own read was in flight: a review).
    expect(await store.tick(T0 + 1, d)).toContain(c);
    expect((await status(c, tid(1), T0 + 1, d)).status).toBe('WAITING');
    expect((await store.enter(c, 3, tid(3), T0 + 1, d)).status).toBe('WAITING');
    // Read, the same place is admitted as the counts allow.
    await store.setInventory(c, { available: 5, held: 0, nextLapse: null }, T0 + 1, d);
    const again = await store.enter(c, 1, tid(99), T0 + 2, d, { unreadSeatsBlock: true });
    expect([again.status, again.tokenId, again.created, again.seatsRead]).toEqual(['ACTIVE', tid(1), false, true]);
    // Without asking, an inventory never read never blocks (as every settle: the ticker reads it).
    const open = await store.enter(nextConcert(), 2, tid(2), T0, d);
    expect([open.status, open.seatsRead]).toEqual(['ACTIVE', false]);
  });

  it('admits nobody at a hold’s lapse while a committed change is marked and not read yet: the lapsing hold may just have been paid', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, activeTtlSeconds: 60, idleTimeoutSeconds: 10 });
    await store.enter(c, 1, tid(1), T0, d);
    expect(await store.tick(T0, d)).toContain(c);
    await store.setInventory(c, { available: 0, held: 1, nextLapse: T0 + 5_000 }, T0 + 1, d);
    await store.leave(c, tid(1), T0 + 2, d);
    await store.enter(c, 2, tid(2), T0 + 2, d);
    // The last held seat is paid 30 ms before its hold would lapse: the writer marks the change
    // after its commit, and its read of the seats (nothing AVAILABLE or HELD) comes later.
    const change = await store.seatsChanged(c);
    await store.tick(T0 + 5_000, d);
    expect(await check(c, tid(2), T0 + 5_000)).not.toBe('ACTIVE');
    expect((await store.stats(c, T0 + 5_001, d)).state).toBe('ALL_HELD');
    // The writer's read records the sell-out: the line is SOLD_OUT, and nobody was let in.
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null }, T0 + 5_020, d, change);
    const sold = await store.stats(c, T0 + 5_021, d);
    expect([sold.state, sold.active]).toEqual(['SOLD_OUT', 0]);
    expect((await status(c, tid(2), T0 + 5_022, d)).status).toBe('SOLD_OUT');
  });

  it('a hold’s lapse with no change pending admits at once, as before', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, activeTtlSeconds: 60, idleTimeoutSeconds: 10 });
    await store.enter(c, 1, tid(1), T0, d);
    expect(await store.tick(T0, d)).toContain(c);
    const change = await store.seatsChanged(c);
    await store.setInventory(c, { available: 0, held: 1, nextLapse: T0 + 5_000 }, T0 + 1, d, change);
    await store.leave(c, tid(1), T0 + 2, d);
    await store.enter(c, 2, tid(2), T0 + 2, d);
    await store.tick(T0 + 5_000, d);
    expect(await check(c, tid(2), T0 + 5_000)).toBe('ACTIVE');
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
    // The stats count no one waiting: every ticket in line reads SOLD_OUT (an outside review saw
    // SOLD_OUT beside "waiting 1" while that one fan's ticket read SOLD_OUT).
    const soldOut = await store.stats(c, read + 300, d);
    expect([soldOut.state, soldOut.waiting, soldOut.preQueued]).toEqual(['SOLD_OUT', 0, 0]);
    const s3 = await status(c, tid(3), read + 300, d);
    expect([s3.status, s3.position, s3.etaMs, s3.pollAfterMs]).toEqual(['SOLD_OUT', null, null, 60_000]);
    const late = await store.enter(c, 4, tid(4), read + 400, d);
    expect(late.status).toBe('SOLD_OUT');
    await store.tick(read + 60_000, d);
    expect((await store.stats(c, read + 60_000, d)).droppedIdleTotal).toBe(0);
    // Seats come back: the line reopens in its order, and whoever stopped polling has the SOLD_OUT
    // ticket's poll interval and then an idle timeout to return.
    await store.leave(c, tid(2), read + 60_000, d);
    await store.setInventory(c, { available: 3, held: 0, nextLapse: null }, read + 60_000, d);
    expect(await check(c, tid(3), read + 60_000)).toBe('ACTIVE');
    expect((await status(c, tid(4), read + 60_000, d)).position).toBe(1);
    const reopened = await store.stats(c, read + 65_000, d);
    expect([reopened.state, reopened.waiting, reopened.droppedIdleTotal]).toEqual(['OPEN', 1, 0]);
    await store.tick(read + 75_001, d);
    expect((await store.stats(c, read + 75_001, d)).droppedIdleTotal).toBe(0);
    await store.tick(read + 60_000 + SOLD_OUT_POLL_MS + 10_001, d);
    expect((await store.stats(c, read + 60_000 + SOLD_OUT_POLL_MS + 10_001, d)).droppedIdleTotal).toBe(1);
  });

  // Found from outside: with slots alone, a refund of one seat in a line of free slots admitted
  // that many fans, and whoever of them came back first took the seat, not the head of the line.
  it('asked to admit by seats, admits a fan only while a seat is left for it: a seat back admits the head alone, and a departure waits for the next read', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 4, activeTtlSeconds: 600, idleTimeoutSeconds: 600 });
    expect((await store.configure(c, { admitBySeats: true }, T0, d)).admitBySeats).toBe(true);
    const inv = (seats: number | null, holders: number[]) => ({ available: seats === 0 ? 0 : 1, held: seats === 0 ? 1 : 0, nextLapse: seats === 0 ? T0 + 300_000 : null, seats, holders });
    await store.setInventory(c, inv(1, []), T0, d);
    for (let u = 1; u <= 6; u++) await store.enter(c, u, tid(u), T0 + u, d);
    const states = async (now: number) => Promise.all([1, 2, 3, 4, 5, 6].map((u) => check(c, tid(u), now)));
    // One seat: the head alone, though three slots are free.
    expect(await states(T0 + 10)).toEqual(['ACTIVE', 'WAITING', 'WAITING', 'WAITING', 'WAITING', 'WAITING']);
    expect((await store.stats(c, T0 + 10, d)).state).toBe('OPEN');
    // It holds the seat: nothing AVAILABLE, and its hold is counted, so nobody new either.
    await store.setInventory(c, inv(0, [1]), T0 + 20, d);
    expect(await states(T0 + 20)).toEqual(['ACTIVE', 'WAITING', 'WAITING', 'WAITING', 'WAITING', 'WAITING']);
    // A refund brings two seats back; fan 1 still holds its own: room for two, fans 2 and 3.
    await store.setInventory(c, inv(2, [1]), T0 + 30, d);
    expect(await states(T0 + 30)).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE', 'WAITING', 'WAITING', 'WAITING']);
    // Fan 2 leaves without holding: its seat is free again, but only the next read says so.
    await store.leave(c, tid(2), T0 + 40, d);
    expect(await states(T0 + 40)).toEqual(['ACTIVE', 'EXPIRED', 'ACTIVE', 'WAITING', 'WAITING', 'WAITING']);
    await store.setInventory(c, inv(2, [1]), T0 + 50, d);
    expect(await states(T0 + 50)).toEqual(['ACTIVE', 'EXPIRED', 'ACTIVE', 'ACTIVE', 'WAITING', 'WAITING']);
    // Fans 3 and 4 both hold now: two seats left, three ACTIVE, all holding: room for two, but one slot.
    await store.setInventory(c, inv(2, [1, 3, 4]), T0 + 60, d);
    expect(await states(T0 + 60)).toEqual(['ACTIVE', 'EXPIRED', 'ACTIVE', 'ACTIVE', 'ACTIVE', 'WAITING']);
    // Seats past the count's cap (null) do not limit admission: the slots do.
    await store.leave(c, tid(1), T0 + 70, d);
    await store.setInventory(c, inv(null, []), T0 + 70, d);
    expect(await states(T0 + 70)).toEqual(['EXPIRED', 'EXPIRED', 'ACTIVE', 'ACTIVE', 'ACTIVE', 'ACTIVE']);
    // Reads without a count (a process that does not know yet) admit nobody until one counts.
    const c2 = nextConcert();
    await store.configure(c2, { admitBySeats: true }, T0, d);
    await store.setInventory(c2, { available: 1, held: 0, nextLapse: null }, T0, d);
    for (let u = 1; u <= 5; u++) await store.enter(c2, u, tid(u), T0 + u, d);
    expect((await store.stats(c2, T0 + 10, d)).active).toBe(0);
    // A read that did not count (a process that does not know yet) leaves the room counted before.
    const c4 = nextConcert();
    await store.configure(c4, { admitBySeats: true }, T0, d);
    await store.setInventory(c4, inv(1, []), T0, d);
    for (let u = 1; u <= 3; u++) await store.enter(c4, u, tid(u), T0 + u, d);
    await store.setInventory(c4, { available: 1, held: 0, nextLapse: null }, T0 + 10, d);
    await store.tick(T0 + 20, d);
    expect((await store.stats(c4, T0 + 20, d)).active).toBe(1);
    // A user who holds seats but whose ticket is not ACTIVE (its turn ended, it left) leaves no
    // seat for the line: one seat, fan 1 ACTIVE without a hold, user 99 holding: nobody more.
    const c5 = nextConcert();
    await store.configure(c5, { admitBySeats: true }, T0, d);
    await store.setInventory(c5, inv(2, []), T0, d);
    await store.enter(c5, 1, tid(1), T0 + 1, d);
    await store.setInventory(c5, inv(1, [99]), T0 + 2, d);
    await store.enter(c5, 2, tid(2), T0 + 3, d);
    expect(await check(c5, tid(2), T0 + 3)).toBe('WAITING');
    // Not asked (the default): the slots alone, whatever the seats.
    const c3 = nextConcert();
    expect((await store.stats(c3, T0, d)).admitBySeats).toBe(false);
    await store.setInventory(c3, inv(1, []), T0, d);
    for (let u = 1; u <= 5; u++) await store.enter(c3, u, tid(u), T0 + u, d);
    expect((await store.stats(c3, T0 + 10, d)).active).toBe(4);
    // Turned on mid-sale: four ACTIVE for one seat, so a freed slot admits nobody; turned off, the slots take over at once.
    await store.configure(c3, { admitBySeats: true }, T0 + 20, d);
    await store.setInventory(c3, inv(1, []), T0 + 20, d);
    await store.leave(c3, tid(1), T0 + 30, d);
    expect(await check(c3, tid(5), T0 + 30)).toBe('WAITING');
    await store.configure(c3, { admitBySeats: false }, T0 + 40, d);
    expect(await check(c3, tid(5), T0 + 40)).toBe('ACTIVE');
  });

  // Found by a review of the change: a room counted while the line admitted by slots stood when an
  // operator turned admission by seats on, and 10 fans were let in for 2 seats.
  it('turned to admitting by seats, admits nobody until a read counts the seats', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 10, activeTtlSeconds: 600, idleTimeoutSeconds: 600 });
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null, seats: 20, holders: [] }, T0, d);
    await store.configure(c, { paused: true }, T0 + 1, d);
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null }, T0 + 2, d);
    for (let u = 1; u <= 10; u++) await store.enter(c, u, tid(u), T0 + 10 + u, d);
    expect((await store.configure(c, { paused: false, admitBySeats: true }, T0 + 100, d)).active).toBe(0);
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null, seats: 2, holders: [] }, T0 + 200, d);
    expect((await store.stats(c, T0 + 200, d)).active).toBe(2);
  });

  // Found by the same review: a read that did not count, recorded first with a newer change number,
  // made the counted read look stale, and the room it counted was thrown away.
  it('orders the reads that count the seats among themselves', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 10, activeTtlSeconds: 600, idleTimeoutSeconds: 600 });
    await store.configure(c, { admitBySeats: true }, T0 + 1, d);
    const counted = await store.seatsChanged(c);
    const uncounted = await store.seatsChanged(c);
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null }, T0 + 5, d, uncounted);
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null, seats: 1, holders: [] }, T0 + 6, d, counted);
    for (let u = 1; u <= 10; u++) await store.enter(c, u, tid(u), T0 + 10 + u, d);
    expect((await store.stats(c, T0 + 30, d)).active).toBe(1);
    // An older counted read is still older than that one.
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null, seats: 5, holders: [] }, T0 + 40, d, counted - 1);
    expect((await store.stats(c, T0 + 40, d)).active).toBe(1);
  });

  // Found from outside: a refund reopened a sold-out line and admitted its head at once, while
  // those fans were told to look again in a minute; with a 10 s turn, every one of them came back
  // to EXPIRED, and the seats went to fans far behind them.
  it('gives a fan told SOLD_OUT a whole turn from when it was told to look again, if the line reopens meanwhile', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 1, activeTtlSeconds: 10, idleTimeoutSeconds: 10 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.tick(T0, d);
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null }, T0 + 1, d);
    const sold = await store.enter(c, 2, tid(2), T0 + 10, d);
    expect([sold.status, sold.pollAfterMs]).toEqual(['SOLD_OUT', SOLD_OUT_POLL_MS]);
    // A refund a second later: the seat's slot goes to fan 2 at once, while it is away.
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null }, T0 + 1_010, d);
    await store.leave(c, tid(1), T0 + 1_010, d);
    const back = T0 + 10 + SOLD_OUT_POLL_MS;
    expect(await check(c, tid(2), T0 + 1_010)).toBe('ACTIVE');
    for (let t = T0 + 2_010; t <= back; t += 1_000) await store.tick(t, d);
    const turn = await status(c, tid(2), back, d);
    expect([turn.status, turn.activeUntil]).toEqual(['ACTIVE', back + 10_000]);
    // A fan who was polling (told WAITING) gets its turn from the admission, as before.
    await store.enter(c, 3, tid(3), back + 1, d);
    await store.leave(c, tid(2), back + 2, d);
    expect((await status(c, tid(3), back + 2, d)).activeUntil).toBe(back + 2 + 10_000);
  });

  it('keeps the place of a fan who obeyed a SOLD_OUT ticket when the line reopens, whatever the idle timeout', async () => {
    // Found from outside: a SOLD_OUT ticket says come back in a minute, and the reopening's grace
    // was the idle timeout alone (20 s here), so the fan who obeyed it found its place gone.
    const c = nextConcert();
    const d = settings({ maxActive: 1, activeTtlSeconds: 600, idleTimeoutSeconds: 20 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.tick(T0, d);
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null }, T0 + 1, d);
    await store.enter(c, 2, tid(2), T0 + 10, d);
    const sold = await store.enter(c, 3, tid(3), T0 + 20, d);
    expect([sold.status, sold.pollAfterMs]).toEqual(['SOLD_OUT', SOLD_OUT_POLL_MS]);
    // A refund reopens the line a second later; fan 2 takes the seat's slot.
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null }, T0 + 1_020, d);
    await store.leave(c, tid(1), T0 + 1_020, d);
    // Fan 3 polls again when it was told to, the ticker running all along.
    const back = T0 + 20 + sold.pollAfterMs;
    for (let t = T0 + 1_020; t <= back; t += 1_000) await store.tick(t, d);
    expect(await check(c, tid(2), back)).toBe('ACTIVE');
    const again = await status(c, tid(3), back, d);
    expect([again.status, again.position]).toEqual(['WAITING', 1]);
    expect((await store.stats(c, back, d)).droppedIdleTotal).toBe(0);
  });

  it('keeps the place of a fan who obeyed its pollAfterMs when the operator lowers the idle timeout', async () => {
    // Found from outside: places 202-300 of a line with the default 60 s timeout, told to come
    // back in 10-15 s, were dropped when the operator set 10 s, though each came back when told.
    const c = nextConcert();
    const d = settings({ maxActive: 1, idleTimeoutSeconds: 60, opensAt: T0 + 3_600_000 });
    const pre = await store.enter(c, 1, tid(1), T0, d);
    await store.enter(c, 2, tid(2), T0, d);
    expect(pre.status).toBe('PRE_QUEUE');
    expect(pre.pollAfterMs).toBeGreaterThan(3_000);
    await store.configure(c, { idleTimeoutSeconds: 3 }, T0 + 10, d);
    const back = T0 + pre.pollAfterMs;
    for (let t = T0 + 1_000; t <= back; t += 1_000) await store.tick(t, d);
    expect((await status(c, tid(1), back, d)).status).toBe('PRE_QUEUE');
    expect((await store.stats(c, back, d)).droppedIdleTotal).toBe(0);
    // The new timeout holds once the old tickets are all back: fan 1 polls as told, fan 2 never did.
    const late = T0 + 10 + 20_000 + 3_000;
    for (let t = back + 1_000; t <= late; t += 1_000) {
      await store.tick(t, d);
      expect((await status(c, tid(1), t, d)).status).toBe('PRE_QUEUE');
    }
    expect((await status(c, tid(2), late, d)).status).toBe('EXPIRED');
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

  it('admits nobody on counts read before a show started, and says they are not read', async () => {
    const c = nextConcert();
    const d = settings({ maxActive: 2 });
    await store.enter(c, 1, tid(1), T0, d);
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null, nextStart: T0 + 1_000 }, T0, d);
    expect(await check(c, tid(1), T0)).toBe('ACTIVE');
    expect((await store.stats(c, T0 + 999, d)).seatsRead).toBe(true);
    // The show started: the counts say nothing of what is left, until read again.
    const late = await store.enter(c, 2, tid(2), T0 + 1_000, d);
    expect([late.status, late.seatsRead]).toEqual(['WAITING', false]);
    const stats = await store.stats(c, T0 + 1_000, d);
    expect([stats.state, stats.active, stats.seatsRead]).toEqual(['ALL_HELD', 1, false]);
    expect(await store.tick(T0 + 1_100, d)).toContain(c);
    await store.setInventory(c, { available: 0, held: 0, nextLapse: null, nextStart: null }, T0 + 1_100, d);
    expect((await status(c, tid(2), T0 + 1_100, d)).status).toBe('SOLD_OUT');
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
  const { redis, prefix } = ownRedis();
  const store = new RedisQueueStore(redis);

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

  // Found from outside: with the line's counts gone (its inventory key), a line admitting by seats
  // read the missing room as no limit, and a leave let every waiting fan in (6 ACTIVE for 3 seats).
  it('a line admitting by seats whose counts were lost admits nobody until a read counts them again', async () => {
    const c = 2;
    const d = settings({ maxActive: 100, idleTimeoutSeconds: 3600, activeTtlSeconds: 3600 });
    await store.configure(c, { admitBySeats: true }, T0, d);
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null, seats: 3, holders: [] }, T0, d);
    for (let u = 1; u <= 7; u++) await store.enter(c, u, tid(u), T0 + u, d);
    expect((await store.stats(c, T0 + 10, d)).active).toBe(3);
    await redis.del(queueKeys(c).inventory);
    await store.leave(c, tid(1), T0 + 20, d);
    expect((await store.stats(c, T0 + 20, d)).active).toBe(2);
    // The ticker's read counts them again: one seat for one more fan (3 seats, 2 ACTIVE without one).
    expect(await store.tick(T0 + 30, d)).toEqual([c]);
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null, seats: 3, holders: [] }, T0 + 30, d);
    expect((await store.stats(c, T0 + 30, d)).active).toBe(3);
    // Seats past the cap, read as plenty: the slots alone.
    await store.setInventory(c, { available: 1, held: 0, nextLapse: null, seats: null, holders: [] }, T0 + 40, d);
    expect((await store.stats(c, T0 + 40, d)).active).toBe(6);
  });
});

/** During a rolling deploy a process of the version before `over` redraws a line's curve and leaves the newer one's `curveOver` in the hash. */
describe('queue store on Redis: a curve drawn by a process that does not know over', () => {
  const { redis } = ownRedis();
  const store = new RedisQueueStore(redis);

  it('is not read with the over of the curve before it', async () => {
    const c = 1;
    const d = settings({ maxActive: 10, activeTtlSeconds: 60, idleTimeoutSeconds: 3600 });
    for (let u = 1; u <= 12; u++) await store.enter(c, u, tid(u), T0, d);
    await store.configure(c, { maxActive: 4 }, T0 + 1_000, d);
    const told = async (now: number) => ((await store.status(c, tid(11), now, d, false)) as TokenState).etaMs!;
    // Drawn with over = 6: place 1 waits for the 7th departure.
    const withOver = await told(T0 + 1_000);
    const { counters } = queueKeys(c);
    expect(await redis.hget(counters, 'curveOver')).toBe('6');
    // The older version's redraw: its own curveAt and numbers, no curveOver of its own (the same
    // numbers here, so only the over read with them can differ).
    await redis.hset(counters, 'curveAt', String(T0 + 1_001));
    const afterOldDraw = await told(T0 + 1_001);
    // Read with over 6 it told the 7th departure's time, with 0 the first's.
    expect(afterOldDraw).toBeLessThan(withOver / 2);
  });
});

async function check(store: QueueStore, c: number, t: string, now: number) {
  return (await store.check(c, t, now)).state;
}

/** The ETA's arithmetic is written twice (TypeScript and Lua): the same calls must get the same answers, to the millisecond. */
describe('queue store: the memory and Redis adapters tell the same ETA', () => {
  const own = ownRedis();
  const stores = [new MemoryQueueStore(), new RedisQueueStore(own.redis, { priorReadMs: 0 })];
  const offRedis = ownRedis();
  const aheadRedis = ownRedis();
  const unreadRedis = ownRedis();
  // A store that has never read the prior: it has no last read to fall back on.
  const unread = new RedisQueueStore(unreadRedis.redis);
  const ahead = new RedisQueueStore(aheadRedis.redis);
  const off = [new MemoryQueueStore({ etaPrior: false }), new RedisQueueStore(offRedis.redis, { etaPrior: false, priorReadMs: 0 })];

  // At 5 s the prior's think time is a quarter of the TTL throughout; at 600 s it grows with the
  // oldest age watched from its 10 s floor (coldThink), and nobody lapses; at 86,400 s (the
  // longest the API takes) the pseudo-holders weigh nothing past about 12 h of age (e^-745 is 0),
  // where the memory store's hazard was 0 ÷ 0 and its ETAs NaN while Redis's Lua read them as 1
  // (found in review, 2026-12-06).
  it.each([5, 600, 86_400])('through 600 random enters, polls, leaves, lapses, ticks and changes of maxActive on the test clock, TTL %i s', async (ttl) => {
    // A seeded generator, so a failure replays.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const c = ttl;
    const d = settings({ maxActive: 4, activeTtlSeconds: ttl, idleTimeoutSeconds: 60 });
    let now = T0;
    let users = 0;
    const live: string[] = [];
    const told: Array<Array<number | string | null>> = [[], []];
    // Steps where the operator's maxActive left the line over capacity with fans waiting.
    let over = 0;
    for (let step = 0; step < 600; step++) {
      now += Math.floor(rand() * 300);
      const r = rand();
      // The operator lowers or raises maxActive (1–6; the line starts at 4).
      const maxActive = r >= 0.35 && r < 0.39 ? 1 + Math.floor(rand() * 6) : 0;
      const answers = await Promise.all(
        stores.map(async (store, i) => {
          if (r < 0.2 || live.length === 0) {
            const e = await store.enter(c, users + 1, tid(users + 1), now, d);
            return [e.status, e.position, e.etaMs, e.pollAfterMs];
          }
          const t = live[Math.floor(r * 1000) % live.length]!;
          if (r < 0.3) return [await store.leave(c, t, now, d)];
          if (r < 0.35) return [(await store.tick(now, d)).length, store.lastTick()?.get(c)?.etaBackMs ?? null];
          if (maxActive > 0) {
            const s = await store.configure(c, { maxActive }, now, d);
            return [s.maxActive, s.active, s.waiting, s.admittedTotal, s.etaBackMs];
          }
          const s = await status(store, c, t, now, d);
          void i;
          return [s.status, s.position, s.etaMs, s.pollAfterMs];
        }),
      );
      if (r < 0.2 || live.length === 0) live.push(tid(++users));
      else if (maxActive > 0 && Number(answers[0]![1]) > maxActive && Number(answers[0]![2]) > 0) over++;
      told[0]!.push(...answers[0]!.map((x) => (typeof x === 'boolean' ? String(x) : x)));
      told[1]!.push(...answers[1]!.map((x) => (typeof x === 'boolean' ? String(x) : x)));
      expect(answers[1], `step ${step}`).toEqual(answers[0]);
    }
    // Not a line that never admits: ETAs were told, and they moved.
    const etas = told[0]!.filter((x): x is number => typeof x === 'number' && x > 1_000);
    expect(new Set(etas).size).toBeGreaterThan(20);
    expect(over).toBeGreaterThan(3);
  });

  async function status(store: QueueStore, c: number, t: string, now: number, d: QueueSettings): Promise<TokenState> {
    const r = await store.status(c, t, now, d, false);
    if ('rateLimited' in r) throw new Error('unexpected rate limit');
    return r;
  }

  /**
   * A sale on each store at once, the same calls on the test clock: 40 fans in line, 4 slots, a
   * 60 s TTL; each fan polls when told, and once admitted leaves after 2–7 s (`buyers`: another
   * TTL, leaving after `leaveMs` to `leaveMs` + `spreadMs`, other slots and fans). Every answer of
   * the second store must equal the first's. Returns the ETAs told (ms).
   */
  async function sale(
    on: QueueStore[],
    cs: number | number[],
    t0: number,
    buyers: { ttlSeconds: number; leaveMs: number; spreadMs: number; slots?: number; fans?: number } = { ttlSeconds: 60, leaveMs: 2_000, spreadMs: 5_000 },
  ): Promise<number[]> {
    const d = settings({ maxActive: buyers.slots ?? 4, activeTtlSeconds: buyers.ttlSeconds, idleTimeoutSeconds: 60 });
    const fans = [cs].flat().flatMap((c) => Array.from({ length: buyers.fans ?? 40 }, (_, i) => ({ c, u: c * 1000 + i, next: t0, leaveAt: Infinity, admitted: false })));
    const told: number[] = [];
    for (const f of fans) {
      const r = await Promise.all(on.map((store) => store.enter(f.c, f.u, tid(f.u), t0, d)));
      if (r[1]) expect(r[1].position).toBe(r[0]!.position);
    }
    for (let now = t0; now < t0 + 1_200_000 && !fans.every((f) => f.admitted && f.leaveAt === Infinity); now += 50) {
      if (now % 250 === 0) {
        const ticked = await Promise.all(on.map(async (store) => (await store.tick(now, d), [cs].flat().map((c) => store.lastTick()?.get(c)?.etaBackMs ?? null))));
        if (ticked.length > 1) expect(ticked[1], `tick at ${now - t0} ms`).toEqual(ticked[0]);
      }
      for (const f of fans) {
        if (now >= f.leaveAt) {
          await Promise.all(on.map((store) => store.leave(f.c, tid(f.u), now, d)));
          f.leaveAt = Infinity;
        }
        if (f.admitted || f.next > now) continue;
        const r = await Promise.all(on.map((store) => status(store, f.c, tid(f.u), now, d)));
        const [a, b] = r.map((x) => [x.status, x.position, x.etaMs, x.pollAfterMs]);
        if (b) expect(b, `fan ${f.u} at ${now - t0} ms`).toEqual(a);
        if (r[0]!.status === 'ACTIVE') {
          f.admitted = true;
          f.leaveAt = now + buyers.leaveMs + ((f.u * 7919) % buyers.spreadMs);
        } else {
          if (r[0]!.etaMs !== null) told.push(r[0]!.etaMs);
          f.next = now + r[0]!.pollAfterMs;
        }
      }
    }
    expect(fans.every((f) => f.admitted)).toBe(true);
    return told;
  }


  it('carry what a sale taught into the next sale of the deployment alike (the think-time prior)', { timeout: 120_000 }, async () => {
    await sale(stores, 101, T0);
    // The sale offered its life table: Redis holds the deployment's prior for the 60 s TTL.
    expect(await own.redis.hget(ETA_PRIOR_KEY, '60000')).toMatch(/^1 /);
    const next = await sale(stores, 102, T0 + 3_600_000);
    // The same sale on a deployment that never had one tells other ETAs: the prior was used.
    const fresh = await sale([new MemoryQueueStore()], 102, T0 + 3_600_000);
    expect(next.length).toBeGreaterThan(20);
    expect(next).not.toEqual(fresh);
  });

  // A line of slow buyers weighs little in its life table (departures weigh by how recently their
  // holders noticed): 10 slots of 30–60 s buyers about 6, under the 10 a line had to weigh before
  // it offered anything until 2026-12-06. Counted by when they left (priorRecent), it remembers
  // about 13. Both adapters now offer it alike.
  it('carry what a sale of slow buyers taught into the next alike', { timeout: 180_000 }, async () => {
    const slow = { ttlSeconds: 300, leaveMs: 30_000, spreadMs: 30_000, slots: 10 };
    await sale(stores, 151, T0 + 10 * 3_600_000, slow);
    expect(await own.redis.hget(ETA_PRIOR_KEY, '300000')).toMatch(/^1 /);
    const next = await sale(stores, 152, T0 + 11 * 3_600_000, slow);
    const fresh = await sale([new MemoryQueueStore()], 152, T0 + 11 * 3_600_000, slow);
    expect(next.length).toBeGreaterThan(20);
    expect(next).not.toEqual(fresh);
  });

  // Found in review of a first version (at least 10 departures ever, a weight of 1): a line that has
  // seen 10 departures but remembers few (one a minute, or a quiet line reopened) offered a curve
  // drawn from its last two or three, which a deployment with no prior takes whole. One slot,
  // buyers of about a minute: 10 departures in 10 minutes, about 1.6 remembered. Neither adapter
  // offers.
  it('do not teach the prior from a line that remembers few departures, however many it has seen', { timeout: 180_000 }, async () => {
    await sale(stores, 161, T0 + 12 * 3_600_000, { ttlSeconds: 240, leaveMs: 55_000, spreadMs: 10_000, slots: 1, fans: 12 });
    expect(await own.redis.hget(ETA_PRIOR_KEY, '240000')).toBeNull();
  });

  // Found in review: the memory store blended its lines' offers in the order they joined its
  // ticker and the Redis store in SMEMBERS order, and whichever came first was kept: two sales of
  // one TTL at once told their fans other ETAs on each store (4,186 against 4,161 ms).
  it('blends the offers of two sales of one TTL at once alike (their mean, in concert order)', { timeout: 120_000 }, async () => {
    // Entered in descending concert order, so the memory store's ticker meets 602 first.
    await sale(stores, [602, 601], T0 + 20 * 3_600_000);
  });

  it('with QUEUE_ETA_PRIOR=off, keeps no prior: the next sale is told as on a deployment that never had one', { timeout: 120_000 }, async () => {
    // A prior already there (set while it was on) is neither taken nor moved.
    const there = `1 ${'0.5 '.repeat(47)}0.25`;
    await offRedis.redis.hset(ETA_PRIOR_KEY, '60000', there, '60000:at', String(T0));
    await sale(off, 301, T0);
    expect(await offRedis.redis.hget(ETA_PRIOR_KEY, '60000')).toBe(there);
    const next = await sale(off, 302, T0 + 3_600_000);
    // (A sale is told the same every time on a fresh store: the comparison is exact.)
    expect(next).toEqual(await sale([new MemoryQueueStore({ etaPrior: false })], 302, T0 + 3_600_000));
    // With the prior on, a line learns from its own first departures too (its offers come back as the prior).
    expect(next).not.toEqual(await sale([new MemoryQueueStore()], 302, T0 + 3_600_000));
  });

  it('ignores a prior that is not a survival curve (edited by hand, cut short), and the next offer replaces it', { timeout: 120_000 }, async () => {
    // Found from outside: Lua's tonumber reads 'nan' as NaN, which passed every comparison.
    const bads = ['not a curve', '1 0.5', `1 ${'0.9 '.repeat(47)}1.5`, `1 ${'0.5 '.repeat(46)}0.6 0.4`, `1 ${'nan '.repeat(48)}`, `1 0.5 nan ${'0.4 '.repeat(46)}`];
    for (const [i, bad] of bads.entries()) {
      await own.redis.hset(ETA_PRIOR_KEY, '60000', bad, '60000:at', String(T0 + 7_200_000));
      // The Redis store, whatever its history, tells what a deployment with no prior tells.
      const c = 201 + i;
      await sale([new MemoryQueueStore(), stores[1]!], c, T0 + 7_200_000 + c * 3_600_000);
      const replaced = (await own.redis.hget(ETA_PRIOR_KEY, '60000'))!.split(' ');
      expect(replaced).toHaveLength(49);
      expect(replaced.every((x) => Number(x) >= 0 && Number(x) <= 1)).toBe(true);
    }
  });

  it('keeps settling every line, each with the prior it has, while the prior cannot be read', { timeout: 120_000 }, async () => {
    const learnt = `1 ${'0.5 '.repeat(47)}0.25`;
    // A key of another type: every read and blend of it fails, as with its Cluster node down.
    await unreadRedis.redis.set(ETA_PRIOR_KEY, 'not a hash');
    try {
      const d = settings({ maxActive: 1, activeTtlSeconds: 60, idleTimeoutSeconds: 3600 });
      await unread.enter(502, 1, tid(1), T0, d);
      await unread.enter(502, 2, tid(2), T0, d);
      await unreadRedis.redis.hset(queueKeys(502).counters, 'prior', learnt, 'priorTtl', 60_000);
      await unread.tick(T0 + 250, d);
      expect(await unreadRedis.redis.hget(queueKeys(502).counters, 'prior')).toBe(learnt);
      // The ticker still admits the next fan when the ACTIVE one's time is up.
      await unread.tick(T0 + 60_001, d);
      expect(await check(unread, 502, tid(2), T0 + 60_001)).toBe('ACTIVE');
    } finally {
      await unreadRedis.redis.del(ETA_PRIOR_KEY);
    }
  });

  // Found from outside: a blending time ahead of now (edited by hand) kept the prior from ever
  // moving again: every offer was within ETA_PRIOR_EVERY_MS "after" it.
  it('keeps learning when the prior’s blending time was set in the future', { timeout: 120_000 }, async () => {
    await sale([ahead], 401, T0);
    const before = (await aheadRedis.redis.hget(ETA_PRIOR_KEY, '60000'))!;
    await aheadRedis.redis.hset(ETA_PRIOR_KEY, '60000:at', '99999999999999');
    await sale([ahead], 402, T0 + 3_600_000);
    expect(await aheadRedis.redis.hget(ETA_PRIOR_KEY, '60000')).not.toBe(before);
    expect(Number(await aheadRedis.redis.hget(ETA_PRIOR_KEY, '60000:at'))).toBeLessThan(T0 + 2 * 3_600_000);
    // The memory store's blend alike.
    const prior = { s: before.split(' ').map(Number), at: 99_999_999_999_999 };
    expect(blendPrior(prior, [prior.s.map((v) => v / 2)], T0).at).toBe(T0);
  });
});

/** A Redis client on keys of its own (this suite shares the Redis): ready before the suite's tests, its keys removed after. */
function ownRedis() {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const redis = createRedis(REDIS_URL, { keyPrefix: prefix });
  beforeAll(async () => {
    await waitForRedis(redis, 5_000);
    if (redis.status !== 'ready') throw new Error(`Redis at ${REDIS_URL} is not reachable`);
  });
  afterAll(async () => {
    await deleteRedisKeys(REDIS_URL, prefix);
    redis.disconnect();
  });
  return { redis, prefix };
}

/**
 * The embedded store keeps each waiting token's place while the line keeps its order, and looks
 * for idle tokens only once one can be (see ranks and seenFloor in queue.store.memory.ts). Random
 * runs of enters, polls, leaves and ticks, the clock going forward and at times back, must give
 * every answer Redis gives (ZRANK, ZRANGEBYSCORE) at every step.
 */
describe('the embedded queue store against Redis, on random runs', () => {
  const { redis } = ownRedis();
  const onRedis = new RedisQueueStore(redis, { priorReadMs: 0 });

  const user = fc.integer({ min: 1, max: 12 });
  const op = fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('enter' as const), user }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('status' as const), user }), weight: 4 },
    { arbitrary: fc.record({ kind: fc.constant('leave' as const), user }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('tick' as const) }), weight: 1 },
  );
  // Mostly forward, in steps that let some tokens go idle and some holders lapse; at times back.
  const step = fc.record({ op, advanceMs: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3_000 }), weight: 4 }, { arbitrary: fc.integer({ min: -3_000, max: 0 }), weight: 1 }) });

  it('answers every enter, poll and leave with Redis’s status and place, and counts the same line', { timeout: 120_000 }, async () => {
    let concert = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 80 }), async (steps) => {
        const c = ++concert;
        const memory = new MemoryQueueStore();
        const d: QueueSettings = { maxActive: 2, activeTtlSeconds: 20, idleTimeoutSeconds: 15, paused: false, opensAt: null };
        const tokens = new Map<number, string>();
        // Every enter offers a token id never offered before, as the service's random ids are. A
        // count of the users seen gave a new user the id another one still held, once that one
        // had entered twice, and the two stores then differ on a case production cannot reach:
        // 2 of 4 runs of this suite on 2026-12-05 failed on it (seed -740868868).
        let offered = 0;
        let now = T0;
        for (const { op, advanceMs } of steps) {
          now += advanceMs;
          if (op.kind === 'tick') {
            await memory.tick(now, d);
            await onRedis.tick(now, d);
            continue;
          }
          if (op.kind === 'enter') {
            const fresh = tid(c * 1000 + ++offered);
            const [a, b] = [await memory.enter(c, op.user, fresh, now, d), await onRedis.enter(c, op.user, fresh, now, d)];
            expect([b.status, b.position, b.tokenId]).toEqual([a.status, a.position, a.tokenId]);
            tokens.set(op.user, a.tokenId);
            continue;
          }
          const t = tokens.get(op.user);
          if (t === undefined) continue;
          if (op.kind === 'leave') {
            expect(await onRedis.leave(c, t, now, d)).toEqual(await memory.leave(c, t, now, d));
            continue;
          }
          const a = (await memory.status(c, t, now, d, false)) as TokenState;
          const b = (await onRedis.status(c, t, now, d, false)) as TokenState;
          expect([b.status, b.position]).toEqual([a.status, a.position]);
        }
        const [sa, sb] = [await memory.stats(c, now, d), await onRedis.stats(c, now, d)];
        expect([sb.waiting, sb.active, sb.droppedIdleTotal, sb.admittedTotal]).toEqual([sa.waiting, sa.active, sa.droppedIdleTotal, sa.admittedTotal]);
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * The curve itself, drawn where it was found to break (review, 2026-12-06): 40 departures over
 * 1–20 s of a 60 s TTL, holders noticing 30.292242 ms late. The renewal function read itself at
 * now + x and took the difference back: at 1.8e12 ms that rounds to a 4,096th of a ms, and an x
 * just under the step being drawn read as in it, past the end of what was drawn (NaN in
 * TypeScript from there on, and an error in the Lua).
 */
describe('etaCurve', () => {
  it('draws a finite curve that never falls, at any instant', () => {
    let life: number[] = [];
    for (let i = 0; i < 40; i++) life = addLife(life, T0, T0, 1_000 + ((i * 7_919) % 19_000), 60_000, true);
    for (const late of [30.292242, 30.292243, 30.2922]) {
      const curve = etaCurve({ now: T0, dep: 40, maxActive: 4, ttlMs: 60_000, slots: [], weight: 1, active: 0, life, lifeAt: T0, late });
      expect(curve.n.every((v) => Number.isFinite(v)), `late ${late}`).toBe(true);
      expect(curve.n.every((v, j) => j === 0 || v >= curve.n[j - 1]!), `late ${late}`).toBe(true);
    }
  });
});
