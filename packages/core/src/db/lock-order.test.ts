import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Core, createCore, loadConfig } from '../index.ts';
import { createTestDatabase, type TestDatabase, testEnv } from '../../../../test/harness.ts';

/**
 * Pairs of transactions that took two rows in opposite orders, each lined up by hand so that both
 * hold their first lock when they ask for their second: a deadlock PostgreSQL detects (after its
 * deadlock_timeout) and transaction() retries, so the calls' answers alone do not show it. The
 * database's own count of detected deadlocks (pg_stat_database) does: each pair runs on a core
 * of its own, closed at the end so that its connections' statistics reach the count.
 */
describe('lock order: no deadlock between', () => {
  let db: TestDatabase;
  let sql: InstanceType<typeof pg.Client>;
  let watcher: InstanceType<typeof pg.Client>;
  beforeAll(async () => {
    db = await createTestDatabase();
    await (await createCore(loadConfig(testEnv(db.url)))).close(); // migrated once
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    watcher = new pg.Client({ connectionString: db.url });
    await watcher.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await watcher?.end();
    await db?.drop();
  });

  /** Sessions of this database waiting on a lock, until there are n. */
  const waiters = (n: number) =>
    vi.waitFor(
      async () => {
        const { rows } = await watcher.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
        expect(rows[0].n).toBe(n);
      },
      { timeout: 10_000, interval: 20 },
    );

  /** Runs a scenario on a core of its own and returns how many deadlocks the database detected meanwhile. */
  async function deadlocksDuring(scenario: (core: Core) => Promise<void>): Promise<number> {
    const count = async () => (await watcher.query(`SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`)).rows[0].n as number;
    const before = await count();
    const core = await createCore(loadConfig(testEnv(db.url)));
    try {
      await scenario(core);
    } finally {
      await core.close();
    }
    // A backend reports its pending statistics when it exits, before it leaves pg_stat_activity.
    await vi.waitFor(
      async () => {
        const { rows } = await watcher.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid NOT IN (pg_backend_pid(), $1)`,
          [(sql as unknown as { processID: number }).processID],
        );
        expect(rows[0].n).toBe(0);
      },
      { timeout: 10_000, interval: 20 },
    );
    return (await count()) - before;
  }

  const outcome = (p: Promise<unknown>) =>
    p.then(
      (v) => v,
      (e: { code?: string }) => e.code ?? String(e),
    );

  async function show(core: Core, seatCount: number) {
    const c = await core.concerts.create({
      title: `Locks ${randomUUID()}`,
      venue: '',
      schedules: [{ startsAt: new Date(Date.now() + 7 * 86_400_000), bookingOpensAt: new Date(Date.now() - 60_000), seatCount }],
    });
    return { concertId: c.concertId, scheduleId: c.schedules[0]!.scheduleId };
  }
  const user = async (core: Core) => (await core.admin.createUser({ name: 'fan', initialBalance: 1_000_000 })).userId;
  async function gate(core: Core, userId: number, s: { concertId: number; scheduleId: number }) {
    const g = core.queue.gate(userId, (await core.queue.enter(userId, s.concertId)).token);
    await core.concerts.seats(s.scheduleId, g); // warm the caches: the first statement to wait is a lock's
    return g;
  }
  const hold = async (core: Core, userId: number, s: { concertId: number; scheduleId: number }, seats: number[]) =>
    core.reservations.hold(userId, { scheduleId: s.scheduleId, seatNumbers: seats, idempotencyKey: randomUUID() }, await gate(core, userId, s));

  it("a hold and its show's cancellation (the reservation's foreign key on the show after the seats' claim)", async () => {
    const n = await deadlocksDuring(async (core) => {
      const s = await show(core, 6);
      const [other, fan] = [await user(core), await user(core)];
      const r0 = await hold(core, other, s, [5]);
      const g = await gate(core, fan, s);
      // The cancellation holds the show's row and waits for a hold of the show (held here).
      await sql.query('BEGIN');
      await sql.query('SELECT 1 FROM reservations WHERE id = $1 FOR SHARE', [r0.reservationId]);
      const cancel = outcome(core.schedules.cancel(s.scheduleId));
      await waiters(1);
      const h = outcome(core.reservations.hold(fan, { scheduleId: s.scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, g).then(() => 'OK'));
      await waiters(2);
      await sql.query('COMMIT');
      expect(await cancel).toEqual({ scheduleId: s.scheduleId, refunded: 0, released: 1 });
      expect(await h).toBe('SCHEDULE_CANCELLED');
    });
    expect(n).toBe(0);
  });

  it("a hold and its show's cancellation refunding the same fan (the fan's row and the show's seats)", async () => {
    const n = await deadlocksDuring(async (core) => {
      const s = await show(core, 6);
      const fan = await user(core);
      const g = await gate(core, fan, s);
      const paid = await core.reservations.hold(fan, { scheduleId: s.scheduleId, seatNumbers: [2], idempotencyKey: randomUUID() }, g);
      await core.payments.pay(fan, { reservationId: paid.reservationId, idempotencyKey: randomUUID() }, g);
      const g2 = await gate(core, fan, s); // the payment spent the first token
      // The cancellation locks seats 1-3 and waits at seat 4 (held here).
      await sql.query('BEGIN');
      await sql.query('SELECT 1 FROM seats WHERE schedule_id = $1 AND seat_number = 4 FOR KEY SHARE', [s.scheduleId]);
      const cancel = outcome(core.schedules.cancel(s.scheduleId));
      await waiters(1);
      const h = outcome(core.reservations.hold(fan, { scheduleId: s.scheduleId, seatNumbers: [3], idempotencyKey: randomUUID() }, g2).then(() => 'OK'));
      await waiters(2);
      await sql.query('COMMIT');
      expect(await cancel).toEqual({ scheduleId: s.scheduleId, refunded: 1, released: 0 });
      expect(await h).toBe('SCHEDULE_CANCELLED');
    });
    expect(n).toBe(0);
  });

  it("a waitlist offer's payment and its fan leaving the waitlist (the offer's reservation and its entry)", async () => {
    const n = await deadlocksDuring(async (core) => {
      const s = await show(core, 1);
      const [other, fan] = [await user(core), await user(core)];
      const r0 = await hold(core, other, s, [1]);
      const entry = await core.waitlist.join(fan, { scheduleId: s.scheduleId, seatCount: 1 });
      await core.reservations.cancel(r0.reservationId, other); // the seat is offered to the fan
      const offered = (await core.waitlist.mine(fan, { limit: 10 })).items[0]!;
      expect(offered.status).toBe('OFFERED');
      const g = core.queue.gate(fan, undefined); // an offer is paid without a queue token
      // The payment locks the offer's reservation and waits for the payer's row (held here).
      await sql.query('BEGIN');
      await sql.query('SELECT 1 FROM users WHERE id = $1 FOR SHARE', [fan]);
      const pay = outcome(core.payments.pay(fan, { reservationId: offered.offer!.reservationId, idempotencyKey: randomUUID() }, g).then((p) => p.status));
      await waiters(1);
      const leave = outcome(core.waitlist.leave(fan, entry.entryId).then((e) => e.status));
      await waiters(2);
      await sql.query('COMMIT');
      expect(await pay).toBe('COMPLETED');
      expect(await leave).toBe('ACCEPTED');
    });
    expect(n).toBe(0);
  });

  it('a waitlist join and a refund of the same fan in that show (the show\'s row and the fan\'s)', async () => {
    const n = await deadlocksDuring(async (core) => {
      const s = await show(core, 2);
      const [other, fan] = [await user(core), await user(core)];
      const g = await gate(core, fan, s);
      const paid = await core.reservations.hold(fan, { scheduleId: s.scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, g);
      await core.payments.pay(fan, { reservationId: paid.reservationId, idempotencyKey: randomUUID() }, g);
      await hold(core, other, s, [2]); // nothing left on sale: the fan may join the waitlist
      // The join's entry waits for a live entry of the fan's being written here (the unique
      // live-entry index), with no foreign-key locks of its own (replica role).
      await sql.query('BEGIN');
      await sql.query(`SET LOCAL session_replication_role = replica`);
      await sql.query(`INSERT INTO waitlist_entries (user_id, schedule_id, seat_count, status, created_at, updated_at) VALUES ($1, $2, 1, 'WAITING', now(), now())`, [fan, s.scheduleId]);
      const join = outcome(core.waitlist.join(fan, { scheduleId: s.scheduleId, seatCount: 1 }).then((e) => e.status));
      await waiters(1);
      const refund = outcome(core.refunds.refund(fan, { reservationId: paid.reservationId, idempotencyKey: randomUUID() }).then((r) => r.status));
      await waiters(2);
      await sql.query('ROLLBACK');
      expect(await join).toBe('WAITING');
      expect(await refund).toBe('REFUNDED');
      // The refund's seat went to the fan's entry.
      expect((await core.waitlist.mine(fan, { limit: 10 })).items[0]!.status).toBe('OFFERED');
    });
    expect(n).toBe(0);
  });

  it('two refunds of one fan in two shows (the fan\'s row: the refund\'s foreign key, then FOR UPDATE)', async () => {
    const n = await deadlocksDuring(async (core) => {
      const [s1, s2] = [await show(core, 2), await show(core, 2)];
      const fan = await user(core);
      const buy = async (s: { concertId: number; scheduleId: number }) => {
        const g = await gate(core, fan, s);
        const r = await core.reservations.hold(fan, { scheduleId: s.scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, g);
        await core.payments.pay(fan, { reservationId: r.reservationId, idempotencyKey: randomUUID() }, g);
        return r.reservationId;
      };
      const [r1, r2] = [await buy(s1), await buy(s2)];
      // Each refund comes to the fan's row while this session holds it FOR KEY SHARE.
      await sql.query('BEGIN');
      await sql.query('SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE', [fan]);
      const refund1 = outcome(core.refunds.refund(fan, { reservationId: r1, idempotencyKey: randomUUID() }).then((r) => r.status));
      await waiters(1);
      const refund2 = outcome(core.refunds.adminRefund(r2).then((r) => r.status));
      await waiters(2);
      await sql.query('COMMIT');
      expect(await refund1).toBe('REFUNDED');
      expect(await refund2).toBe('REFUNDED');
    });
    expect(n).toBe(0);
  });
});
