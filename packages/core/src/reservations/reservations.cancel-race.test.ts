import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase, testEnv } from '../../../../test/harness.ts';
import { loadConfig } from '../config.ts';
import { type Core, createCore } from '../index.ts';

/**
 * A hold whose claim waited on a cancellation's seat locks: the claim then sees the seat free
 * (the cancellation released it) and takes it, in a statement whose snapshot is from before the
 * cancellation. The check that the show is live runs in the hold's next statement (the event's)
 * and must see it cancelled: the hold is refused and nothing of it stays.
 */
describe('a hold racing a cancellation of its show', () => {
  let db: TestDatabase;
  let core: Core;
  let sql: InstanceType<typeof pg.Client>;
  let watcher: InstanceType<typeof pg.Client>;
  beforeAll(async () => {
    db = await createTestDatabase();
    core = await createCore(loadConfig(testEnv(db.url)));
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    watcher = new pg.Client({ connectionString: db.url });
    await watcher.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await watcher?.end();
    await core?.close();
    await db?.drop();
  });

  it('is refused with SCHEDULE_CANCELLED when the cancellation committed while its claim waited', async () => {
    const startsAt = new Date(Date.now() + 86_400_000);
    const c = await core.concerts.create({ title: 'Race', venue: '', schedules: [{ startsAt, bookingOpensAt: new Date(Date.now() - 1000), seatCount: 4 }] });
    const scheduleId = c.schedules[0]!.scheduleId;
    const user = (await core.admin.createUser({ name: 'fan', initialBalance: 0 })).userId;
    const ticket = await core.queue.enter(user, c.concertId);
    const gate = core.queue.gate(user, ticket.token);
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
    await vi.waitFor(
      async () => {
        // Another session: statistics views read inside a transaction keep their first snapshot.
        const { rows } = await watcher.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%UPDATE seats%' AND datname = current_database()`);
        expect(rows.length).toBe(1);
      },
      { timeout: 10_000, interval: 20 },
    );
    await sql.query('COMMIT');
    expect(await hold).toBe('SCHEDULE_CANCELLED');
    const { rows } = await sql.query('SELECT (SELECT count(*)::int FROM reservations WHERE schedule_id = $1) AS reservations, (SELECT count(*)::int FROM seats WHERE schedule_id = $1 AND reservation_id IS NOT NULL) AS claimed, (SELECT count(*)::int FROM outbox_events WHERE schedule_id = $1) AS events', [scheduleId]);
    expect(rows[0]).toEqual({ reservations: 0, claimed: 0, events: 0 });
  });
});
