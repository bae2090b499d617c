import { randomBytes } from 'node:crypto';
import { createRedis, FakeClock, waitForRedis } from '@concert/core';
import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  admin,
  client,
  createTestDatabase,
  expectAppError,
  key,
  REDIS_URL,
  seedSale,
  spawnApi,
  type SpawnedApi,
  startApi,
  type TestApi,
  testEnv,
} from '../../../test/harness.ts';

const redisEnv = () => ({ REDIS_URL, REDIS_KEY_PREFIX: `t${randomBytes(5).toString('hex')}:` });

/** Waits until `fn` returns true, polling every 20 ms; returns how long it took. */
async function within(ms: number, fn: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await fn()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`condition not met within ${ms} ms`);
}

describe('waiting room through the API (Redis, one process, injected clock)', () => {
  const redis = redisEnv();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let api: TestApi;
  const clock = new FakeClock(Date.now());
  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(testEnv(db.url, { ...redis, QUEUE_MAX_ACTIVE: '2', QUEUE_ACTIVE_TTL_SECONDS: '120' }), { clock });
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  it('gates every booking step: no token, waiting, expired, forged, someone else’s and another concert’s token', async () => {
    const sale = await seedSale(api.url, { users: 4, balance: 1_000_000 });
    const other = await seedSale(api.url, { users: 0 });
    const [u1, u2, u3, u4] = sale.userIds as [number, number, number, number];
    const t1 = await client(api.url, { userId: u1 }).queue.enter.mutate({ concertId: sale.concertId });
    const t2 = await client(api.url, { userId: u2 }).queue.enter.mutate({ concertId: sale.concertId });
    const t3 = await client(api.url, { userId: u3 }).queue.enter.mutate({ concertId: sale.concertId });
    expect([t1.status, t2.status, t3.status]).toEqual(['ACTIVE', 'ACTIVE', 'WAITING']);
    expect(t3.position).toBe(1);
    const otherConcert = await client(api.url, { userId: u4 }).queue.enter.mutate({ concertId: other.concertId });

    // A reservation of u1's to aim payments at.
    const fan1 = client(api.url, { userId: u1, queueToken: t1.token });
    const r = await fan1.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [1], idempotencyKey: key() });

    const forged = `${t1.token.slice(0, -2)}${t1.token.endsWith('AA') ? 'BB' : 'AA'}`;
    const cases: Array<[string, { userId: number; queueToken?: string }, string]> = [
      ['no token', { userId: u1 }, 'TOKEN_INVALID'],
      ['waiting token', { userId: u3, queueToken: t3.token }, 'QUEUE_NOT_ACTIVE'],
      ['forged token', { userId: u1, queueToken: forged }, 'TOKEN_INVALID'],
      ['garbage token', { userId: u1, queueToken: 'not-a-token' }, 'TOKEN_INVALID'],
      ['someone else’s token', { userId: u1, queueToken: t2.token }, 'TOKEN_INVALID'],
      ['another concert’s token', { userId: u4, queueToken: otherConcert.token }, 'TOKEN_WRONG_CONCERT'],
    ];
    for (const [, who, code] of cases) {
      const c = client(api.url, who);
      await expectAppError(c.concerts.seats.query({ scheduleId: sale.scheduleId }), code);
      await expectAppError(c.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [9], idempotencyKey: key() }), code);
    }
    // Payment gate (only u1 owns r; other users get NOT_FOUND before the gate, as they should).
    const noToken = await expectAppError(client(api.url, { userId: u1 }).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'TOKEN_INVALID');
    expect(noToken.data?.httpStatus).toBe(401);
    await expectAppError(client(api.url, { userId: u1, queueToken: forged }).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'TOKEN_INVALID');
    await expectAppError(client(api.url, { userId: u1, queueToken: t2.token }).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'TOKEN_INVALID');
    const u1Elsewhere = await client(api.url, { userId: u1 }).queue.enter.mutate({ concertId: other.concertId });
    await expectAppError(
      client(api.url, { userId: u1, queueToken: u1Elsewhere.token }).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }),
      'TOKEN_WRONG_CONCERT',
    );

    // The active token works.
    const map = await fan1.concerts.seats.query({ scheduleId: sale.scheduleId });
    expect(map.seats.find((s) => s.seatNumber === 1)?.status).toBe('HELD');

    // Expired: u2 leaves, and its token is dead everywhere.
    const fan2 = client(api.url, { userId: u2, queueToken: t2.token });
    expect(await fan2.queue.leave.mutate({})).toEqual({ left: true });
    await expectAppError(fan2.concerts.seats.query({ scheduleId: sale.scheduleId }), 'TOKEN_EXPIRED');
    await expectAppError(fan2.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [9], idempotencyKey: key() }), 'TOKEN_EXPIRED');
    expect((await fan2.queue.status.query({})).status).toBe('EXPIRED');
    // ... and u3, next in line, was admitted by that leave.
    expect((await client(api.url, { userId: u3, queueToken: t3.token }).queue.status.query({})).status).toBe('ACTIVE');

    // The payment gate with u1's own tokens: the one it left (expired), then a WAITING one.
    await fan1.queue.leave.mutate({});
    await expectAppError(fan1.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'TOKEN_EXPIRED');
    const fill = await client(api.url, { userId: u4 }).queue.enter.mutate({ concertId: sale.concertId });
    expect(fill.status).toBe('ACTIVE'); // u3 and u4 fill both places
    const back = await client(api.url, { userId: u1 }).queue.enter.mutate({ concertId: sale.concertId });
    expect(back.status).toBe('WAITING');
    const waitingFan = client(api.url, { userId: u1, queueToken: back.token });
    await expectAppError(waitingFan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'QUEUE_NOT_ACTIVE');
  });

  it('queue.status / leave refuse a missing, forged or foreign token', async () => {
    const sale = await seedSale(api.url, { users: 2 });
    const [a, b] = sale.userIds as [number, number];
    const ta = await client(api.url, { userId: a }).queue.enter.mutate({ concertId: sale.concertId });
    await expectAppError(client(api.url, { userId: a }).queue.status.query({}), 'TOKEN_INVALID');
    await expectAppError(client(api.url, { userId: b, queueToken: ta.token }).queue.status.query({}), 'TOKEN_INVALID');
    await expectAppError(client(api.url, { userId: b, queueToken: ta.token }).queue.leave.mutate({}), 'TOKEN_INVALID');
    await expectAppError(client(api.url, { userId: a }).queue.enter.mutate({ concertId: 999_999 }), 'CONCERT_NOT_FOUND');
  });

  it('an ACTIVE token lives activeTtlSeconds, then reads EXPIRED and the gate says TOKEN_EXPIRED', async () => {
    const sale = await seedSale(api.url, { users: 1 });
    const a = admin(api.url);
    await a.admin.queue.configure.mutate({ concertId: sale.concertId, activeTtlSeconds: 30 });
    const fan = client(api.url, { userId: sale.userIds[0]! });
    const t = await fan.queue.enter.mutate({ concertId: sale.concertId });
    expect(t.status).toBe('ACTIVE');
    expect(t.activeUntil!.getTime() - clock.now().getTime()).toBe(30_000);
    clock.advance(30_000);
    const withToken = client(api.url, { userId: sale.userIds[0]!, queueToken: t.token });
    await expectAppError(withToken.concerts.seats.query({ scheduleId: sale.scheduleId }), 'TOKEN_EXPIRED');
    expect((await withToken.queue.status.query({})).status).toBe('EXPIRED');
    // Entering again after expiry gives a new token at the back.
    const again = await fan.queue.enter.mutate({ concertId: sale.concertId });
    expect(again.token).not.toBe(t.token);
  });

  it('a payment expires the payer’s token at once and admits the next; a replay after that still returns the payment', async () => {
    const sale = await seedSale(api.url, { users: 3, balance: 1_000_000 });
    await admin(api.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 1 });
    const [a, b] = sale.userIds as [number, number];
    const ta = await client(api.url, { userId: a }).queue.enter.mutate({ concertId: sale.concertId });
    const tb = await client(api.url, { userId: b }).queue.enter.mutate({ concertId: sale.concertId });
    expect([ta.status, tb.status]).toEqual(['ACTIVE', 'WAITING']);
    const fan = client(api.url, { userId: a, queueToken: ta.token });
    const r = await fan.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [2, 3], idempotencyKey: key() });
    const payKey = key('pay');
    const paid = await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey });
    expect(paid.queueTokenExpired).toBe(true);
    expect((await fan.queue.status.query({})).status).toBe('EXPIRED');
    expect((await client(api.url, { userId: b, queueToken: tb.token }).queue.status.query({})).status).toBe('ACTIVE');
    const replay = await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey });
    expect(replay.paymentId).toBe(paid.paymentId);
    // Without the replay key the expired token is refused.
    await expectAppError(fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'TOKEN_EXPIRED');
  });

  it('retrying an old payment never expires the payer’s newer token (only the token that paid)', async () => {
    const sale = await seedSale(api.url, { users: 1, balance: 1_000_000 });
    const u = sale.userIds[0]!;
    const first = await client(api.url, { userId: u }).queue.enter.mutate({ concertId: sale.concertId });
    const withFirst = client(api.url, { userId: u, queueToken: first.token });
    const r1 = await withFirst.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [1], idempotencyKey: key() });
    const payKey = key('pay');
    const paid = await withFirst.payments.pay.mutate({ reservationId: r1.reservationId, idempotencyKey: payKey });
    expect(paid.queueTokenExpired).toBe(true);
    // Back in line for more seats: a new token, ACTIVE, and a hold made with it.
    const second = await client(api.url, { userId: u }).queue.enter.mutate({ concertId: sale.concertId });
    expect(second.status).toBe('ACTIVE');
    expect(second.token).not.toBe(first.token);
    const withSecond = client(api.url, { userId: u, queueToken: second.token });
    const r2 = await withSecond.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [2], idempotencyKey: key() });
    // The first payment retried with its key, with the old token and with the new one.
    for (const retry of [withFirst, withSecond]) {
      const replay = await retry.payments.pay.mutate({ reservationId: r1.reservationId, idempotencyKey: payKey });
      expect(replay).toEqual(paid);
      expect((await admin(api.url).admin.queue.stats.query({ concertId: sale.concertId })).active).toBe(1);
    }
    // The new token still works: the second hold is paid with it, and only then is it spent.
    const paid2 = await withSecond.payments.pay.mutate({ reservationId: r2.reservationId, idempotencyKey: key() });
    expect(paid2.queueTokenExpired).toBe(true);
    expect((await admin(api.url).admin.queue.stats.query({ concertId: sale.concertId })).active).toBe(0);
  });

  it('answers queue.status identically on the fast path (plain GET) and through tRPC (batched)', async () => {
    const sale = await seedSale(api.url, { users: 1 });
    const u = sale.userIds[0]!;
    await admin(api.url).admin.queue.configure.mutate({ concertId: sale.concertId, paused: true });
    const t = await client(api.url, { userId: u }).queue.enter.mutate({ concertId: sale.concertId });
    const headers = { 'x-user-id': String(u), 'x-queue-token': t.token };
    clock.advance(10_000);
    const plain = await fetch(`${api.url}/trpc/queue.status`, { headers });
    clock.advance(10_000);
    const input = encodeURIComponent(JSON.stringify({ 0: { json: {} } }));
    const batched = await fetch(`${api.url}/trpc/queue.status?batch=1&input=${input}`, { headers });
    expect([plain.status, batched.status]).toEqual([200, 200]);
    expect(plain.headers.get('content-type')).toBe(batched.headers.get('content-type'));
    const one = await plain.json();
    const [two] = (await batched.json()) as unknown[];
    expect(one).toEqual(two);
    expect((one as { result: { data: { json: { status: string; position: number } } } }).result.data.json).toMatchObject({ status: 'WAITING', position: 1 });
    // Errors take the tRPC path and keep its shape.
    const bad = await fetch(`${api.url}/trpc/queue.status`, { headers: { ...headers, 'x-queue-token': 'forged' } });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: { json: { data: { appCode: string } } } }).error.json.data.appCode).toBe('TOKEN_INVALID');
    const limited = await fetch(`${api.url}/trpc/queue.status`, { headers });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).not.toBeNull();
  });

  it('never serves a cached seat map read before a change, even after Redis lost its data', async () => {
    const sale = await seedSale(api.url, { users: 1 });
    await admin(api.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 100 });
    const t = await client(api.url, { userId: sale.userIds[0]! }).queue.enter.mutate({ concertId: sale.concertId });
    const fan = client(api.url, { userId: sale.userIds[0]!, queueToken: t.token });
    const seat1 = async () => (await fan.concerts.seats.query({ scheduleId: sale.scheduleId })).seats[0]!.status;
    expect(await seat1()).toBe('AVAILABLE');
    expect(await seat1()).toBe('AVAILABLE'); // now cached
    await fan.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [1], idempotencyKey: key() });
    // A Redis restarted without persistence: the seat-map versions (and their epoch) are gone.
    const raw = createRedis(REDIS_URL);
    await waitForRedis(raw, 3_000);
    await raw.del(`${redis.REDIS_KEY_PREFIX}{q:${sale.concertId}}:seatmaps`);
    raw.disconnect();
    expect(await seat1()).toBe('HELD');
    expect(await seat1()).toBe('HELD');
  });

  it('tells a waiting user position, people ahead, an ETA from the observed turnover, and when to poll', async () => {
    const sale = await seedSale(api.url, { users: 60 });
    const a = admin(api.url);
    await a.admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 10 });
    const tickets = [];
    for (const userId of sale.userIds) tickets.push(await client(api.url, { userId }).queue.enter.mutate({ concertId: sale.concertId }));
    const stats = await a.admin.queue.stats.query({ concertId: sale.concertId });
    expect([stats.active, stats.waiting, stats.admittedLastMinute, stats.admittedTotal, stats.state]).toEqual([10, 50, 10, 10, 'OPEN']);
    const near = tickets[10]!;
    const far = tickets[59]!;
    expect([near.status, near.position, near.aheadCount]).toEqual(['WAITING', 1, 0]);
    expect([far.position, far.aheadCount]).toEqual([50, 49]);
    // Nobody has left the 10 slots in their first 20 s of a 120 s TTL: with no departure yet the
    // ETA rests on the prior (etaCurve, coldThink: as long again as the oldest age watched, here
    // 20 s, at least 10 s, at most a quarter of the TTL), each holder keeping the slot for anything
    // up to its lapse 100 s on. Place 1 waits for the first of the ten to go (4.4 s), place 50 for
    // five rounds of them, each the 20 s watched plus the prior's (218.7 s). (221.5 s and 4.3 s
    // before 2026-12-06's refills' renewal function and pseudo-holders; 20.4 s and 550 s with the prior of a
    // quarter of the TTL that every watched second lengthened, before 2026-12-04's coldThink;
    // 35.9 s and 571.4 s before ETA_PRIOR_HAZARD.)
    clock.advance(20_000);
    const farNow = await client(api.url, { userId: sale.userIds[59]!, queueToken: far.token }).queue.status.query({});
    const nearNow = await client(api.url, { userId: sale.userIds[10]!, queueToken: near.token }).queue.status.query({});
    expect([farNow.etaSeconds, nearNow.etaSeconds]).toEqual([218.7, 4.4]);
    expect(nearNow.pollAfterMs).toBeLessThan(farNow.pollAfterMs);
    expect(farNow.pollAfterMs).toBeLessThanOrEqual(20_000); // a third of the 60 s idle timeout
    const paused = await a.admin.queue.configure.mutate({ concertId: sale.concertId, paused: true });
    expect([paused.paused, paused.state]).toEqual([true, 'PAUSED']);
    clock.advance(20_000);
    const whilePaused = await client(api.url, { userId: sale.userIds[59]!, queueToken: far.token }).queue.status.query({});
    expect(whilePaused.etaSeconds).toBeNull();
    expect(whilePaused.position).toBe(50);
  });
});

describe('waiting room across two API processes on one Redis', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let p1: SpawnedApi;
  let p2: SpawnedApi;
  beforeAll(async () => {
    db = await createTestDatabase();
    // These fans poll every 50 ms on purpose (to catch over-admission), so poll limits are off here.
    const env = testEnv(db.url, { ...redisEnv(), QUEUE_MAX_ACTIVE: '5', RATE_LIMITS: 'off' });
    p1 = await spawnApi(env);
    p2 = await spawnApi(env);
  });
  afterAll(async () => {
    await p1?.stop();
    await p2?.stop();
    await db?.drop();
  });

  it('after a leave or a payment on one process, the head is ACTIVE within a second as seen from the other', async () => {
    const sale = await seedSale(p1.url, { users: 4, balance: 1_000_000 });
    await admin(p1.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 1 });
    const [a, b, c] = sale.userIds as [number, number, number];
    const ta = await client(p1.url, { userId: a }).queue.enter.mutate({ concertId: sale.concertId });
    const tb = await client(p2.url, { userId: b }).queue.enter.mutate({ concertId: sale.concertId });
    const tc = await client(p2.url, { userId: c }).queue.enter.mutate({ concertId: sale.concertId });
    expect([ta.status, tb.status, tc.status]).toEqual(['ACTIVE', 'WAITING', 'WAITING']);

    await client(p1.url, { userId: a, queueToken: ta.token }).queue.leave.mutate({});
    const bSeats = client(p2.url, { userId: b, queueToken: tb.token });
    const afterLeave = await within(1_000, () => bSeats.concerts.seats.query({ scheduleId: sale.scheduleId }).then(() => true, () => false));

    const r = await bSeats.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [5], idempotencyKey: key() });
    await client(p1.url, { userId: b, queueToken: tb.token }).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    const cSeats = client(p2.url, { userId: c, queueToken: tc.token });
    const afterPay = await within(1_000, () => cSeats.concerts.seats.query({ scheduleId: sale.scheduleId }).then(() => true, () => false));
    expect(afterLeave).toBeLessThan(1_000);
    expect(afterPay).toBeLessThan(1_000);
  });

  it('a cached seat map is never stale after a hold or payment is confirmed, whichever process cached it', async () => {
    const sale = await seedSale(p1.url, { users: 2, balance: 1_000_000 });
    await admin(p1.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 100 });
    const [a, b] = sale.userIds as [number, number];
    const ta = await client(p1.url, { userId: a }).queue.enter.mutate({ concertId: sale.concertId });
    const tb = await client(p2.url, { userId: b }).queue.enter.mutate({ concertId: sale.concertId });
    const onP1 = client(p1.url, { userId: a, queueToken: ta.token });
    const onP2 = client(p2.url, { userId: b, queueToken: tb.token });
    const seat = (map: { seats: Array<{ seatNumber: number; status: string }> }, n: number) => map.seats.find((s) => s.seatNumber === n)!.status;
    for (let n = 1; n <= 5; n++) {
      // Both processes have the map cached, then a hold lands on one and is read from the other at once.
      expect(seat(await onP1.concerts.seats.query({ scheduleId: sale.scheduleId }), n)).toBe('AVAILABLE');
      expect(seat(await onP2.concerts.seats.query({ scheduleId: sale.scheduleId }), n)).toBe('AVAILABLE');
      const holder = n % 2 ? onP1 : onP2;
      const reader = n % 2 ? onP2 : onP1;
      await holder.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [n], idempotencyKey: key() });
      expect(seat(await reader.concerts.seats.query({ scheduleId: sale.scheduleId }), n)).toBe('HELD');
      expect(seat(await holder.concerts.seats.query({ scheduleId: sale.scheduleId }), n)).toBe('HELD');
    }
    const [mine] = (await onP1.reservations.mine.query({ status: 'HELD' })).items;
    await onP1.payments.pay.mutate({ reservationId: mine!.reservationId, idempotencyKey: key() });
    expect(seat(await onP2.concerts.seats.query({ scheduleId: sale.scheduleId }), mine!.seats[0]!.seatNumber)).toBe('SOLD');
  });

  it('a slot freed by an ACTIVE token reaching activeUntil goes to the head within a second, with no request for it', async () => {
    const sale = await seedSale(p1.url, { users: 2 });
    await admin(p1.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 1, activeTtlSeconds: 1 });
    const ta = await client(p1.url, { userId: sale.userIds[0]! }).queue.enter.mutate({ concertId: sale.concertId });
    const tb = await client(p2.url, { userId: sale.userIds[1]! }).queue.enter.mutate({ concertId: sale.concertId });
    expect(tb.status).toBe('WAITING');
    // Observe only through admin stats (no status polls by b, which would settle the line themselves).
    const a = admin(p2.url);
    const waited = await within(2_500, async () => (await a.admin.queue.stats.query({ concertId: sale.concertId })).admittedTotal === 2);
    expect(waited).toBeLessThan(2_000); // 1 s TTL + at most ~1 s to be admitted
    expect(ta.activeUntil).not.toBeNull();
  });

  it('never exceeds maxActive while enters, leaves, payments and expiries run at once on both processes', async () => {
    const sale = await seedSale(p1.url, { users: 40, balance: 1_000_000, seatCount: 200 });
    await admin(p1.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 5, activeTtlSeconds: 2 });
    const urls = [p1.url, p2.url];
    let maxSeen = 0;
    let sampling = true;
    const sampler = (async () => {
      const a = admin(p2.url);
      while (sampling) {
        const s = await a.admin.queue.stats.query({ concertId: sale.concertId });
        maxSeen = Math.max(maxSeen, s.active);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    let paidCount = 0;
    /** Enters and polls until ACTIVE (entering again if the ticket expired first). */
    const admitted = async (userId: number, i: number) => {
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        const t = await client(urls[i % 2]!, { userId }, { batch: false }).queue.enter.mutate({ concertId: sale.concertId });
        const fan = client(urls[(i + 1) % 2]!, { userId, queueToken: t.token }, { batch: false });
        for (let s = t; s.status !== 'EXPIRED'; s = await fan.queue.status.query({})) {
          if (s.status === 'ACTIVE') return fan;
          if (Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 50)); // a client's polling pace, not a wait for a condition
        }
      }
      throw new Error(`user ${userId} was never admitted`);
    };
    await Promise.all(
      sale.userIds.map(async (userId, i) => {
        if (i % 3 !== 1) {
          const fan = await admitted(userId, i);
          // Leave, or abandon (the 2 s TTL frees the slot).
          if (i % 3 === 0) await fan.queue.leave.mutate({});
          return;
        }
        // A buyer whose 2 s slot ran out before the payment (a loaded machine) enters again and
        // finishes, as a real client does; the hold is kept by its idempotency key.
        const holdKey = key();
        const payKey = key();
        for (let attempt = 0; ; attempt++) {
          const fan = await admitted(userId, i);
          try {
            const r = await fan.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [i + 1], idempotencyKey: holdKey });
            await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey });
            paidCount++;
            return;
          } catch (err) {
            if (attempt >= 20 || !(err instanceof TRPCClientError) || (err.data as { appCode?: string } | undefined)?.appCode !== 'TOKEN_EXPIRED') throw err;
          }
        }
      }),
    );
    sampling = false;
    await sampler;
    expect(maxSeen).toBeLessThanOrEqual(5);
    expect(maxSeen).toBe(5);
    expect(paidCount).toBe(13);
    const audit = await admin(p1.url).admin.audit.query({});
    expect(audit.ok).toBe(true);
  }, 180_000);
});
