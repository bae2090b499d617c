import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { admittedFan, oneWaitsOnALock, useCoreWithSessions } from '../../../../test/core-suite.ts';

/**
 * A payment whose lock of the reservation waited on a show's cancellation: the locked row it gets
 * is the cancelled one, but the rest of its statement reads from a snapshot taken before the
 * cancellation committed. The fan did not cancel the hold, and the answer must say the show was
 * cancelled (an outside review: 23 payments in 30 racing a cancellation were told
 * RESERVATION_CANCELLED, "This reservation was cancelled").
 */
describe('a payment racing a cancellation of its show', () => {
  const s = useCoreWithSessions();

  it('is refused with SCHEDULE_CANCELLED when the cancellation committed while its lock waited', async () => {
    const { core, sql, watcher } = s;
    const { scheduleId, user, gate } = await admittedFan(core, 1_000_000);
    const held = await core.reservations.hold(user, { scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, gate);

    // The cancellation, by hand, in its order: the show, then its reservations and seats; committed
    // once the payment waits on the reservation's row.
    await sql.query('BEGIN');
    await sql.query('UPDATE schedules SET cancelled_at = now() WHERE id = $1', [scheduleId]);
    await sql.query('SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE', [held.reservationId]);
    const paid = core.payments.pay(user, { reservationId: held.reservationId, idempotencyKey: randomUUID() }, gate).then(
      () => 'PAID',
      (e: { code?: string }) => e.code ?? String(e),
    );
    await oneWaitsOnALock(watcher, '%FROM reservations%FOR UPDATE%');
    await sql.query(`UPDATE reservations SET status = 'CANCELLED', cancelled_at = now() WHERE id = $1`, [held.reservationId]);
    await sql.query('UPDATE seats SET reservation_id = NULL, held_until = NULL WHERE reservation_id = $1', [held.reservationId]);
    await sql.query('COMMIT');

    expect(await paid).toBe('SCHEDULE_CANCELLED');
    const { rows } = await sql.query('SELECT balance::int FROM users WHERE id = $1', [user]);
    expect(rows[0]).toEqual({ balance: 1_000_000 });
  });
});
