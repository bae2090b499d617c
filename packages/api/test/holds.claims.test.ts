import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { admin, client, createTestDatabase, deleteRedisKeys, freePort, key, outcome, recordStatements, REDIS_URL, startApi, type TestApi, type TestDatabase, testEnv } from '../../../test/harness.ts';
import { type RedisServer, startRedisServer } from '../../../test/redis-server.ts';

/**
 * The seats a process's own holds claimed are remembered beside its cached seat map, and a hold's
 * check calls them taken (holds.crowd.test.ts). It must never call a free seat taken. An outside
 * review of that change found two ways it did, each tested here (both failed without their fix):
 *
 * - A claim is noted in its hold's after-commit hook, some time after PostgreSQL committed it (the
 *   COMMIT's answer still has to reach a busy event loop). If the hold was released elsewhere in
 *   that gap (the fan cancels through another API process) and this process loaded its map after
 *   the release, the claim noted afterwards outlived the map: a free seat refused for up to 10 s.
 *   The late hook is modelled by delaying the hook's call of seatMaps.invalidate.
 * - A claim lapsed at the database's held_until, read by this process's clock: a process whose
 *   clock is behind PostgreSQL's (CLOCK_OFFSET_MS here; drift in life) kept refusing a seat whose
 *   hold had lapsed in the database, for as long as the difference (at most 10 s).
 */
/** A concert of one 10-seat show on sale, made through `url`. */
async function showOn(url: string, title: string): Promise<{ concertId: number; scheduleId: number }> {
  const now = Date.now();
  const { concertId, schedules } = await admin(url).admin.concerts.create.mutate({
    title: `${title} ${key()}`,
    schedules: [{ startsAt: new Date(now + 86_400_000), bookingOpensAt: new Date(now - 60_000), seatCount: 10 }],
  });
  return { concertId, scheduleId: schedules[0]!.scheduleId };
}

/** A funded user, ACTIVE in the concert's line (entered through `url`): its id and queue token. */
async function activeFan(url: string, concertId: number, name: string): Promise<{ userId: number; token: string }> {
  const { userId } = await admin(url).admin.users.create.mutate({ name, initialBalance: 1_000_000 });
  const ticket = await client(url, { userId }).queue.enter.mutate({ concertId });
  expect(ticket.status).toBe('ACTIVE');
  return { userId, token: ticket.token };
}

describe('a hold\'s claim remembered beside the cached seat map, released before it was noted', () => {
  const prefix = `cllate${randomBytes(4).toString('hex')}:`;
  let db: TestDatabase;
  let p: TestApi;
  let q: TestApi;
  let sql: InstanceType<typeof pg.Client>;
  /** Lets the delayed hook run (called again after the tests, so that a failure in between leaves no hold waiting on it). */
  let letHookRun = () => {};
  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix, QUEUE_MAX_ACTIVE: '1000', QUEUE_ACTIVE_TTL_SECONDS: '86400', RATE_LIMITS: 'off', HOLD_TTL_SECONDS: '300' });
    p = await startApi(env, { background: false });
    q = await startApi(env, { background: false });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    letHookRun();
    vi.restoreAllMocks();
    await sql?.end();
    await p?.close();
    await q?.close();
    await db?.drop();
    await deleteRedisKeys(prefix);
  });

  it('a seat released (in another process) before its claim was noted here is held again at once', { timeout: 60_000 }, async () => {
    const { concertId, scheduleId } = await showOn(p.url, 'Late hook');
    const w = await activeFan(p.url, concertId, 'winner');
    const f = await activeFan(p.url, concertId, 'fan');
    const onP = (u: { userId: number; token: string }) => client(p.url, { userId: u.userId, queueToken: u.token }, { batch: false });
    const onQ = (u: { userId: number; token: string }) => client(q.url, { userId: u.userId, queueToken: u.token }, { batch: false });

    // Versions started, and P's map cached.
    await onP(f).concerts.seats.query({ scheduleId });
    await onP(f).concerts.seats.query({ scheduleId });

    // P's hook for the claim of seat 3 runs late (after the COMMIT, as a lagging event loop would).
    const cache = p.core.seatMaps;
    const original = cache.invalidate.bind(cache);
    let hookReached!: () => void;
    const reached = new Promise<void>((r) => (hookReached = r));
    const go = new Promise<void>((r) => (letHookRun = r));
    vi.spyOn(cache, 'invalidate').mockImplementation(async (...args: Parameters<typeof cache.invalidate>) => {
      if (args[2] === 'claim' && args[3]?.seatNumbers.includes(3)) {
        hookReached();
        await go;
      }
      return original(...args);
    });

    // 1. W holds seat 3 through P: committed, P's hook not run yet.
    const wHold = onP(w).reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('w') });
    await reached;
    // 2. W sees the hold in "my reservations" through Q and cancels it there (Q bumps 'any').
    const mine = await onQ(w).reservations.mine.query({ limit: 10 });
    const held = mine.items.find((r) => r.status === 'HELD' && r.scheduleId === scheduleId)!;
    expect((await onQ(w).reservations.cancel.mutate({ reservationId: held.reservationId })).status).toBe('CANCELLED');
    // 3. P loads its map after the release (a seat view here; a hold's check does the same): seat 3 free.
    expect((await onP(f).concerts.seats.query({ scheduleId })).seats[2]!.status).toBe('AVAILABLE');
    // 4. P's hook finally runs: the claim is noted (after the load began) and W is answered.
    letHookRun();
    expect((await wHold).reservationId).toBe(held.reservationId);
    vi.restoreAllMocks();

    // Seat 3 is free in the database.
    const { rows } = await sql.query('SELECT reservation_id, sold_at FROM seats WHERE schedule_id = $1 AND seat_number = 3', [scheduleId]);
    expect(rows[0]).toEqual({ reservation_id: null, sold_at: null });

    // F's hold of the free seat 3 through P succeeds: the claim was not noted, a load having started since its COMMIT.
    expect(await outcome(onP(f).reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('f') }))).toBe('OK');
  });
  it('without the late hook, a release through another process of a claim this one noted is seen here at once', { timeout: 60_000 }, async () => {
    const { concertId, scheduleId } = await showOn(p.url, 'Control');
    const mk = async (name: string) => {
      const { userId, token } = await activeFan(p.url, concertId, name);
      return { p: client(p.url, { userId, queueToken: token }, { batch: false }), q: client(q.url, { userId, queueToken: token }, { batch: false }) };
    };
    const w = await mk('w');
    const f = await mk('f');
    await f.p.concerts.seats.query({ scheduleId });
    await f.p.concerts.seats.query({ scheduleId });
    const held = await w.p.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('w') });
    // Refused from P's check (its claim noted), not by the database: no transaction.
    const sent = recordStatements();
    expect(await outcome(f.p.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('x') }))).toBe('SEAT_UNAVAILABLE');
    expect(sent.filter((t) => /^\s*(begin|start transaction)/i.test(t) || /update\s+"?seats"?\s+set/i.test(t))).toEqual([]);
    vi.restoreAllMocks();
    await w.q.reservations.cancel.mutate({ reservationId: held.reservationId });
    expect(await outcome(f.p.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('f') }))).toBe('OK');
  });
});

describe('a hold\'s claim remembered by a process whose clock is behind the database\'s', () => {
  const prefix = `clskew${randomBytes(4).toString('hex')}:`;
  const BEHIND_MS = 5_000;
  let db: TestDatabase;
  let p: TestApi;
  let sql: InstanceType<typeof pg.Client>;
  beforeAll(async () => {
    db = await createTestDatabase();
    p = await startApi(
      testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix, QUEUE_MAX_ACTIVE: '1000', QUEUE_ACTIVE_TTL_SECONDS: '86400', RATE_LIMITS: 'off', HOLD_TTL_SECONDS: '4', CLOCK_OFFSET_MS: String(-BEHIND_MS) }),
      { background: false },
    );
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await p?.close();
    await db?.drop();
    await deleteRedisKeys(prefix);
  });

  // Viewed during the hold: the cached map itself has the seat HELD until the hold's lapse, which it
  // read by this process's clock too (found by a second review; before the claims were remembered).
  it.each([
    ['the claim remembered', false],
    ['the map loaded during the hold', true],
  ])('a seat whose hold lapsed in the database is held again at once (%s)', { timeout: 60_000 }, async (_, viewDuringHold) => {
    const { concertId, scheduleId } = await showOn(p.url, 'Skew');
    const fan = async (name: string) => {
      const { userId, token } = await activeFan(p.url, concertId, name);
      return client(p.url, { userId, queueToken: token }, { batch: false });
    };
    const a = await fan('a');
    const b = await fan('b');
    // The versions start and P caches its map (seat 3 free).
    await b.concerts.seats.query({ scheduleId });
    await b.concerts.seats.query({ scheduleId });

    const held = await a.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('a') });
    if (viewDuringHold) expect((await b.concerts.seats.query({ scheduleId })).seats[2]!.status).toBe('HELD');
    // Wait until PostgreSQL's clock is past the hold's expiry: the seat is free there.
    await expect
      .poll(async () => (await sql.query('SELECT clock_timestamp() > $1::timestamptz AS past', [held.holdExpiresAt])).rows[0].past, { timeout: 10_000, interval: 100 })
      .toBe(true);
    const { rows } = await sql.query(
      `SELECT sold_at IS NULL AND (reservation_id IS NULL OR held_until <= clock_timestamp()) AS free FROM seats WHERE schedule_id = $1 AND seat_number = 3`,
      [scheduleId],
    );
    expect(rows[0].free).toBe(true);

    // B's hold of the free seat through P: the claim, and the map, lapsed by P's own clock when the hold did in the database.
    expect(await outcome(b.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('b') }))).toBe('OK');
  });
});

/**
 * A Redis restarted from an older snapshot (an RDB save here; a restored backup in life) keeps the
 * seat maps' epoch and gives their version numbers again to another history: a map this process
 * cached before the restart counted as newer than the changes after it, and a claim noted after
 * the restart outlived its release in another process (found by a second review). Every cached map
 * and claim is dropped when the process reconnects to Redis.
 */
describe('claims and cached maps across a Redis restarted from an older snapshot', () => {
  let db: TestDatabase;
  let p: TestApi;
  let q: TestApi;
  let sql: InstanceType<typeof pg.Client>;
  let redis: RedisServer;
  let port: number;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'claims-redis-'));
    port = await freePort();
    redis = await startRedisServer(port, { dir });
    db = await createTestDatabase();
    const env = testEnv(db.url, { REDIS_URL: redis.url, QUEUE_MAX_ACTIVE: '1000', QUEUE_ACTIVE_TTL_SECONDS: '86400', RATE_LIMITS: 'off', HOLD_TTL_SECONDS: '300' });
    p = await startApi(env, { background: false });
    q = await startApi(env, { background: false });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await p?.close();
    await q?.close();
    await db?.drop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a seat released through another process after the restart is held again at once', { timeout: 90_000 }, async () => {
    const { concertId, scheduleId } = await showOn(p.url, 'Snapshot');
    const mk = async (name: string) => {
      const { userId, token } = await activeFan(p.url, concertId, name);
      return { p: client(p.url, { userId, queueToken: token }, { batch: false }), q: client(q.url, { userId, queueToken: token }, { batch: false }) };
    };
    const [w, f, x] = [await mk('w'), await mk('f'), await mk('x')];
    await f.p.concerts.seats.query({ scheduleId });
    await f.p.concerts.seats.query({ scheduleId });
    // The snapshot.
    const admin_ = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await admin_.connect();
      expect(await admin_.save()).toBe('OK');
    } finally {
      admin_.disconnect();
    }

    // Two claims after it, and P's map loaded at their version (seat 3 free in it).
    await x.p.reservations.hold.mutate({ scheduleId, seatNumbers: [7], idempotencyKey: key('x1') });
    await x.p.reservations.hold.mutate({ scheduleId, seatNumbers: [8], idempotencyKey: key('x2') });
    expect((await f.p.concerts.seats.query({ scheduleId })).seats[2]!.status).toBe('AVAILABLE');

    // Redis dies and comes back from the snapshot: the same epoch, the counters two claims back.
    await redis.stop();
    redis = await startRedisServer(port, { dir });
    // Both processes back on Redis (a poll answers once they have reconnected).
    for (const api of [w.p, w.q]) await expect.poll(() => outcome(api.queue.status.query({})), { timeout: 30_000, interval: 200 }).toBe('OK');

    // W holds seat 3 through P (its claim noted there), and cancels it through Q.
    const held = await w.p.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('w') });
    expect((await w.q.reservations.cancel.mutate({ reservationId: held.reservationId })).status).toBe('CANCELLED');
    const { rows } = await sql.query('SELECT reservation_id, sold_at FROM seats WHERE schedule_id = $1 AND seat_number = 3', [scheduleId]);
    expect(rows[0]).toEqual({ reservation_id: null, sold_at: null });

    // The seat is free: F holds it through P.
    expect(await outcome(f.p.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('f') }))).toBe('OK');
  });
});
