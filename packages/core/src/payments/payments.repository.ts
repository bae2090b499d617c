import { AppError } from '../errors.ts';
import type { Moment } from '../clock.ts';
import type { Tx } from '../db/database.ts';
import { hot, hotRaw, runHot } from '../db/hot.ts';
import { WITH_NEXT } from '../db/pipeline.ts';
import { type BookingPass, hotPassAdmitsTo } from '../reservations/reservations.repository.ts';

/**
 * Locks the owner's reservation, then the owner's row (every change of a balance locks it), in
 * one statement; the balance read is the locked row's latest. Someone else's reads as missing.
 * `withNext`: sent with the next statement, the sale (db/pipeline.ts WITH_NEXT), which checks
 * again in the database what the caller checks here once both have answered: `read()` then.
 */
export async function lockReservationAndPayer(trx: Tx, reservationId: string, userId: number, now: Moment, opts: { withNext: boolean }) {
  const { rows } = await runHot<{
    status: string;
    total_price: number;
    seat_count: number;
    hold_expires_at: Date;
    schedule_id: number;
    source: 'QUEUE' | 'WAITLIST';
    balance: number;
    lapsed: boolean;
  }>(
    trx,
    hot`${hotRaw(opts.withNext ? WITH_NEXT : '')}
    WITH r AS (
      SELECT status, total_price, seat_count, hold_expires_at, schedule_id, source FROM reservations WHERE id = ${reservationId} AND user_id = ${userId} FOR UPDATE
    )
    SELECT r.*, u.balance, r.hold_expires_at <= ${now} AS lapsed
    FROM r CROSS JOIN LATERAL (SELECT balance FROM users WHERE id = ${userId} FOR UPDATE) u`,
  );
  return {
    read() {
      const row = rows[0];
      if (!row) throw new AppError('RESERVATION_NOT_FOUND', 'No such reservation');
      return row;
    },
  };
}

/**
 * The sale, in one statement: the seats still held by this reservation, unexpired, become SOLD
 * in the same UPDATE that checks it (a hold lapsing concurrently ends either sold here or free,
 * never both); only if every seat was sold are the payment, the debit and its ledger entry, the
 * tickets and the PAID status written, and only if the balance covers the amount (the caller,
 * which may send this statement before it has read the balance, raises then). The caller holds
 * the reservation's and the payer's row locks, and the gate's pass for the seats' concert. The
 * constraints stay the judges: tickets' primary key (a seat sold once), the balance's CHECK (no
 * overdraft), the payment's balance arithmetic. Returns the seats sold (fewer than the
 * reservation's: the caller raises and the transaction rolls back) and the balance after (null
 * when nothing was sold or paid).
 */
export async function sellReservation(
  trx: Tx,
  pass: BookingPass,
  p: { paymentId: string; reservationId: string; scheduleId: number; userId: number; amount: number; seatCount: number; now: Moment },
  opts: { withNext: boolean },
) {
  // The payment's balances come from the debit's row (locked since the payment's first
  // statement), not from a parameter: the statement needs nothing the one before it read, so
  // pgbench's replay of it needs no \gset and can pipeline like the API (bench/pgbench.ts).
  const { rows } = await runHot<{ sold: number; balance: number | null; paid_at: Date; show_cancelled: boolean; starts_at: Date; ended_by_start: boolean }>(
    trx,
    hot`${hotRaw(opts.withNext ? WITH_NEXT : '')}
    WITH sold AS (
      UPDATE seats SET sold_at = ${p.now}, held_until = NULL
      WHERE reservation_id = ${p.reservationId} AND ${hotPassAdmitsTo(pass)} AND sold_at IS NULL AND held_until > ${p.now}
      RETURNING schedule_id, seat_number
    ),
    whole AS (SELECT count(*) = ${p.seatCount} AND (SELECT balance >= ${p.amount}::bigint FROM users WHERE id = ${p.userId}) AS ok FROM sold),
    debit AS (
      UPDATE users SET balance = balance - ${p.amount}::bigint, updated_at = ${p.now}
      WHERE id = ${p.userId} AND (SELECT ok FROM whole)
      RETURNING balance
    ),
    payment AS (
      INSERT INTO payments (id, reservation_id, user_id, amount, status, balance_before, balance_after, created_at)
      SELECT ${p.paymentId}, ${p.reservationId}, ${p.userId}, ${p.amount}::bigint, 'COMPLETED', balance + ${p.amount}::bigint, balance, ${p.now}
      FROM debit
    ),
    entry AS (
      INSERT INTO ledger_entries (user_id, kind, source, amount, balance_after, reservation_id, payment_id, created_at)
      SELECT ${p.userId}, 'PAYMENT', 'SYSTEM', -${p.amount}::bigint, balance, ${p.reservationId}, ${p.paymentId}, ${p.now} FROM debit
    ),
    ticket AS (
      INSERT INTO tickets (schedule_id, seat_number, reservation_id, user_id, payment_id, created_at)
      SELECT schedule_id, seat_number, ${p.reservationId}, ${p.userId}, ${p.paymentId}, ${p.now} FROM sold WHERE (SELECT ok FROM whole)
    ),
    paid AS (
      UPDATE reservations SET status = 'PAID', paid_at = ${p.now} WHERE id = ${p.reservationId} AND (SELECT ok FROM whole)
    )
    SELECT (SELECT count(*) FROM sold)::int AS sold, (SELECT balance FROM debit) AS balance, ${p.now}::timestamptz AS paid_at,
      sc.cancelled_at IS NOT NULL AS show_cancelled, sc.starts_at,
      sc.starts_at <= (SELECT hold_expires_at FROM reservations WHERE id = ${p.reservationId}) AS ended_by_start
    FROM schedules sc WHERE sc.id = ${p.scheduleId}`,
  );
  // With the show, read after the locks (this statement's snapshot), for the caller's refusals.
  return { read: () => rows[0]! };
}
