import { sql } from 'kysely';
import type { Db, Tx } from '../db/database.ts';

export interface AuditCheck {
  name: string;
  /** Counts violations; zero means the invariant holds. */
  query: (now: Date) => ReturnType<typeof sql<{ n: number }>>;
  describe: (n: number) => string;
}

/** The contract's invariants, each one SQL statement over the whole database. */
export const AUDIT_CHECKS: AuditCheck[] = [
  {
    name: 'no seat sold twice',
    query: () => sql`
      SELECT count(*)::int AS n FROM (
        SELECT 1 FROM tickets WHERE voided_at IS NULL GROUP BY schedule_id, seat_number HAVING count(*) > 1
        UNION ALL
        SELECT 1 FROM seats s WHERE s.sold_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.schedule_id = s.schedule_id AND t.seat_number = s.seat_number AND t.reservation_id = s.reservation_id AND t.voided_at IS NULL)
        UNION ALL
        SELECT 1 FROM tickets t JOIN seats s USING (schedule_id, seat_number)
          WHERE t.voided_at IS NULL AND (s.sold_at IS NULL OR s.reservation_id IS DISTINCT FROM t.reservation_id)
      ) v`,
    describe: (n) => (n === 0 ? 'every sold seat has exactly one ticket, of the reservation that bought it' : `${n} seat(s) sold twice or sold without a matching ticket`),
  },
  {
    name: 'every balance equals its ledger',
    query: () => sql`
      SELECT count(*)::int AS n FROM users u
      WHERE u.balance <> coalesce((SELECT sum(l.amount) FROM ledger_entries l WHERE l.user_id = u.id), 0)
         OR u.balance <> coalesce((SELECT l.balance_after FROM ledger_entries l WHERE l.user_id = u.id ORDER BY l.id DESC LIMIT 1), 0)`,
    describe: (n) => (n === 0 ? 'every balance equals the sum of its ledger entries' : `${n} user(s) whose balance differs from their ledger`),
  },
  {
    name: 'no negative balance',
    query: () => sql`
      SELECT (SELECT count(*) FROM users WHERE balance < 0) + (SELECT count(*) FROM ledger_entries WHERE balance_after < 0) AS n`,
    describe: (n) => (n === 0 ? 'no balance or ledger entry is below zero' : `${n} negative balance(s)`),
  },
  {
    name: 'every PAID reservation has one payment of its total',
    query: () => sql`
      SELECT count(*)::int AS n FROM reservations r
      WHERE (r.status = 'PAID' AND (
              (SELECT count(*) FROM payments p WHERE p.reservation_id = r.id) <> 1
              OR (SELECT p.amount FROM payments p WHERE p.reservation_id = r.id LIMIT 1) <> r.total_price
              OR (SELECT count(*) FROM tickets t WHERE t.reservation_id = r.id AND t.voided_at IS NULL) <> r.seat_count
              OR (SELECT coalesce(sum(-l.amount), 0) FROM ledger_entries l WHERE l.reservation_id = r.id AND l.kind = 'PAYMENT') <> r.total_price))
         OR (r.status NOT IN ('PAID', 'REFUNDED') AND EXISTS (SELECT 1 FROM payments p WHERE p.reservation_id = r.id))`,
    describe: (n) => (n === 0 ? 'every PAID reservation has exactly one payment, debit and ticket set of its total; no other has any' : `${n} reservation(s) whose payment does not match`),
  },
  {
    name: 'no seat held by a reservation that is not HELD',
    query: () => sql`
      SELECT count(*)::int AS n FROM seats s JOIN reservations r ON r.id = s.reservation_id
      WHERE (s.held_until IS NOT NULL AND r.status <> 'HELD')
         OR (s.sold_at IS NOT NULL AND r.status <> 'PAID')`,
    describe: (n) => (n === 0 ? 'every held seat belongs to a HELD reservation and every sold seat to a PAID one' : `${n} seat(s) claimed by a reservation in the wrong state`),
  },
  {
    name: 'every REFUNDED reservation has one refund of its amount and no live ticket',
    query: () => sql`
      SELECT count(*)::int AS n FROM reservations r
      LEFT JOIN refunds f ON f.reservation_id = r.id
      LEFT JOIN payments p ON p.reservation_id = r.id
      WHERE (r.status = 'REFUNDED' AND (
              f.id IS NULL OR p.id IS NULL OR f.payment_id <> p.id OR f.amount <> p.amount OR f.amount <> r.total_price
              OR (SELECT coalesce(sum(l.amount), 0) FROM ledger_entries l WHERE l.refund_id = f.id) <> f.amount
              OR EXISTS (SELECT 1 FROM tickets t WHERE t.reservation_id = r.id AND t.voided_at IS NULL)
              OR EXISTS (SELECT 1 FROM seats s WHERE s.reservation_id = r.id)))
         OR (r.status <> 'REFUNDED' AND f.id IS NOT NULL)`,
    describe: (n) =>
      n === 0 ? 'every REFUNDED reservation has exactly one refund and credit of its payment, no live ticket and no seat; no other has a refund' : `${n} reservation(s) whose refund does not match`,
  },
  {
    name: 'every event of a committed change is in the outbox',
    query: () => sql`
      WITH since AS (SELECT coalesce((SELECT value::timestamptz FROM app_meta WHERE key = 'outbox_since'), '-infinity'::timestamptz) AS t)
      SELECT (
        SELECT count(*) FROM reservations r, since
        WHERE r.created_at >= since.t AND (
          NOT EXISTS (SELECT 1 FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.held')
          OR (r.status IN ('PAID', 'REFUNDED') AND NOT EXISTS (SELECT 1 FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'payment.completed'))
          OR (r.status = 'REFUNDED' AND NOT EXISTS (SELECT 1 FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.refunded'))
          OR (r.status = 'CANCELLED' AND NOT EXISTS (SELECT 1 FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.cancelled'))
          OR (r.status = 'EXPIRED' AND NOT EXISTS (SELECT 1 FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.expired')))
      ) + (
        SELECT count(*) FROM schedules sc, since
        WHERE sc.cancelled_at >= since.t AND NOT EXISTS (SELECT 1 FROM outbox_events e WHERE e.schedule_id = sc.id AND e.type = 'schedule.cancelled')
      ) AS n`,
    describe: (n) => (n === 0 ? 'every hold, payment, refund, cancellation and expiry since the outbox began has its event' : `${n} change(s) without their outbox event`),
  },
];

export async function runAuditCheck(db: Db, check: AuditCheck, now: Date): Promise<number> {
  const { rows } = await check.query(now).execute(db);
  return Number(rows[0]?.n ?? 0);
}

export async function findMeta(db: Db | Tx, key: string) {
  return db.selectFrom('app_meta').select('value').where('key', '=', key).executeTakeFirst();
}

export async function insertMeta(trx: Tx, key: string, value: string) {
  await trx.insertInto('app_meta').values({ key, value }).execute();
}

/** Serialises one-time jobs (demo seeding) across processes, for the transaction's life. */
export async function lockJob(trx: Tx, name: string) {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${name}))`.execute(trx);
}
