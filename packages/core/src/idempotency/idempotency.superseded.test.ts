import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase, testEnv } from '../../../../test/harness.ts';
import { loadConfig } from '../config.ts';
import { type Core, createCore } from '../index.ts';

/**
 * A hold or a payment whose key was taken over while it ran (its lease lapsed and a retry claimed
 * the key): its completion, which rides in the event's statement, finds the key no longer its own,
 * and the whole transaction rolls back, so the retry is the only one to succeed. The call is held
 * up where it would be by a slow database: waiting for the user's row lock, which a session of
 * the test holds while it hands the key to another owner.
 */
describe('an idempotent write whose key was taken over while it ran', () => {
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

  async function sale() {
    const c = await core.concerts.create({
      title: 'Takeover',
      venue: '',
      schedules: [{ startsAt: new Date(Date.now() + 86_400_000), bookingOpensAt: new Date(Date.now() - 1000), seatCount: 4 }],
    });
    const user = (await core.admin.createUser({ name: 'fan', initialBalance: 1_000_000 })).userId;
    const ticket = await core.queue.enter(user, c.concertId);
    return { scheduleId: c.schedules[0]!.scheduleId, user, gate: core.queue.gate(user, ticket.token) };
  }

  /** Runs `call` while the user's row is locked; once it waits on that lock, its key changes owner. */
  async function takenOverWhileWaiting(user: number, key: string, call: () => Promise<unknown>) {
    await sql.query('BEGIN');
    await sql.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [user]);
    const outcome = call().then(
      () => 'OK',
      (e: { code?: string }) => e.code ?? String(e),
    );
    await vi.waitFor(
      async () => {
        const { rows } = await watcher.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
        expect(rows.length).toBe(1);
      },
      { timeout: 10_000, interval: 20 },
    );
    const taken = await watcher.query(`UPDATE idempotency_keys SET owner = $2 WHERE key = $1 AND state = 'IN_PROGRESS'`, [key, randomUUID()]);
    expect(taken.rowCount).toBe(1);
    await sql.query('COMMIT');
    return outcome;
  }

  it('a hold: refused with IDEMPOTENCY_IN_PROGRESS, its seat still free and its key still the retry’s', async () => {
    const { scheduleId, user, gate } = await sale();
    const key = randomUUID();
    const outcome = await takenOverWhileWaiting(user, key, () => core.reservations.hold(user, { scheduleId, seatNumbers: [1], idempotencyKey: key }, gate));
    expect(outcome).toBe('IDEMPOTENCY_IN_PROGRESS');
    const { rows } = await sql.query(
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
    const held = await core.reservations.hold(user, { scheduleId, seatNumbers: [2], idempotencyKey: randomUUID() }, gate);
    const key = randomUUID();
    const outcome = await takenOverWhileWaiting(user, key, () => core.payments.pay(user, { reservationId: held.reservationId, idempotencyKey: key }, gate));
    expect(outcome).toBe('IDEMPOTENCY_IN_PROGRESS');
    const { rows } = await sql.query(
      `SELECT (SELECT status FROM reservations WHERE id = $1) AS status,
              (SELECT balance::int FROM users WHERE id = $2) AS balance,
              (SELECT count(*)::int FROM payments WHERE reservation_id = $1) AS payments,
              (SELECT count(*)::int FROM outbox_events WHERE reservation_id = $1 AND type = 'payment.completed') AS events,
              (SELECT state FROM idempotency_keys WHERE key = $3) AS key_state`,
      [held.reservationId, user, key],
    );
    expect(rows[0]).toEqual({ status: 'HELD', balance: 1_000_000, payments: 0, events: 0, key_state: 'IN_PROGRESS' });
  });
});
