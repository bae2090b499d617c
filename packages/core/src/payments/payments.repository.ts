import type { Tx } from '../db/database.ts';
import { type BookingPass, passAdmitsTo } from '../reservations/reservations.repository.ts';

/**
 * Turns a live hold into a sale; returns the seats sold (fewer than held means the hold lapsed).
 * Only with the gate's pass for the seats' concert, or the waitlist offer's own pass.
 */
export async function sellHeldSeats(trx: Tx, pass: BookingPass, reservationId: string, now: Date) {
  return trx
    .updateTable('seats')
    .set({ sold_at: now, held_until: null })
    .where('reservation_id', '=', reservationId)
    .where(passAdmitsTo(pass))
    .where('sold_at', 'is', null)
    .where('held_until', '>', now)
    .returning(['schedule_id', 'seat_number'])
    .execute();
}

export async function insertPayment(
  trx: Tx,
  row: { id: string; reservationId: string; userId: number; amount: number; balanceBefore: number; balanceAfter: number; now: Date },
) {
  await trx
    .insertInto('payments')
    .values({
      id: row.id,
      reservation_id: row.reservationId,
      user_id: row.userId,
      amount: row.amount,
      status: 'COMPLETED',
      balance_before: row.balanceBefore,
      balance_after: row.balanceAfter,
      created_at: row.now,
    })
    .execute();
}

export async function insertTickets(
  trx: Tx,
  seats: Array<{ schedule_id: number; seat_number: number }>,
  row: { reservationId: string; userId: number; paymentId: string; now: Date },
) {
  await trx
    .insertInto('tickets')
    .values(
      seats.map((s) => ({
        schedule_id: s.schedule_id,
        seat_number: s.seat_number,
        reservation_id: row.reservationId,
        user_id: row.userId,
        payment_id: row.paymentId,
        created_at: row.now,
      })),
    )
    .execute();
}

export async function markPaid(trx: Tx, reservationId: string, now: Date) {
  await trx.updateTable('reservations').set({ status: 'PAID', paid_at: now }).where('id', '=', reservationId).execute();
}
