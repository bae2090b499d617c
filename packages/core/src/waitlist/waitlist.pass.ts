import { AppError } from '../errors.ts';
import type { Tx } from '../db/database.ts';

declare const offered: unique symbol;

/**
 * Proof that a booking write is a waitlist offer: the offer is its own admission, so it is
 * made and paid without a queue token. Like the queue gate's ActivePass, the brand's symbol is
 * not exported: only this module makes one, from a locked waitlist entry (to make an offer)
 * or from a live OFFERED entry naming the reservation (to pay it).
 */
export interface OfferPass {
  readonly [offered]: true;
  readonly userId: number;
  readonly concertId: number;
  readonly reservationId: string;
}

/** For the offer being made to a WAITING entry the caller has locked. */
export function grantOffer(entry: { user_id: number }, concertId: number, reservationId: string): OfferPass {
  return { userId: entry.user_id, concertId, reservationId } as OfferPass;
}

/** For paying an offer: the reservation must be the user's WAITLIST hold with its entry still OFFERED. */
export async function offerPass(trx: Tx, reservationId: string, userId: number): Promise<OfferPass> {
  const row = await trx
    .selectFrom('reservations as r')
    .innerJoin('waitlist_entries as w', 'w.reservation_id', 'r.id')
    .innerJoin('schedules as sc', 'sc.id', 'r.schedule_id')
    .select(['sc.concert_id'])
    .where('r.id', '=', reservationId)
    .where('r.user_id', '=', userId)
    .where('r.source', '=', 'WAITLIST')
    .where('w.status', '=', 'OFFERED')
    .executeTakeFirst();
  if (!row) throw new AppError('HOLD_EXPIRED', 'This waitlist offer is no longer open');
  return { userId, concertId: row.concert_id, reservationId } as OfferPass;
}
