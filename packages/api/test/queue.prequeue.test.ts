import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, seedSale, spawnApi, type SpawnedApi, testEnv } from '../../../test/harness.ts';
import { makeFans, redisEnv, retries, retrying, sleep } from './queue.shared.ts';

const FANS = 1000;

function pearson(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe('the pre-queue, shuffled at the opening, on two API processes', () => {
  const redis = redisEnv();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let apis: SpawnedApi[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    // Each fan asks once after the opening, whenever the test gets to it: poll limits are off here.
    const env = testEnv(db.url, { ...redis.env, QUEUE_MAX_ACTIVE: '1', QUEUE_IDLE_TIMEOUT_SECONDS: '600', RATE_LIMITS: 'off' });
    // One after the other: two cold starts at once can outlast the harness's 30 s start deadline on a busy machine.
    apis = [await spawnApi(env), await spawnApi(env)];
  }, 240_000);
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    await db?.drop();
    await redis.cleanup();
  });

  it('gives 1,000 pre-queued fans places uncorrelated with their arrival, all ahead of later arrivals, polls spread', { timeout: 240_000 }, async () => {
    const urls = apis.map((a) => a.url);
    const sale = await seedSale(urls[0]!, { users: 0, seatCount: 1000 });
    const users = await makeFans(urls[0]!, FANS + 20);
    const ops = admin(urls[1]!);
    const far = new Date(Date.now() + 3600_000);
    const configured = await ops.admin.queue.configure.mutate({ concertId: sale.concertId, opensAt: far });
    expect([configured.state, configured.opensAt?.getTime()]).toEqual(['PRE_QUEUE', far.getTime()]);

    // 1,000 fans enter, 25 at a time, alternating processes: the order in which they were answered is their arrival.
    const pre: Array<{ userId: number; token: string; order: number; pollAfterMs: number; answeredAt: number }> = [];
    for (let i = 0; i < FANS; i += 25) {
      await Promise.all(
        users.slice(i, i + 25).map(async (userId, j) => {
          const t = await retrying(() => client(urls[(i + j) % 2]!, { userId }, { batch: false }).queue.enter.mutate({ concertId: sale.concertId }));
          expect([t.status, t.position, t.opensAt?.getTime()]).toEqual(['PRE_QUEUE', null, far.getTime()]);
          // etaSeconds: the time to the opening.
          expect(Math.abs(t.etaSeconds! - (far.getTime() - Date.now()) / 1000)).toBeLessThan(30);
          pre.push({ userId, token: t.token, order: pre.length, pollAfterMs: t.pollAfterMs, answeredAt: Date.now() });
        }),
      );
    }
    const stats = await ops.admin.queue.stats.query({ concertId: sale.concertId });
    expect([stats.state, stats.preQueued, stats.waiting, stats.active]).toEqual(['PRE_QUEUE', FANS, 0, 0]);

    // Polls are spread: nobody is told to come back at one instant (counted per second of the next polls).
    const perSecond = new Map<number, number>();
    for (const p of pre) {
      const s = Math.floor((p.answeredAt + p.pollAfterMs) / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    }
    const busiest = Math.max(...perSecond.values());
    const polls = pre.map((p) => p.pollAfterMs);
    expect(Math.min(...polls)).toBeGreaterThanOrEqual(15_000);
    expect(Math.max(...polls)).toBeLessThanOrEqual(30_000);
    expect(new Set(polls).size).toBeGreaterThan(900);

    // The operator brings the opening forward to two seconds from now; the line opens by itself.
    const opensAt = Date.now() + 2_000;
    await ops.admin.queue.configure.mutate({ concertId: sale.concertId, opensAt: new Date(opensAt) });
    await sleep(opensAt - Date.now() + 50);
    await expect.poll(async () => (await ops.admin.queue.stats.query({ concertId: sale.concertId })).state, { timeout: 5_000 }).toBe('OPEN');

    // Later arrivals line up behind every pre-queued fan, first come, first served.
    const later = [];
    for (const userId of users.slice(FANS)) later.push(await retrying(() => client(urls[userId % 2]!, { userId }).queue.enter.mutate({ concertId: sale.concertId })));
    expect(later.map((t) => t.position)).toEqual(Array.from({ length: 20 }, (_, i) => FANS + i));

    // Each pre-queued fan's place: 0 for the one admitted at the opening, else the position.
    const places: number[] = [];
    for (let i = 0; i < FANS; i += 25) {
      const batch = await Promise.all(
        pre.slice(i, i + 25).map(async (p, j) => {
          const t = await retrying(() => client(urls[(i + j) % 2]!, { userId: p.userId, queueToken: p.token }, { batch: false }).queue.status.query({}));
          return t.status === 'ACTIVE' ? 0 : t.position!;
        }),
      );
      places.push(...batch);
    }
    expect([...places].sort((a, b) => a - b)).toEqual(Array.from({ length: FANS }, (_, i) => i));
    const r = pearson(
      pre.map((p) => p.order),
      places,
    );
    const mean = places.reduce((a, b) => a + b, 0) / FANS;
    const quartiles = [0, 1, 2, 3].map((q) => {
      const qs = pre.filter((p) => Math.floor((p.order * 4) / FANS) === q).map((p) => places[p.order]!);
      return qs.reduce((a, b) => a + b, 0) / qs.length;
    });
    const spread = Math.max(...quartiles.map((m) => Math.abs(m - mean) / mean));
    console.log(
      `pre-queue of ${FANS}: correlation(arrival, place) = ${r.toFixed(3)}; mean place by arrival quartile ${quartiles.map((m) => m.toFixed(1)).join(', ')} ` +
        `(overall ${mean.toFixed(1)}, farthest ${(spread * 100).toFixed(1)}% off); busiest second of next polls: ${busiest} of ${FANS}; ${retries.count} calls retried after a 503`,
    );
    // For a uniform shuffle of 1,000, the correlation's standard deviation is 0.032 and a quartile
    // mean's 3.2%: these bounds are about 3.5 standard deviations.
    expect(Math.abs(r)).toBeLessThan(0.11);
    expect(spread).toBeLessThan(0.11);
    expect(busiest).toBeLessThan(FANS / 8);
  });
});
