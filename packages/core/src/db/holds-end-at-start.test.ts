import { describe, expect, it } from 'vitest';
import { admittedFan, useCoreWithSessions } from '../../../../test/core-suite.ts';
import { migrations } from './migrations/index.ts';

/**
 * The release that caps a hold at its show's start also caps the holds made before it: a hold
 * whose expiry is past its show's start could be paid after the show began (and not refunded).
 */
describe('migration 20261204T210000-holds-end-at-start', () => {
  const suite = useCoreWithSessions();

  it('caps a live hold and its seats at the show’s start, and leaves other holds alone', async () => {
    const { core, sql } = suite;
    const a = await admittedFan(core, 0);
    const b = await admittedFan(core, 0);
    const late = await core.reservations.hold(a.user, { scheduleId: a.scheduleId, seatNumbers: [1, 2], idempotencyKey: 'migration-test-a' }, a.gate);
    const fine = await core.reservations.hold(b.user, { scheduleId: b.scheduleId, seatNumbers: [1], idempotencyKey: 'migration-test-b' }, b.gate);
    // As a hold made before the release could be: it lasts past its show's start.
    await sql.query(`UPDATE schedules SET starts_at = now() + interval '1 minute' WHERE id = $1`, [a.scheduleId]);
    await sql.query(`UPDATE reservations SET hold_expires_at = now() + interval '10 minutes' WHERE id = $1`, [late.reservationId]);
    await sql.query(`UPDATE seats SET held_until = now() + interval '10 minutes' WHERE reservation_id = $1`, [late.reservationId]);

    await migrations['20261204T210000-holds-end-at-start']!.up(core.db);

    const row = async (id: string) =>
      (
        await sql.query(
          `SELECT r.hold_expires_at = sc.starts_at AS capped, bool_and(s.held_until = sc.starts_at) AS seats_capped, r.hold_expires_at
           FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id JOIN seats s ON s.reservation_id = r.id WHERE r.id = $1 GROUP BY r.id, sc.starts_at`,
          [id],
        )
      ).rows[0];
    expect(await row(late.reservationId)).toMatchObject({ capped: true, seats_capped: true });
    // A hold that ends before its show starts is untouched.
    expect((await row(fine.reservationId)).hold_expires_at).toEqual(fine.holdExpiresAt);
  });
});
