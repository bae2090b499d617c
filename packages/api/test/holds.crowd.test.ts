import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { admin, client, createTestDatabase, deleteRedisKeys, key, outcome, recordStatements, REDIS_URL, startApi, type TestApi, type TestDatabase, testEnv } from '../../../test/harness.ts';

/**
 * A crowd racing for a seat this process has just sold is turned away by the hold's check of the
 * cached seat map, one read of the idempotency key each, without a transaction. The check takes a
 * map that has missed claims (a storm of holds on distinct seats would otherwise load the whole
 * map once per hold), so it did not know of the claim it had just committed itself: all 5,997
 * losers of the benchmark's 6,000 holds of one seat went on to claim the seat, BEGIN to ROLLBACK,
 * and the race took 1.11 times as long as 2,000 holds of distinct seats. This process now
 * remembers its own claims beside the map until a map loaded after them replaces it.
 */
describe('a crowd holding a seat this process has just sold', () => {
  const prefix = `crowd${randomBytes(4).toString('hex')}:`;
  let db: TestDatabase;
  let api: TestApi;
  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix, QUEUE_MAX_ACTIVE: '1000', RATE_LIMITS: 'off', HOLD_TTL_SECONDS: '8' }), { background: false });
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
    await deleteRedisKeys(prefix);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function fans(concertId: number, n: number) {
    const a = admin(api.url);
    return Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const { userId } = await a.admin.users.create.mutate({ name: `crowd ${i}`, initialBalance: 1_000_000 });
        const ticket = await client(api.url, { userId }, { batch: false }).queue.enter.mutate({ concertId });
        expect(ticket.status).toBe('ACTIVE');
        return { userId, api: client(api.url, { userId, queueToken: ticket.token }, { batch: false }) };
      }),
    );
  }

  it('is refused from the check, without a transaction; the seat is held again once its hold is cancelled, and once it lapses', { timeout: 60_000 }, async () => {
    const now = Date.now();
    const { concertId, schedules } = await admin(api.url).admin.concerts.create.mutate({
      title: `Crowd ${key()}`,
      schedules: [{ startsAt: new Date(now + 86_400_000), bookingOpensAt: new Date(now - 60_000), seatCount: 10 }],
    });
    const scheduleId = schedules[0]!.scheduleId;
    const [first, winner, ...crowd] = await fans(concertId, 32);
    // The first hold finds no seat-map version yet (and starts one); the winner's check then
    // loads the map and caches it, seat 3 free in it; its claim commits after.
    await first!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [9], idempotencyKey: key('f') });
    const held = await winner!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('w') });

    const sent = recordStatements();
    const outcomes = await Promise.all(crowd.map((f) => outcome(f.api.reservations.hold.mutate({ scheduleId, seatNumbers: [2, 3], idempotencyKey: key('c') }))));
    expect(outcomes).toEqual(crowd.map(() => 'SEAT_UNAVAILABLE'));
    const transactions = sent.filter((s) => /^\s*(begin|start transaction)/i.test(s) || /update\s+"?seats"?\s+set/i.test(s) || /insert into "?idempotency_keys\b/i.test(s));
    console.log(`${crowd.length} holds of a seat this process had sold: ${sent.length} statement(s), ${transactions.length} claim(s) or transaction(s)`);
    expect(transactions).toEqual([]);
    // Seat 2 was not taken: the refusal named seat 3 only, and seat 2 is still free to hold.
    expect(await outcome(crowd[0]!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [2], idempotencyKey: key('c2') }))).toBe('OK');
    // That hold's transaction is seen by the same filter (its BEGIN rides with its first statement).
    expect(sent.filter((s) => /^\s*(begin|start transaction)/i.test(s))).toHaveLength(1);
    vi.restoreAllMocks();

    // Cancelled: the seat is free at once, in this process too (never called taken when it is not).
    await winner!.api.reservations.cancel.mutate({ reservationId: held.reservationId });
    expect(await outcome(crowd[1]!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('again') }))).toBe('OK');

    // Held again by crowd[1]; refused from the check until its 8 s hold lapses (8 s: room for a busy machine between the winner's hold and the crowd's), then held by another.
    expect(await outcome(crowd[2]!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('early') }))).toBe('SEAT_UNAVAILABLE');
    const lapsedAt = Date.now() + 8_000;
    await expect
      .poll(() => outcome(crowd[3]!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key('late') })), { timeout: 20_000, interval: 200 })
      .toBe('OK');
    // Within moments of the lapse: not the 10 s a remembered claim lives at most.
    expect(Date.now() - lapsedAt).toBeLessThan(5_000);
  });
});
