import pg from 'pg';
import superjson from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, key, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

/**
 * A hold's transaction goes to PostgreSQL in one round trip (db/pipeline.ts WITH_NEXT): its
 * event and the answer its idempotency key keeps are built by the database from what the hold
 * wrote (reservations.repository heldSubject), not from the answer this process returns. So the
 * two must agree to the millisecond and the field: a replay answers exactly as the first call
 * did, and receivers read the reservation the fan was shown. With the real clock: the
 * database's times carry microseconds, which both sides cut to milliseconds.
 */
describe('a hold and a payment in one round trip: the key and the event say what the answer says', () => {
  const suite = useApi(BOOKING_ENV);
  const book = booking(() => suite.api.url);
  let sql: InstanceType<typeof pg.Client>;

  beforeAll(async () => {
    sql = new pg.Client({ connectionString: suite.db.url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
  });

  it('for every hold and payment: the replay equals the answer, field by field and in order, and the event carries it', async () => {
    const a = admin(suite.api.url);
    const now = Date.now();
    const c = await a.admin.concerts.create.mutate({
      title: `One "trip" — 콘서트 \\ ${key()}`,
      venue: 'Hall',
      schedules: [
        {
          // A start with milliseconds of its own: it is cut to the hold's expiry below.
          startsAt: new Date(now + 7 * 86_400_000 + 123),
          bookingOpensAt: new Date(now - 3_600_000),
          seatCount: 40,
          tiers: [
            { grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 10 },
            { grade: 'A', price: 60_001, fromSeat: 11, toSeat: 40 },
          ],
        },
      ],
    });
    const scheduleId = c.schedules[0]!.scheduleId;
    const holds = Array.from({ length: 10 }, (_, i) => [12 + i * 2, 1 + i, 11 + i * 2].slice(0, 1 + (i % 3)));
    for (const [i, seatNumbers] of holds.entries()) {
      const { userId } = await a.admin.users.create.mutate({ name: `one trip ${i}`, initialBalance: 1_000_003 + i });
      const fan = await book.forSchedule(userId, scheduleId);
      const idempotencyKey = key();
      const first = await fan.reservations.hold.mutate({ scheduleId, seatNumbers, idempotencyKey });
      expect(first.seats.map((s) => s.seatNumber)).toEqual([...seatNumbers].sort((x, y) => x - y));

      const replay = await fan.reservations.hold.mutate({ scheduleId, seatNumbers, idempotencyKey });
      expect(replay).toEqual(first);
      expect(Object.keys(replay)).toEqual(Object.keys(first));

      // What the key keeps is superjson's text of the answer: the same tree, the same meta.
      const { rows: keys } = await sql.query<{ response: string }>(
        `SELECT response FROM idempotency_keys WHERE user_id = $1 AND procedure = 'reservations.hold' AND key = $2`,
        [userId, idempotencyKey],
      );
      const stored = JSON.parse(keys[0]!.response) as { json: Record<string, unknown> };
      expect(stored).toEqual(JSON.parse(superjson.stringify(first)));
      expect(Object.keys(stored.json)).toEqual(Object.keys(first));

      // The event: the reservation as answered, with its user (reservationData).
      const { rows: events } = await sql.query<{ data: unknown; created_at: Date; ordering_key: string; schedule_id: number }>(
        `SELECT data, created_at, ordering_key, schedule_id::int FROM outbox_events WHERE reservation_id = $1 AND type = 'reservation.held'`,
        [first.reservationId],
      );
      expect(events).toHaveLength(1);
      expect(events[0]!.data).toEqual(JSON.parse(JSON.stringify({ reservation: { ...first, userId } })));
      expect(events[0]!.created_at.getTime()).toBe(first.createdAt.getTime());
      expect(events[0]!.ordering_key).toBe(first.reservationId);
      expect(events[0]!.schedule_id).toBe(scheduleId);

      // Paid the same way (payments.pay with a queue token: one round trip too).
      if (i % 2 === 1) continue;
      const payKey = key();
      const paid = await fan.payments.pay.mutate({ reservationId: first.reservationId, idempotencyKey: payKey });
      const again = await fan.payments.pay.mutate({ reservationId: first.reservationId, idempotencyKey: payKey });
      expect(again).toEqual(paid);
      const { rows: payKeys } = await sql.query<{ response: string }>(
        `SELECT response FROM idempotency_keys WHERE user_id = $1 AND procedure = 'payments.pay' AND key = $2`,
        [userId, payKey],
      );
      const kept = JSON.parse(payKeys[0]!.response) as { json: Record<string, unknown>; meta: unknown };
      const { queueTokenExpired: _, ...answer } = paid;
      const tokenId = (kept.json.paidWith as { tokenId?: unknown } | undefined)?.tokenId;
      expect(typeof tokenId).toBe('string');
      expect(kept).toEqual({
        json: { ...JSON.parse(JSON.stringify(answer)), concertId: c.concertId, scheduleId, paidWith: { concertId: c.concertId, tokenId } },
        meta: { values: { paidAt: ['Date'] }, v: 1 },
      });
      expect(Object.keys(kept.json)).toEqual([...Object.keys(answer), 'concertId', 'scheduleId', 'paidWith']);
      const { rows: payEvents } = await sql.query<{ data: unknown; created_at: Date }>(
        `SELECT data, created_at FROM outbox_events WHERE reservation_id = $1 AND type = 'payment.completed'`,
        [first.reservationId],
      );
      const now = await fan.reservations.get.query({ reservationId: first.reservationId });
      expect(payEvents).toHaveLength(1);
      expect(payEvents[0]!.data).toEqual(
        JSON.parse(
          JSON.stringify({
            reservation: { ...now, userId },
            payment: { paymentId: paid.paymentId, amount: paid.amount, paidAt: paid.paidAt, balanceAfter: paid.balanceAfter },
          }),
        ),
      );
      expect(payEvents[0]!.created_at.getTime()).toBe(paid.paidAt.getTime());
    }
  });
});
