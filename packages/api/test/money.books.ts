/**
 * The books recomputed from the rows, independently of admin.audit: money (balances = charges −
 * payments + refunds, each ledger a chain), seats (sold at most once, tickets match PAID
 * reservations) and the outbox (exactly one event per committed change, none for others).
 * Returns the violations found, each a line naming what is wrong; [] when the books balance.
 */
import type pg from 'pg';

type SqlClient = InstanceType<typeof pg.Client>;

const CHECKS: Array<[string, string]> = [
  [
    'balance = charges − payments + refunds',
    `SELECT u.id, u.balance,
            coalesce((SELECT sum(amount) FROM ledger_entries l WHERE l.user_id = u.id AND l.kind = 'CHARGE'), 0)
          - coalesce((SELECT sum(amount) FROM payments p WHERE p.user_id = u.id), 0)
          + coalesce((SELECT sum(amount) FROM refunds f WHERE f.user_id = u.id), 0) AS expected
       FROM users u
      WHERE u.balance <> coalesce((SELECT sum(amount) FROM ledger_entries l WHERE l.user_id = u.id AND l.kind = 'CHARGE'), 0)
          - coalesce((SELECT sum(amount) FROM payments p WHERE p.user_id = u.id), 0)
          + coalesce((SELECT sum(amount) FROM refunds f WHERE f.user_id = u.id), 0)`,
  ],
  [
    'each ledger is a chain',
    `SELECT id, user_id FROM (
       SELECT id, user_id, balance_after, sum(amount) OVER (PARTITION BY user_id ORDER BY id) AS running FROM ledger_entries) x
      WHERE balance_after <> running`,
  ],
  [
    'every PAYMENT entry is one payment of its amount, every REFUND entry one refund',
    `SELECT l.id::text FROM ledger_entries l
       LEFT JOIN payments p ON p.id = l.payment_id
       LEFT JOIN refunds f ON f.id = l.refund_id
      WHERE (l.kind = 'PAYMENT' AND (p.id IS NULL OR -l.amount <> p.amount OR p.user_id <> l.user_id))
         OR (l.kind = 'REFUND' AND (f.id IS NULL OR l.amount <> f.amount OR f.user_id <> l.user_id))
     UNION ALL
     SELECT p.id::text FROM payments p WHERE p.amount > 0 AND (SELECT count(*) FROM ledger_entries l WHERE l.payment_id = p.id AND l.kind = 'PAYMENT') <> 1
     UNION ALL
     SELECT f.id::text FROM refunds f WHERE f.amount > 0 AND (SELECT count(*) FROM ledger_entries l WHERE l.refund_id = f.id AND l.kind = 'REFUND') <> 1`,
  ],
  [
    'a payment only for a PAID or REFUNDED reservation, a refund only for a REFUNDED one',
    `SELECT r.id, r.status FROM reservations r
      WHERE (EXISTS (SELECT 1 FROM payments p WHERE p.reservation_id = r.id) <> (r.status IN ('PAID', 'REFUNDED')))
         OR (EXISTS (SELECT 1 FROM refunds f WHERE f.reservation_id = r.id) <> (r.status = 'REFUNDED'))`,
  ],
  [
    'each seat sold at most once (live tickets)',
    `SELECT schedule_id, seat_number FROM tickets WHERE voided_at IS NULL GROUP BY 1, 2 HAVING count(*) > 1`,
  ],
  [
    'tickets match PAID reservations',
    `SELECT r.id, r.status, r.seat_count,
            (SELECT count(*) FROM tickets t WHERE t.reservation_id = r.id AND t.voided_at IS NULL) AS live,
            (SELECT count(*) FROM tickets t WHERE t.reservation_id = r.id) AS total,
            (SELECT count(*) FROM seats s WHERE s.reservation_id = r.id AND s.sold_at IS NOT NULL) AS sold
       FROM reservations r
      WHERE (r.status = 'PAID' AND ((SELECT count(*) FROM tickets t WHERE t.reservation_id = r.id AND t.voided_at IS NULL) <> r.seat_count
                                 OR (SELECT count(*) FROM seats s WHERE s.reservation_id = r.id AND s.sold_at IS NOT NULL) <> r.seat_count))
         OR (r.status = 'REFUNDED' AND ((SELECT count(*) FROM tickets t WHERE t.reservation_id = r.id AND t.voided_at IS NULL) <> 0
                                     OR (SELECT count(*) FROM tickets t WHERE t.reservation_id = r.id) <> r.seat_count))
         OR (r.status NOT IN ('PAID', 'REFUNDED') AND EXISTS (SELECT 1 FROM tickets t WHERE t.reservation_id = r.id))`,
  ],
  [
    'a seat claimed only by a HELD (held) or PAID (sold) reservation',
    `SELECT s.schedule_id, s.seat_number, r.status FROM seats s JOIN reservations r ON r.id = s.reservation_id
      WHERE (s.sold_at IS NOT NULL AND r.status <> 'PAID') OR (s.sold_at IS NULL AND r.status <> 'HELD')`,
  ],
  [
    'events: one reservation.held per reservation',
    `SELECT r.id, (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.held') AS n
       FROM reservations r WHERE (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.held') <> 1`,
  ],
  [
    'events: one payment.completed per payment, one reservation.refunded per refund',
    `SELECT r.id, r.status FROM reservations r
      WHERE (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'payment.completed') <> (SELECT count(*) FROM payments p WHERE p.reservation_id = r.id)
         OR (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.refunded') <> (SELECT count(*) FROM refunds f WHERE f.reservation_id = r.id)`,
  ],
  [
    'events: one end (cancelled or expired) per CANCELLED/EXPIRED reservation, none for others',
    `SELECT r.id, r.status,
            (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.cancelled') AS cancelled,
            (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.expired') AS expired
       FROM reservations r
      WHERE (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.cancelled') <> (CASE WHEN r.status = 'CANCELLED' THEN 1 ELSE 0 END)
         OR (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'reservation.expired') <> (CASE WHEN r.status = 'EXPIRED' THEN 1 ELSE 0 END)`,
  ],
  [
    'events: one waitlist.offered per waitlist reservation, none for others',
    `SELECT r.id, r.source FROM reservations r
      WHERE (SELECT count(*) FROM outbox_events e WHERE e.reservation_id = r.id AND e.type = 'waitlist.offered') <> (CASE WHEN r.source = 'WAITLIST' THEN 1 ELSE 0 END)`,
  ],
  [
    'events: one schedule.cancelled per cancelled show, none for others',
    `SELECT sc.id FROM schedules sc
      WHERE (SELECT count(*) FROM outbox_events e WHERE e.schedule_id = sc.id AND e.type = 'schedule.cancelled') <> (CASE WHEN sc.cancelled_at IS NULL THEN 0 ELSE 1 END)`,
  ],
  [
    'events: concert.sold_out at most once per sell-out (a refund may make a second)',
    `SELECT sc.id FROM schedules sc
      WHERE (SELECT count(*) FROM outbox_events e WHERE e.schedule_id = sc.id AND e.type = 'concert.sold_out')
          > 1 + (SELECT count(*) FROM refunds f JOIN reservations r ON r.id = f.reservation_id WHERE r.schedule_id = sc.id)`,
  ],
  [
    'a cancelled show has no live claim and no live ticket',
    `SELECT s.schedule_id, s.seat_number FROM seats s JOIN schedules sc ON sc.id = s.schedule_id
      WHERE sc.cancelled_at IS NOT NULL AND (s.reservation_id IS NOT NULL
         OR EXISTS (SELECT 1 FROM tickets t WHERE t.schedule_id = s.schedule_id AND t.seat_number = s.seat_number AND t.voided_at IS NULL))`,
  ],
  [
    'the 4-seat limit: at no reservation’s creation did its user hold or own more than 4 seats of its show',
    `SELECT r.id, r.user_id, r.schedule_id, (
         SELECT sum(o.seat_count) FROM reservations o
          WHERE o.user_id = r.user_id AND o.schedule_id = r.schedule_id AND o.created_at <= r.created_at
            AND r.created_at < CASE o.status
                  WHEN 'PAID' THEN 'infinity'::timestamptz
                  WHEN 'REFUNDED' THEN o.refunded_at
                  WHEN 'CANCELLED' THEN least(o.cancelled_at, o.hold_expires_at)
                  ELSE o.hold_expires_at END) AS live
       FROM reservations r
      WHERE (SELECT sum(o.seat_count) FROM reservations o
              WHERE o.user_id = r.user_id AND o.schedule_id = r.schedule_id AND o.created_at <= r.created_at
                AND r.created_at < CASE o.status
                      WHEN 'PAID' THEN 'infinity'::timestamptz
                      WHEN 'REFUNDED' THEN o.refunded_at
                      WHEN 'CANCELLED' THEN least(o.cancelled_at, o.hold_expires_at)
                      ELSE o.hold_expires_at END) > 4`,
  ],
  [
    'a DONE payment key names a payment that exists',
    `SELECT k.user_id, k.key FROM idempotency_keys k
      WHERE k.procedure = 'payments.pay' AND k.state = 'DONE'
        AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id::text = (k.response::jsonb -> 'json' ->> 'paymentId'))`,
  ],
];

export async function recomputeBooks(sql: SqlClient): Promise<string[]> {
  const violations: string[] = [];
  for (const [name, text] of CHECKS) {
    const { rows } = await sql.query(text);
    if (rows.length > 0) violations.push(`${name}: ${JSON.stringify(rows.slice(0, 5))}${rows.length > 5 ? ` (+${rows.length - 5})` : ''}`);
  }
  return violations;
}
