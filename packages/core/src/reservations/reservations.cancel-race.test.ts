import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { admittedFan, oneWaitsOnALock, useCoreWithSessions } from '../../../../test/core-suite.ts';

/**
 * A hold whose claim waited on a cancellation's seat locks: the claim then sees the seat free
 * (the cancellation released it) and takes it, in a statement whose snapshot is from before the
 * cancellation. The check that the show is live runs in the hold's next statement (the event's)
 * and must see it cancelled: the hold is refused and nothing of it stays.
 */
describe('a hold racing a cancellation of its show', () => {
  const s = useCoreWithSessions();

  it('is refused with SCHEDULE_CANCELLED when the cancellation committed while its claim waited', async () => {
    const { core, sql, watcher } = s;
    const { scheduleId, user, gate } = await admittedFan(core, 0);
    // Warm the caches (schedule row, seat map), so the hold's first statement to wait is its claim.
    expect(await core.concerts.seats(scheduleId, gate).then((m) => m.seats.length)).toBe(4);

    // The cancellation, by hand: every seat of the show locked, the show marked, then committed later.
    await sql.query('BEGIN');
    await sql.query('SELECT 1 FROM seats WHERE schedule_id = $1 FOR UPDATE', [scheduleId]);
    await sql.query('UPDATE schedules SET cancelled_at = now() WHERE id = $1', [scheduleId]);
    const hold = core.reservations.hold(user, { scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, gate).then(
      () => 'OK',
      (e: { code?: string }) => e.code ?? String(e),
    );
    // The hold's claim is waiting on a seat lock.
    await oneWaitsOnALock(watcher, '%UPDATE seats%');
    await sql.query('COMMIT');
    expect(await hold).toBe('SCHEDULE_CANCELLED');
    const { rows } = await sql.query('SELECT (SELECT count(*)::int FROM reservations WHERE schedule_id = $1) AS reservations, (SELECT count(*)::int FROM seats WHERE schedule_id = $1 AND reservation_id IS NOT NULL) AS claimed, (SELECT count(*)::int FROM outbox_events WHERE schedule_id = $1) AS events', [scheduleId]);
    expect(rows[0]).toEqual({ reservations: 0, claimed: 0, events: 0 });
  });
});
