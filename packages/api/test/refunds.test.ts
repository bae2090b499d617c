import { FakeClock } from '@concert/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { admin, client, expectAppError, key, outcome, seedSale, tally, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

describe('refunds', () => {
  const clock = new FakeClock();
  const suite = useApi({ ...BOOKING_ENV, REFUND_CUTOFF_HOURS: '24', CHARGE_MONTHLY_LIMIT: '300000' }, { clock });
  const book = booking(() => suite.api.url);

  const fan = (userId: number) => client(suite.api.url, { userId });
  const ops = () => admin(suite.api.url);
  const buy = async (userId: number, scheduleId: number, seatNumbers: number[]) => {
    const r = await (await book.forSchedule(userId, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers, idempotencyKey: key() });
    await (await book.forReservation(userId, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    return r;
  };
  const seatStatus = async (userId: number, scheduleId: number) =>
    (await (await book.forSchedule(userId, scheduleId)).concerts.seats.query({ scheduleId })).seats.map((s) => s.status);
  const sql = async <T,>(text: string, params: unknown[] = []): Promise<T[]> => {
    const c = new pg.Client({ connectionString: suite.db.url });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as T[];
    } finally {
      await c.end();
    }
  };

  it('a buyer refund credits a REFUND entry, voids the tickets, frees the seats and reads REFUNDED', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 4, balance: 500_000 });
    const [u, other] = userIds as [number, number];
    const r = await buy(u, scheduleId, [1, 2]);
    expect(await seatStatus(other, scheduleId)).toEqual(['SOLD', 'SOLD', 'AVAILABLE', 'AVAILABLE']);
    clock.advance(1000);
    const idempotencyKey = key();
    const refunded = await fan(u).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey });
    expect(refunded).toMatchObject({ reservationId: r.reservationId, status: 'REFUNDED', refundedAt: clock.now(), totalPrice: 200_000 });
    expect(refunded.paidAt).not.toBeNull();
    expect((await fan(u).balance.get.query({})).balance).toBe(500_000);
    const [last] = (await fan(u).balance.history.query({ limit: 1 })).entries;
    expect(last).toMatchObject({ kind: 'REFUND', amount: 200_000, balanceAfter: 500_000, reservationId: r.reservationId });
    expect(await seatStatus(other, scheduleId)).toEqual(['AVAILABLE', 'AVAILABLE', 'AVAILABLE', 'AVAILABLE']);
    const tickets = await sql<{ voided_at: Date | null }>('SELECT voided_at FROM tickets WHERE reservation_id = $1', [r.reservationId]);
    expect(tickets).toHaveLength(2);
    expect(tickets.every((t) => t.voided_at !== null)).toBe(true);
    // The same key replays; another key finds nothing left to refund.
    expect(await fan(u).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey })).toEqual(refunded);
    await expectAppError(fan(u).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'NOT_REFUNDABLE');
    await expectAppError(ops().admin.reservations.refund.mutate({ reservationId: r.reservationId }), 'NOT_REFUNDABLE');
    expect((await fan(u).balance.get.query({})).balance).toBe(500_000);
    // The freed seats sell again, and the refunded buyer's tickets do not count toward the limit.
    await buy(other, scheduleId, [1, 2]);
    await buy(u, scheduleId, [3, 4]);
  });

  it('only PAID reservations are refundable; someone else’s reads as missing', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 4 });
    const [u, other] = userIds as [number, number];
    const held = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    await expectAppError(fan(u).reservations.refund.mutate({ reservationId: held.reservationId, idempotencyKey: key() }), 'NOT_REFUNDABLE');
    await fan(u).reservations.cancel.mutate({ reservationId: held.reservationId });
    await expectAppError(fan(u).reservations.refund.mutate({ reservationId: held.reservationId, idempotencyKey: key() }), 'NOT_REFUNDABLE');
    const paid = await buy(u, scheduleId, [2]);
    await expectAppError(fan(other).reservations.refund.mutate({ reservationId: paid.reservationId, idempotencyKey: key() }), 'RESERVATION_NOT_FOUND');
    await expectAppError(fan(u).reservations.refund.mutate({ reservationId: '00000000-0000-4000-8000-000000000000', idempotencyKey: key() }), 'RESERVATION_NOT_FOUND');
    await expectAppError(fan(u).reservations.refund.mutate({ reservationId: 'nope', idempotencyKey: key() }), 'INVALID_INPUT');
    await expectAppError(ops().admin.reservations.refund.mutate({ reservationId: held.reservationId }), 'NOT_REFUNDABLE');
  });

  it('the buyer’s window closes REFUND_CUTOFF_HOURS before the show; operators refund any time', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 4, balance: 500_000 });
    const [u] = userIds as [number];
    const a = await buy(u, scheduleId, [1]);
    const b = await buy(u, scheduleId, [2]);
    const startsAt = a.startsAt.getTime();
    clock.set(new Date(startsAt - 24 * 3600_000 - 1000));
    await fan(u).reservations.refund.mutate({ reservationId: a.reservationId, idempotencyKey: key() });
    clock.set(new Date(startsAt - 24 * 3600_000));
    const closed = await expectAppError(fan(u).reservations.refund.mutate({ reservationId: b.reservationId, idempotencyKey: key() }), 'REFUND_WINDOW_CLOSED');
    expect(closed.data?.httpStatus).toBe(412);
    clock.set(new Date(startsAt + 3600_000));
    expect((await ops().admin.reservations.refund.mutate({ reservationId: b.reservationId })).status).toBe('REFUNDED');
    expect((await fan(u).balance.get.query({})).balance).toBe(500_000);
    clock.set(new Date());
  });

  it('refunds do not count toward the monthly charge cap', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 4, balance: 0 });
    const [u] = userIds as [number];
    await fan(u).balance.charge.mutate({ amount: 300_000, idempotencyKey: key() });
    const r = await buy(u, scheduleId, [1, 2]);
    await fan(u).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    expect((await fan(u).balance.get.query({})).balance).toBe(300_000);
    // The cap counts the user's own top-ups only: it is used up, refund or not.
    await expectAppError(fan(u).balance.charge.mutate({ amount: 1, idempotencyKey: key() }), 'CHARGE_LIMIT_EXCEEDED');
  });

  it('20 refunds of one reservation at once, different keys: one credit', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 4, balance: 500_000 });
    const [u] = userIds as [number];
    const r = await buy(u, scheduleId, [1, 2, 3]);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        outcome(
          i % 4 === 0
            ? ops().admin.reservations.refund.mutate({ reservationId: r.reservationId })
            : client(suite.api.url, { userId: u }, { batch: false }).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key() }),
        ),
      ),
    );
    expect(tally(outcomes)).toEqual({ OK: 1, NOT_REFUNDABLE: 19 });
    expect((await fan(u).balance.get.query({})).balance).toBe(500_000);
    const refunds = await sql<{ n: number }>('SELECT count(*)::int AS n FROM refunds WHERE reservation_id = $1', [r.reservationId]);
    expect(refunds[0]!.n).toBe(1);
  });

  it('the database refuses a second refund of one payment, whatever the code does', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 4 });
    const [u] = userIds as [number];
    const r = await buy(u, scheduleId, [1]);
    await fan(u).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    await expect(
      sql(
        `INSERT INTO refunds (id, payment_id, reservation_id, user_id, amount, reason, created_at)
         SELECT gen_random_uuid(), payment_id, reservation_id, user_id, amount, 'ADMIN', now() FROM refunds WHERE reservation_id = $1`,
        [r.reservationId],
      ),
    ).rejects.toThrow(/duplicate key/);
    await sql(`UPDATE tickets SET voided_at = NULL WHERE reservation_id = $1`, [r.reservationId]);
    // A live ticket on a REFUNDED reservation is what the audit exists to catch.
    const broken = await ops().admin.audit.query({});
    expect(broken.checks.filter((c) => !c.ok).map((c) => c.name)).toContain('every REFUNDED reservation has one refund of its amount and no live ticket');
    await sql(`UPDATE tickets SET voided_at = now() WHERE reservation_id = $1`, [r.reservationId]);
  });

  it('a refunded seat goes to the earliest entry it fits, however many larger entries wait before it', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 2, balance: 500_000 });
    const [a, b] = userIds as [number, number];
    const paid = await buy(a, scheduleId, [1]);
    await buy(b, scheduleId, [2]);
    // 120 fans wait for two seats together, then one fan for a single seat.
    const pairs = await Promise.all(Array.from({ length: 120 }, (_, i) => ops().admin.users.create.mutate({ name: `pair ${i}` })));
    for (const p of pairs) await fan(p.userId).waitlist.join.mutate({ scheduleId, seatCount: 2 });
    const single = (await ops().admin.users.create.mutate({ name: 'single' })).userId;
    expect(await fan(single).waitlist.join.mutate({ scheduleId, seatCount: 1 })).toMatchObject({ status: 'WAITING', position: 121 });
    await fan(a).reservations.refund.mutate({ reservationId: paid.reservationId, idempotencyKey: key() });
    // Contract: the earliest WAITING entry whose seatCount fits gets the offer. Only the first 100
    // entries were read, none of which fits one seat, and the seat went back on sale.
    expect((await fan(single).waitlist.mine.query({})).items[0]).toMatchObject({ status: 'OFFERED', offer: { seatNumbers: [1] } });
    expect((await fan(pairs[0]!.userId).waitlist.mine.query({})).items[0]).toMatchObject({ status: 'WAITING', position: 1 });
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await ops().admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
  });
});
