import { sql } from 'kysely';
import type { Tx } from '../db/database.ts';
import type { RefundReason } from '../db/schema.ts';

export async function findPaymentOf(trx: Tx, reservationId: string) {
  return trx.selectFrom('payments').select(['id', 'amount']).where('reservation_id', '=', reservationId).executeTakeFirst();
}

/** The unique payment_id and reservation_id make a second refund of one payment impossible. */
export async function insertRefund(
  trx: Tx,
  row: { id: string; paymentId: string; reservationId: string; userId: number; amount: number; reason: RefundReason; now: Date },
) {
  await trx
    .insertInto('refunds')
    .values({
      id: row.id,
      payment_id: row.paymentId,
      reservation_id: row.reservationId,
      user_id: row.userId,
      amount: row.amount,
      reason: row.reason,
      created_at: row.now,
    })
    .execute();
}

/** Locks the row of the reservation's show (none when there is no such reservation). */
export async function lockShowOf(trx: Tx, reservationId: string): Promise<void> {
  await sql`SELECT id FROM schedules WHERE id = (SELECT schedule_id FROM reservations WHERE id = ${reservationId}::uuid) FOR NO KEY UPDATE`.execute(trx);
}

/**
 * Voids the reservation's live tickets and frees the seats they held; their show is no longer
 * sold out, so a second sell-out is announced again (see ConcertsService.announceSoldOut). The
 * caller holds the show's row lock (lockShowOf), so a mark written just before is seen here.
 */
export async function voidTickets(trx: Tx, reservationId: string, now: Date) {
  await trx.updateTable('tickets').set({ voided_at: now }).where('reservation_id', '=', reservationId).where('voided_at', 'is', null).execute();
  const freed = await trx
    .updateTable('seats')
    .set({ reservation_id: null, held_until: null, sold_at: null })
    .where('reservation_id', '=', reservationId)
    .returning('schedule_id')
    .execute();
  const shows = [...new Set(freed.map((s) => s.schedule_id))];
  if (shows.length > 0) await trx.updateTable('schedules').set({ sold_out_at: null }).where('id', 'in', shows).where('sold_out_at', 'is not', null).execute();
}

export async function markRefunded(trx: Tx, reservationId: string, now: Date) {
  await trx.updateTable('reservations').set({ status: 'REFUNDED', refunded_at: now }).where('id', '=', reservationId).where('status', '=', 'PAID').execute();
}
