/**
 * One clock decides (issue 14, point 5): two API processes whose own clocks are 14 s apart
 * (CLOCK_OFFSET_MS +7 s and -7 s) on one PostgreSQL and one Redis agree on every hold (its
 * expiry is the database's time plus the TTL), every payment deadline (the database's time
 * decides, whichever process pays) and every admission (Redis's TIME: the ACTIVE slot's expiry,
 * the token's check on either process, the order, the ETA and the idle drop). Before the change
 * each process used its own clock, so a hold or a slot made on one process lapsed seconds early
 * or late on the other, and the sweepers and tickers of the fast process cut everyone short.
 */
import { randomBytes } from 'node:crypto';
import { createRedis, type RedisClient, waitForRedis } from '@concert/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, expectAppError, key, REDIS_URL, seedSale, spawnApi, type SpawnedApi, testEnv } from '../../../test/harness.ts';

const SKEW_MS = 7_000;
const HOLD_TTL_S = 20;
const ACTIVE_TTL_S = 15;
const IDLE_S = 15;
/** The margin a step is given before a deadline: generous, for a busy machine. */
const MARGIN_MS = 6_000;

describe('API processes with clocks 14 s apart agree on holds, payments and admission', () => {
  const prefix = `t${randomBytes(5).toString('hex')}:`;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pgc: InstanceType<typeof pg.Client>;
  let redis: RedisClient;
  let a: SpawnedApi; // clock 7 s ahead
  let b: SpawnedApi; // clock 7 s behind

  /** The database's time now. */
  const dbNow = async () => (await pgc.query<{ t: Date }>('SELECT clock_timestamp() AS t')).rows[0]!.t.getTime();
  /** Redis's time now, in ms. */
  const redisNow = async () => {
    const [s, us] = await redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = (offset: number) =>
      testEnv(db.url, {
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        RATE_LIMITS: 'off',
        HOLD_TTL_SECONDS: String(HOLD_TTL_S),
        QUEUE_MAX_ACTIVE: '1000',
        QUEUE_ACTIVE_TTL_SECONDS: '86400',
        CLOCK_OFFSET_MS: String(offset),
      });
    a = await spawnApi(env(SKEW_MS));
    b = await spawnApi(env(-SKEW_MS));
    pgc = new pg.Client({ connectionString: db.url });
    await pgc.connect();
    redis = createRedis(REDIS_URL);
    await waitForRedis(redis, 3_000);
  }, 240_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await pgc?.end();
    redis?.disconnect();
    await db?.drop();
  });

  it('the database decides every hold and payment deadline, whichever process holds or pays', async () => {
    const sale = await seedSale(a.url, { users: 2, seatCount: 10 });
    const [u1, u2] = sale.userIds as [number, number];
    const token = async (userId: number) => (await client(a.url, { userId }).queue.enter.mutate({ concertId: sale.concertId })).token;
    const t1 = await token(u1);
    const t2 = await token(u2);
    const on = (api: SpawnedApi, userId: number, queueToken: string) => client(api.url, { userId, queueToken });

    // u1 holds on A (fast clock), u2 on B (slow clock): each expiry is the database's time + TTL.
    const before1 = await dbNow();
    const r1 = await on(a, u1, t1).reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [1], idempotencyKey: key() });
    const after1 = await dbNow();
    const before2 = await dbNow();
    const r2 = await on(b, u2, t2).reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [2], idempotencyKey: key() });
    const after2 = await dbNow();
    for (const [r, from, to] of [
      [r1, before1, after1],
      [r2, before2, after2],
    ] as const) {
      expect(r.holdExpiresAt.getTime()).toBeGreaterThanOrEqual(from + HOLD_TTL_S * 1000);
      expect(r.holdExpiresAt.getTime()).toBeLessThanOrEqual(to + HOLD_TTL_S * 1000);
      expect(r.createdAt.getTime()).toBeGreaterThanOrEqual(from);
      expect(r.createdAt.getTime()).toBeLessThanOrEqual(to);
    }
    // Both processes read the same holds, with the same expiry, as HELD.
    for (const api of [a, b]) {
      expect(await on(api, u1, t1).reservations.get.query({ reservationId: r1.reservationId })).toMatchObject({ status: 'HELD', holdExpiresAt: r1.holdExpiresAt });
      expect(await on(api, u2, t2).reservations.get.query({ reservationId: r2.reservationId })).toMatchObject({ status: 'HELD', holdExpiresAt: r2.holdExpiresAt });
    }

    // Right before the database's deadline, A (whose clock is past it) sells u2's hold made on B.
    await expect.poll(dbNow, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(r2.holdExpiresAt.getTime() - MARGIN_MS);
    const paid = await on(a, u2, t2).payments.pay.mutate({ reservationId: r2.reservationId, idempotencyKey: key() });
    expect(paid.status).toBe('COMPLETED');
    expect(paid.paidAt.getTime()).toBeLessThan(r2.holdExpiresAt.getTime());

    // Right after it, B (whose clock is before it) refuses u1's hold made on A; both read it EXPIRED.
    await expect.poll(dbNow, { timeout: 60_000, interval: 100 }).toBeGreaterThan(r1.holdExpiresAt.getTime());
    await expectAppError(on(b, u1, t1).payments.pay.mutate({ reservationId: r1.reservationId, idempotencyKey: key() }), 'HOLD_EXPIRED');
    for (const api of [a, b]) {
      expect(await on(api, u1, t1).reservations.get.query({ reservationId: r1.reservationId })).toMatchObject({ status: 'EXPIRED' });
    }
  }, 120_000);

  it('Redis decides admission: slot expiry, the token check on either process, order, ETA and the idle drop', async () => {
    const sale = await seedSale(a.url, { users: 3, seatCount: 10 });
    const [ux, uy, uz] = sale.userIds as [number, number, number];
    await admin(a.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 1, activeTtlSeconds: ACTIVE_TTL_S, idleTimeoutSeconds: IDLE_S });
    const enter = (api: SpawnedApi, userId: number) => client(api.url, { userId }).queue.enter.mutate({ concertId: sale.concertId });
    const status = (api: SpawnedApi, userId: number, queueToken: string) => client(api.url, { userId, queueToken }).queue.status.query({});

    // X is admitted on B (slow clock): the slot lasts Redis's time + TTL.
    const beforeX = await redisNow();
    const x = await enter(b, ux);
    const afterX = await redisNow();
    expect(x.status).toBe('ACTIVE');
    const until = x.activeUntil!.getTime();
    expect(until).toBeGreaterThanOrEqual(beforeX + ACTIVE_TTL_S * 1000);
    expect(until).toBeLessThanOrEqual(afterX + ACTIVE_TTL_S * 1000);
    // Y waits (entered on B), then Z (entered on A): the same order on both processes.
    const y = await enter(b, uy);
    const beforeZ = await redisNow();
    const z = await enter(a, uz);
    expect([y.status, y.position, z.status, z.position]).toEqual(['WAITING', 1, 'WAITING', 2]);
    for (const api of [a, b]) {
      expect(await status(api, ux, x.token)).toMatchObject({ status: 'ACTIVE', activeUntil: x.activeUntil });
      expect(await status(api, uy, y.token)).toMatchObject({ status: 'WAITING', position: 1 });
    }

    // Right before the slot's end, A (whose clock is past it) still lets X book, and both
    // processes tell Y the same wait.
    await expect.poll(redisNow, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(until - MARGIN_MS);
    const held = await client(a.url, { userId: ux, queueToken: x.token }).reservations.hold.mutate({
      scheduleId: sale.scheduleId,
      seatNumbers: [1],
      idempotencyKey: key(),
    });
    expect(held.status).toBe('HELD');
    const [etaA, etaB] = [(await status(a, uy, y.token)).etaSeconds, (await status(b, uy, y.token)).etaSeconds];
    expect(etaA).not.toBeNull();
    expect(etaB).not.toBeNull();
    expect(Math.abs(etaA! - etaB!)).toBeLessThanOrEqual(2);

    // Right after it, B (whose clock is before it) refuses X's token; Y, first in line, is next.
    await expect.poll(redisNow, { timeout: 60_000, interval: 100 }).toBeGreaterThan(until);
    await expectAppError(
      client(b.url, { userId: ux, queueToken: x.token }).reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [2], idempotencyKey: key() }),
      'TOKEN_EXPIRED',
    );
    await expect.poll(async () => (await status(b, uy, y.token)).status, { timeout: 30_000, interval: 200 }).toBe('ACTIVE');
    expect(await status(a, uy, y.token)).toMatchObject({ status: 'ACTIVE' });

    // Z never polled: dropped once Redis's time is IDLE_S past Z's entry, not before (both
    // processes' tickers settle the line all along).
    await expect.poll(async () => (await admin(b.url).admin.queue.stats.query({ concertId: sale.concertId })).waiting, { timeout: 60_000, interval: 100 }).toBe(0);
    expect(await redisNow()).toBeGreaterThanOrEqual(beforeZ + IDLE_S * 1000);
  }, 150_000);
});
