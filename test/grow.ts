import type { ClientBase } from 'pg';

/**
 * A sale that has grown: `seats` seats sold, `perReservation` (1, 2 or 4; default 4) to a user,
 * to new users on new schedules of a new concert, written in bulk with SQL in one transaction.
 * Every row a real sale writes is there (reservation, its seats, seat claims, payment, tickets, a
 * top-up and the payment in the ledger, the hold's and the payment's outbox events), so the audit
 * still holds. `seats` is rounded down to whole schedules of 1,000.
 */
export async function growSales(sql: ClientBase, opts: { seats: number; perReservation?: 1 | 2 | 4 }): Promise<{ schedules: number; users: number }> {
  const PER_SCHEDULE = 1000;
  const PRICE = 100_000;
  const per = opts.perReservation ?? 4;
  const schedules = Math.max(1, Math.floor(opts.seats / PER_SCHEDULE));
  const users = (schedules * PER_SCHEDULE) / per;
  await sql.query('BEGIN');
  try {
    // A bulk load, as pg_restore does it: the rows are consistent by construction (the audit
    // checks that), so the per-row foreign-key triggers are skipped. Needs a superuser.
    await sql.query(`SET LOCAL session_replication_role = replica`);
    const { rows: concert } = await sql.query<{ id: string }>(`INSERT INTO concerts (title) VALUES ('Grown sale') RETURNING id`);
    const { rows: sched } = await sql.query<{ id: string }>(
      `INSERT INTO schedules (concert_id, starts_at, booking_opens_at, seat_count)
       SELECT $1, now() + interval '30 days', now() - interval '1 hour', $2 FROM generate_series(1, $3) RETURNING id`,
      [concert[0]!.id, PER_SCHEDULE, schedules],
    );
    await sql.query(`CREATE TEMP TABLE grown (user_id bigint, k int, rid uuid, pid uuid, schedule_id bigint) ON COMMIT DROP`);
    await sql.query(
      `WITH u AS (INSERT INTO users (name, balance) SELECT 'grown ' || g, 0 FROM generate_series(1, $1) g RETURNING id),
            n AS (SELECT id, (row_number() OVER (ORDER BY id) - 1)::int AS k FROM u)
       INSERT INTO grown SELECT id, k, gen_random_uuid(), gen_random_uuid(), ($2::bigint[])[k / $3 + 1] FROM n`,
      [users, sched.map((s) => s.id), PER_SCHEDULE / per],
    );
    const total = per * PRICE;
    await sql.query(
      `INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at, paid_at)
       SELECT rid, user_id, schedule_id, 'PAID', $1, $2, now() + interval '5 minutes', now(), now() FROM grown`,
      [total, per],
    );
    // Seats before what they reference (their claim's foreign key is checked at commit).
    await sql.query(
      `INSERT INTO seats (schedule_id, seat_number, grade, price, reservation_id, held_until, sold_at)
       SELECT schedule_id, (k % $1) * $3 + j, 'R', $2, rid, NULL, now() FROM grown, generate_series(1, $3) j`,
      [PER_SCHEDULE / per, PRICE, per],
    );
    await sql.query(
      `INSERT INTO reservation_seats (reservation_id, schedule_id, seat_number, grade, price)
       SELECT s.reservation_id, s.schedule_id, s.seat_number, s.grade, s.price FROM seats s JOIN grown g ON g.rid = s.reservation_id`,
    );
    await sql.query(
      `INSERT INTO payments (id, reservation_id, user_id, amount, status, balance_before, balance_after, created_at)
       SELECT pid, rid, user_id, $1, 'COMPLETED', $1, 0, now() FROM grown`,
      [total],
    );
    await sql.query(
      `INSERT INTO tickets (schedule_id, seat_number, reservation_id, user_id, payment_id, created_at)
       SELECT rs.schedule_id, rs.seat_number, g.rid, g.user_id, g.pid, now() FROM reservation_seats rs JOIN grown g ON g.rid = rs.reservation_id`,
    );
    // Top-ups first, then the payments: each user's last entry is the payment, leaving 0.
    await sql.query(
      `INSERT INTO ledger_entries (user_id, kind, source, amount, balance_after, created_at) SELECT user_id, 'CHARGE', 'ADMIN', $1, $1, now() FROM grown ORDER BY k`,
      [total],
    );
    await sql.query(
      `INSERT INTO ledger_entries (user_id, kind, source, amount, balance_after, reservation_id, payment_id, created_at)
       SELECT user_id, 'PAYMENT', 'SYSTEM', -$1::bigint, 0, rid, pid, now() FROM grown ORDER BY k`,
      [total],
    );
    await sql.query(
      `INSERT INTO outbox_events (id, type, reservation_id, ordering_key, data, created_at)
       SELECT gen_random_uuid(), t.type, rid, rid::text, '{}'::jsonb, now() FROM grown, (VALUES ('reservation.held'), ('payment.completed')) t(type)`,
    );
    await sql.query('COMMIT');
  } catch (err) {
    await sql.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return { schedules, users };
}
