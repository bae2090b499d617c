import { randomUUID } from 'node:crypto';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { oneWaitsOnALock, useCoreWithSessions } from '../../../../test/core-suite.ts';

/**
 * A hold or a payment whose key was taken over while it ran (its lease lapsed and a retry claimed
 * the key): its completion, which rides in the event's statement, finds the key no longer its own,
 * and the whole transaction rolls back, so the retry is the only one to succeed. The call is held
 * up where it would be by a slow database: waiting for the user's row lock, which a session of
 * the test holds while it hands the key to another owner.
 */
describe('an idempotent write whose key was taken over while it ran', () => {
  const s = useCoreWithSessions();

  async function sale() {
    const c = await s.core.concerts.create({
      title: 'Takeover',
      venue: '',
      schedules: [{ startsAt: new Date(Date.now() + 86_400_000), bookingOpensAt: new Date(Date.now() - 1000), seatCount: 4 }],
    });
    const user = (await s.core.admin.createUser({ name: 'fan', initialBalance: 1_000_000 })).userId;
    const ticket = await s.core.queue.enter(user, c.concertId);
    return { scheduleId: c.schedules[0]!.scheduleId, user, gate: s.core.queue.gate(user, ticket.token) };
  }

  /** Runs `call` while the user's row is locked; once it waits on that lock, its key changes owner. */
  async function takenOverWhileWaiting(user: number, key: string, call: () => Promise<unknown>) {
    await s.sql.query('BEGIN');
    await s.sql.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [user]);
    const outcome = call().then(
      () => 'OK',
      (e: { code?: string }) => e.code ?? String(e),
    );
    await oneWaitsOnALock(s.watcher);
    const taken = await s.watcher.query(`UPDATE idempotency_keys SET owner = $2 WHERE key = $1 AND state = 'IN_PROGRESS'`, [key, randomUUID()]);
    expect(taken.rowCount).toBe(1);
    await s.sql.query('COMMIT');
    return outcome;
  }

  it('a hold: refused with IDEMPOTENCY_IN_PROGRESS, its seat still free and its key still the retry’s', async () => {
    const { scheduleId, user, gate } = await sale();
    const key = randomUUID();
    const outcome = await takenOverWhileWaiting(user, key, () => s.core.reservations.hold(user, { scheduleId, seatNumbers: [1], idempotencyKey: key }, gate));
    expect(outcome).toBe('IDEMPOTENCY_IN_PROGRESS');
    const { rows } = await s.sql.query(
      `SELECT (SELECT count(*)::int FROM reservations WHERE schedule_id = $1) AS reservations,
              (SELECT count(*)::int FROM seats WHERE schedule_id = $1 AND reservation_id IS NOT NULL) AS claimed,
              (SELECT count(*)::int FROM outbox_events WHERE schedule_id = $1) AS events,
              (SELECT state FROM idempotency_keys WHERE key = $2) AS key_state`,
      [scheduleId, key],
    );
    expect(rows[0]).toEqual({ reservations: 0, claimed: 0, events: 0, key_state: 'IN_PROGRESS' });
  });

  it('a payment: refused with IDEMPOTENCY_IN_PROGRESS, the hold unpaid and the balance untouched', async () => {
    const { scheduleId, user, gate } = await sale();
    const held = await s.core.reservations.hold(user, { scheduleId, seatNumbers: [2], idempotencyKey: randomUUID() }, gate);
    const key = randomUUID();
    const outcome = await takenOverWhileWaiting(user, key, () => s.core.payments.pay(user, { reservationId: held.reservationId, idempotencyKey: key }, gate));
    expect(outcome).toBe('IDEMPOTENCY_IN_PROGRESS');
    const { rows } = await s.sql.query(
      `SELECT (SELECT status FROM reservations WHERE id = $1) AS status,
              (SELECT balance::int FROM users WHERE id = $2) AS balance,
              (SELECT count(*)::int FROM payments WHERE reservation_id = $1) AS payments,
              (SELECT count(*)::int FROM outbox_events WHERE reservation_id = $1 AND type = 'payment.completed') AS events,
              (SELECT state FROM idempotency_keys WHERE key = $3) AS key_state`,
      [held.reservationId, user, key],
    );
    expect(rows[0]).toEqual({ status: 'HELD', balance: 1_000_000, payments: 0, events: 0, key_state: 'IN_PROGRESS' });
  });

  // The retry had finished and paid by the time the first call failed: the first call answered
  // its own error (TOKEN_EXPIRED, its token spent by the retry's payment, in an outside review;
  // here IDEMPOTENCY_IN_PROGRESS from its completion), as if the payment had not been made.
  it('a payment whose retry has paid meanwhile answers the retry’s payment, not an error', async () => {
    const { scheduleId, user, gate } = await sale();
    const held = await s.core.reservations.hold(user, { scheduleId, seatNumbers: [3], idempotencyKey: randomUUID() }, gate);
    const key = randomUUID();
    const theirs = { paymentId: randomUUID(), reservationId: held.reservationId, amount: held.totalPrice, status: 'COMPLETED', paidAt: new Date(), balanceBefore: 1_000_000, balanceAfter: 1_000_000 - held.totalPrice, concertId: held.concertId, scheduleId };
    await s.sql.query('BEGIN');
    await s.sql.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [user]);
    const outcome = s.core.payments.pay(user, { reservationId: held.reservationId, idempotencyKey: key }, gate).then(
      (r) => r,
      (e: { code?: string }) => e.code ?? String(e),
    );
    await oneWaitsOnALock(s.watcher);
    // The retry took the key over and completed it (its own answer stored), then this call resumes.
    const taken = await s.watcher.query(`UPDATE idempotency_keys SET owner = $2, state = 'DONE', response = $3, completed_at = now() WHERE key = $1 AND state = 'IN_PROGRESS'`, [key, randomUUID(), superjson.stringify(theirs)]);
    expect(taken.rowCount).toBe(1);
    await s.sql.query('COMMIT');
    expect(await outcome).toMatchObject({ paymentId: theirs.paymentId, reservationId: held.reservationId, amount: held.totalPrice, status: 'COMPLETED' });
    // This call's own sale rolled back.
    const { rows } = await s.sql.query(`SELECT (SELECT count(*)::int FROM payments WHERE reservation_id = $1) AS payments, (SELECT balance::int FROM users WHERE id = $2) AS balance`, [held.reservationId, user]);
    expect(rows[0]).toEqual({ payments: 0, balance: 1_000_000 });
  });
});
