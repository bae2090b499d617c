import type { Tx } from '../db/database.ts';

/**
 * Serialises every cancellation of one show, whichever process runs it. FOR UPDATE, not NO KEY
 * UPDATE: it also makes a hold and a waitlist join of the show wait (their first lock is the
 * show's row, FOR KEY SHARE and FOR NO KEY UPDATE), so none of them writes a row of a show being
 * cancelled, and none holds a seat or a user's row the cancellation waits for.
 */
export async function lockSchedule(trx: Tx, scheduleId: number) {
  return trx.selectFrom('schedules').select(['id', 'concert_id', 'cancelled_at']).where('id', '=', scheduleId).forUpdate().executeTakeFirst();
}

export async function markCancelled(trx: Tx, scheduleId: number, now: Date) {
  await trx.updateTable('schedules').set({ cancelled_at: now }).where('id', '=', scheduleId).execute();
}

/** HELD and PAID reservations of the show (lapsed holds included), locked in id order. */
export async function lockLiveReservations(trx: Tx, scheduleId: number, except: string[]) {
  let q = trx
    .selectFrom('reservations')
    .select(['id', 'status', 'user_id', 'hold_expires_at'])
    .where('schedule_id', '=', scheduleId)
    .where('status', 'in', ['HELD', 'PAID'])
    .orderBy('id')
    .forUpdate();
  if (except.length > 0) q = q.where('id', 'not in', except);
  return q.execute();
}

export async function lockSeats(trx: Tx, scheduleId: number) {
  await trx.selectFrom('seats').select('seat_number').where('schedule_id', '=', scheduleId).orderBy('seat_number').forUpdate().execute();
}

export async function getScheduleSummary(trx: Tx, scheduleId: number) {
  return trx
    .selectFrom('schedules as sc')
    .innerJoin('concerts as c', 'c.id', 'sc.concert_id')
    .select(['sc.concert_id', 'c.title', 'c.venue', 'sc.starts_at'])
    .where('sc.id', '=', scheduleId)
    .executeTakeFirstOrThrow();
}
