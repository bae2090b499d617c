import { randomBytes } from 'node:crypto';
import { FakeClock } from '@concert/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestDatabase, freePort, key, outcome, REDIS_URL, seedSale, startApi, TcpProxy, type TestApi, type TestDatabase, testEnv } from '../../../test/harness.ts';
import { BOOKING_ENV } from './booking.shared.ts';

/**
 * The seat-map cache may turn a hold away only for a seat it knows is taken now (contract: a
 * lapsed or cancelled seat is AVAILABLE at once): not from a load that began before a hold
 * lapsed, and not from a map a failed version bump left behind.
 */
describe('seat-map cache never refuses a free seat', () => {
  const clock = new FakeClock();
  const prefix = `t${randomBytes(5).toString('hex')}:`;
  let db: TestDatabase;
  let proxy: TcpProxy;
  /** Talks to Redis through the proxy the tests cut. */
  let p: TestApi;
  /** Talks to Redis directly. */
  let q: TestApi;
  let sql: InstanceType<typeof pg.Client>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const redis = new URL(REDIS_URL);
    proxy = new TcpProxy(await freePort(), { host: redis.hostname, port: Number(redis.port || 6379) });
    await proxy.start();
    const env = { ...BOOKING_ENV, REDIS_KEY_PREFIX: prefix };
    q = await startApi(testEnv(db.url, { ...env, REDIS_URL }), { clock });
    p = await startApi(testEnv(db.url, { ...env, REDIS_URL: `redis://127.0.0.1:${proxy.port}` }), { clock });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await p?.close();
    await q?.close();
    await proxy?.cut();
    await db?.drop();
  });

  const withToken = async (api: TestApi, userId: number, concertId: number) => {
    const ticket = await client(api.url, { userId }).queue.enter.mutate({ concertId });
    expect(ticket.status).toBe('ACTIVE');
    return client(api.url, { userId, queueToken: ticket.token });
  };
  const seatStatus = async (fan: ReturnType<typeof client>, scheduleId: number, n: number) =>
    (await fan.concerts.seats.query({ scheduleId })).seats[n - 1]!.status;

  it('a hold that joins a seat-map load begun before a hold lapsed still gets the lapsed seat', async () => {
    const { concertId, scheduleId, userIds } = await seedSale(q.url, { users: 3, seatCount: 10 });
    const [a, b, c] = userIds as [number, number, number];
    const [fanA, fanB, fanC] = [await withToken(q, a, concertId), await withToken(q, b, concertId), await withToken(q, c, concertId)];
    await fanA.reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    // The hold moved the version: the next read loads. Hold that load inside PostgreSQL (for
    // less than the 10 s statement timeout).
    await sql.query('BEGIN');
    await sql.query('LOCK TABLE seats IN ACCESS EXCLUSIVE MODE');
    const cRead = fanC.concerts.seats.query({ scheduleId });
    // (Activity statistics are a snapshot per transaction: cleared before each look.)
    await expect
      .poll(async () => (await sql.query('SELECT pg_stat_clear_snapshot()'), await sql.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%"s"."held_until", CASE WHEN%'`)).rows[0].n, { timeout: 8_000 })
      .toBe(1);
    // A's hold lapses while the load (begun before) is still in flight; B asks for the seat and
    // shares that load.
    clock.advance(q.core.config.holdTtlSeconds * 1000 + 1000);
    const shared = q.core.seatMaps.sharedLoads;
    const bHold = outcome(fanB.reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() }));
    await expect.poll(() => q.core.seatMaps.sharedLoads, { timeout: 8_000 }).toBe(shared + 1);
    await sql.query('COMMIT');
    expect(await bHold).toBe('OK');
    expect((await cRead).seats[0]!.status).toBe('AVAILABLE');
    expect(await seatStatus(fanC, scheduleId, 1)).toBe('HELD');
  });

  it('a cancel whose version bump failed does not leave a stale map once the version store is back', async () => {
    const { concertId, scheduleId, userIds } = await seedSale(q.url, { users: 3, seatCount: 10 });
    const [a, b, c] = userIds as [number, number, number];
    const fanA = await withToken(q, a, concertId);
    const held = await fanA.reservations.hold.mutate({ scheduleId, seatNumbers: [2], idempotencyKey: key() });
    // Both processes cache the map with seat 2 HELD.
    const cOnP = await withToken(p, c, concertId);
    const cOnQ = client(q.url, { userId: c, queueToken: (await client(q.url, { userId: c }).queue.enter.mutate({ concertId })).token });
    expect(await seatStatus(cOnP, scheduleId, 2)).toBe('HELD');
    expect(await seatStatus(cOnQ, scheduleId, 2)).toBe('HELD');

    // P loses Redis; A cancels through P: committed, but the bump cannot reach the version store.
    await proxy.cut();
    const cancelled = await client(p.url, { userId: a }).reservations.cancel.mutate({ reservationId: held.reservationId });
    expect(cancelled.status).toBe('CANCELLED');
    expect(p.core.seatMaps.pendingBumps).toBe(1);
    await proxy.start();

    // Once P reaches Redis again its retried bump lands: no process serves the map from before
    // the cancel (the fake clock never lets the 10 s safety age run out).
    await expect.poll(() => seatStatus(cOnQ, scheduleId, 2), { timeout: 15_000, interval: 100 }).toBe('AVAILABLE');
    expect(p.core.seatMaps.pendingBumps).toBe(0);
    expect(await seatStatus(cOnP, scheduleId, 2)).toBe('AVAILABLE');
    const fanB = await withToken(q, b, concertId);
    expect(await outcome(fanB.reservations.hold.mutate({ scheduleId, seatNumbers: [2], idempotencyKey: key() }))).toBe('OK');
  });
  it('a hold checks taken seats against a map that has seen every release: a seat cancelled in another process is held at once', async () => {
    const { concertId, scheduleId, userIds } = await seedSale(q.url, { users: 3, seatCount: 10 });
    const [a, b, c] = userIds as [number, number, number];
    const fanA = await withToken(q, a, concertId);
    const held = await fanA.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key() });
    // P caches the map with seat 3 HELD.
    const fanB = await withToken(p, b, concertId);
    expect(await seatStatus(fanB, scheduleId, 3)).toBe('HELD');
    // Q: A cancels (a release), then C claims another seat (a claim after the release).
    await fanA.reservations.cancel.mutate({ reservationId: held.reservationId });
    const fanC = await withToken(q, c, concertId);
    await fanC.reservations.hold.mutate({ scheduleId, seatNumbers: [4], idempotencyKey: key() });
    // B's hold on P must not be turned away by P's map from before the release.
    expect(await outcome(fanB.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key() }))).toBe('OK');
  });

  it('holds on distinct seats do not load the seat map again for each other’s claims (only maps to show do)', async () => {
    const { concertId, scheduleId, userIds } = await seedSale(q.url, { users: 21, seatCount: 40 });
    const fans = await Promise.all(userIds.map((u) => withToken(q, u, concertId)));
    // The map is cached (the first read of a concert starts its versions' epoch and reads through).
    expect(await seatStatus(fans[0]!, scheduleId, 1)).toBe('AVAILABLE');
    expect(await seatStatus(fans[0]!, scheduleId, 1)).toBe('AVAILABLE');
    const loads = q.core.seatMaps.loadCount;
    expect(await seatStatus(fans[0]!, scheduleId, 1)).toBe('AVAILABLE');
    expect(q.core.seatMaps.loadCount).toBe(loads);
    for (const [i, fan] of fans.slice(1).entries()) {
      expect(await outcome(fan.reservations.hold.mutate({ scheduleId, seatNumbers: [i + 1], idempotencyKey: key() }))).toBe('OK');
    }
    // 20 claims, 20 new versions: the holds' checks of taken seats loaded nothing.
    expect(q.core.seatMaps.loadCount - loads).toBe(0);
    // A map to show wants every change: one load, and every claim is in it.
    const map = (await fans[0]!.concerts.seats.query({ scheduleId })).seats;
    expect(map.slice(0, 20).every((seat) => seat.status === 'HELD')).toBe(true);
    expect(map[20]!.status).toBe('AVAILABLE');
    expect(q.core.seatMaps.loadCount - loads).toBe(1);
    // And a hold of a seat claimed since the cached map was loaded is still refused by the database.
    expect(await outcome(fans[0]!.reservations.hold.mutate({ scheduleId, seatNumbers: [5], idempotencyKey: key() }))).toBe('SEAT_UNAVAILABLE');
  });
});
