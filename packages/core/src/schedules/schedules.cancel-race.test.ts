import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { oneWaitsOnALock, useCoreWithSessions } from '../../../../test/core-suite.ts';

/**
 * A refund that waited on a payment's lock refunds what that payment sold, so its time must come
 * after the payment's: a refund stamped before the payment it returns (refundedAt < paidAt, the
 * REFUND ledger entry and the reservation.refunded event dated before the PAYMENT and the
 * payment.completed ones) tells a receiver that sorts by time the money came back before it left.
 */
describe('a refund that waited for a payment of its reservation', () => {
  const s = useCoreWithSessions();

  /** Waits until n sessions of the database wait on a lock. */
  const waiters = (n: number) =>
    vi.waitFor(
      async () => {
        const { rows } = await s.watcher.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
        expect(rows[0].n).toBe(n);
      },
      { timeout: 10_000, interval: 20 },
    );

  /** A fan holding seat 1 of a new show, with a payment of it that waits (the fan's row is locked here). */
  async function paymentWaiting() {
    const { core, sql } = s;
    const c = await core.concerts.create({
      title: `Race ${randomUUID()}`,
      venue: '',
      schedules: [{ startsAt: new Date(Date.now() + 7 * 86_400_000), bookingOpensAt: new Date(Date.now() - 1000), seatCount: 4 }],
    });
    const scheduleId = c.schedules[0]!.scheduleId;
    const fan = (await core.admin.createUser({ name: 'fan', initialBalance: 1_000_000 })).userId;
    const gate = core.queue.gate(fan, (await core.queue.enter(fan, c.concertId)).token);
    await core.concerts.seats(scheduleId, gate);
    const held = await core.reservations.hold(fan, { scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, gate);
    // The payment locks the reservation, then waits for the fan's row.
    await sql.query('BEGIN');
    await sql.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [fan]);
    const pay = core.payments.pay(fan, { reservationId: held.reservationId, idempotencyKey: randomUUID() }, gate);
    await oneWaitsOnALock(s.watcher);
    return { scheduleId, fan, reservationId: held.reservationId, pay };
  }

  /** Lets the payment go after a while, then reads what the reservation and the fan's ledger say. */
  async function release<T>(fan: number, reservationId: string, pay: Promise<unknown>, refund: Promise<T>) {
    await waiters(2); // the refund waits for the payment's lock on the reservation
    await new Promise((r) => setTimeout(r, 50));
    await s.sql.query('COMMIT');
    await pay;
    const refunded = await refund;
    const r = await s.core.reservations.get(fan, reservationId);
    const { rows: ledger } = await s.sql.query(`SELECT kind, created_at FROM ledger_entries WHERE reservation_id = $1 ORDER BY id`, [reservationId]);
    const { rows: events } = await s.sql.query(`SELECT type, created_at FROM outbox_events WHERE reservation_id = $1 ORDER BY seq`, [reservationId]);
    return { refunded, r, ledger, events };
  }

  const inOrder = (times: Date[]) => times.every((t, i) => i === 0 || t.getTime() >= times[i - 1]!.getTime());

  it("when its show is cancelled: refundedAt, the ledger and the events come after the payment's", async () => {
    const { scheduleId, fan, reservationId, pay } = await paymentWaiting();
    const { refunded, r, ledger, events } = await release(fan, reservationId, pay, s.core.schedules.cancel(scheduleId));
    expect(refunded).toEqual({ scheduleId, refunded: 1, released: 0 });
    expect(r.status).toBe('REFUNDED');
    expect(r.refundedAt!.getTime()).toBeGreaterThanOrEqual(r.paidAt!.getTime());
    expect(ledger.map((e) => e.kind)).toEqual(['PAYMENT', 'REFUND']);
    expect(inOrder(ledger.map((e) => e.created_at))).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['reservation.held', 'payment.completed', 'reservation.refunded']);
    expect(inOrder(events.map((e) => e.created_at))).toBe(true);
  });

  it("by an operator: refundedAt comes after the payment's", async () => {
    const { fan, reservationId, pay } = await paymentWaiting();
    const { refunded, r, ledger } = await release(fan, reservationId, pay, s.core.refunds.adminRefund(reservationId));
    expect(refunded.status).toBe('REFUNDED');
    expect(r.refundedAt!.getTime()).toBeGreaterThanOrEqual(r.paidAt!.getTime());
    expect(inOrder(ledger.map((e) => e.created_at))).toBe(true);
  });
});

/**
 * A show's cancellation refunds its buyers one by one, each under the buyer's row lock. A buyer
 * paying for another show at that moment may get the row first: the cancellation's refund then
 * waits, and must be dated after that payment, or the buyer's ledger (its entries in the order
 * they were written, each balanceAfter following the one before) reads a REFUND before the
 * PAYMENT written ahead of it.
 */
describe("a show's cancellation refunding a buyer who is paying for another show", () => {
  const s = useCoreWithSessions();

  it('dates the refund after the payment that had the buyer first', async () => {
    const { core, sql } = s;
    const later = (days: number) => new Date(Date.now() + days * 86_400_000);
    const c = await core.concerts.create({
      title: `Race ${randomUUID()}`,
      venue: '',
      schedules: [
        { startsAt: later(7), bookingOpensAt: new Date(Date.now() - 1000), seatCount: 4 },
        { startsAt: later(8), bookingOpensAt: new Date(Date.now() - 1000), seatCount: 4 },
      ],
    });
    const [cancelled, other] = c.schedules.map((x) => x.scheduleId) as [number, number];
    const fan = (await core.admin.createUser({ name: 'fan', initialBalance: 1_000_000 })).userId;
    const turn = async () => {
      const gate = core.queue.gate(fan, (await core.queue.enter(fan, c.concertId)).token);
      await core.concerts.seats(cancelled, gate);
      return gate;
    };
    const first = await turn();
    const bought = await core.reservations.hold(fan, { scheduleId: cancelled, seatNumbers: [1], idempotencyKey: randomUUID() }, first);
    await core.payments.pay(fan, { reservationId: bought.reservationId, idempotencyKey: randomUUID() }, first);
    const second = await turn();
    const held = await core.reservations.hold(fan, { scheduleId: other, seatNumbers: [1], idempotencyKey: randomUUID() }, second);

    await sql.query('BEGIN');
    await sql.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [fan]);
    // The payment asks for the buyer's row first, then the cancellation's refund.
    const pay = core.payments.pay(fan, { reservationId: held.reservationId, idempotencyKey: randomUUID() }, second);
    await oneWaitsOnALock(s.watcher);
    const cancel = core.schedules.cancel(cancelled);
    await vi.waitFor(
      async () => {
        const { rows } = await s.watcher.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
        expect(rows[0].n).toBe(2);
      },
      { timeout: 10_000, interval: 20 },
    );
    await new Promise((r) => setTimeout(r, 50));
    await sql.query('COMMIT');
    await pay;
    expect(await cancel).toEqual({ scheduleId: cancelled, refunded: 1, released: 0 });

    const { rows: ledger } = await sql.query(`SELECT kind, reservation_id, created_at FROM ledger_entries WHERE user_id = $1 ORDER BY id`, [fan]);
    expect(ledger.map((e) => [e.kind, e.reservation_id])).toEqual([
      ['CHARGE', null],
      ['PAYMENT', bought.reservationId],
      ['PAYMENT', held.reservationId],
      ['REFUND', bought.reservationId],
    ]);
    const times = ledger.map((e) => (e.created_at as Date).getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const r = await core.reservations.get(fan, bought.reservationId);
    expect(r.refundedAt!.getTime()).toBeGreaterThanOrEqual((await core.reservations.get(fan, held.reservationId)).paidAt!.getTime());
  });
});
