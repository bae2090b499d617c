import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.ts';
import { type Clock, dbTime } from '../clock.ts';
import { type Db, type Tx, transaction } from '../db/database.ts';
import type { RefundReason } from '../db/schema.ts';
import { type IdempotencyService, storedAnswer } from '../idempotency/idempotency.service.ts';
import { applyLedgerEntry } from '../balance/balance.repository.ts';
import type { SeatMapCache } from '../concerts/seatmap.cache.ts';
import { insertReservationEvent } from '../outbox/outbox.repository.ts';
import { getReservation, lockReservation } from '../reservations/reservations.repository.ts';
import { publicReservation } from '../reservations/reservations.service.ts';
import type { RefundInput } from '../schemas.ts';
import type { Reservation } from '../types.ts';
import { lockUser } from '../users/users.repository.ts';
import { offerFreedSeats } from '../waitlist/waitlist.repository.ts';
import * as repo from './refunds.repository.ts';

export interface RefundPolicy {
  /** Buyers may refund until this many hours before the show. */
  cutoffHours: number;
  waitlistOfferSeconds: number;
}

export class RefundsService {
  constructor(private readonly deps: { db: Db; clock: Clock; idempotency: IdempotencyService; seatMaps: SeatMapCache; policy: RefundPolicy }) {}

  /** The buyer's refund, within the refund window, exactly once per key and per reservation. */
  async refund(userId: number, input: RefundInput): Promise<Reservation> {
    const { reservationId, idempotencyKey } = input;
    return this.deps.idempotency.run<Reservation>(
      { userId, procedure: 'reservations.refund', key: idempotencyKey },
      { reservationId },
      {
        execute: (complete) =>
          transaction(this.deps.db, async (trx, onCommit) => {
            const result = await refundIn(trx, { reservationId, userId, reason: 'USER', clock: this.deps.clock, policy: this.deps.policy });
            await complete(trx, result);
            onCommit(() => this.deps.seatMaps.invalidate(result.concertId, result.scheduleId));
            return result;
          }),
        replay: storedAnswer,
      },
    );
  }

  /** An operator's refund: any time, any reservation that is PAID. */
  async adminRefund(reservationId: string): Promise<Reservation> {
    return transaction(this.deps.db, async (trx, onCommit) => {
      const refunded = await refundIn(trx, { reservationId, reason: 'ADMIN', clock: this.deps.clock, policy: this.deps.policy });
      onCommit(() => this.deps.seatMaps.invalidate(refunded.concertId, refunded.scheduleId));
      return refunded;
    });
  }
}

/**
 * The whole refund, in the caller's transaction: the REFUND ledger entry, the tickets voided,
 * the reservation REFUNDED, its seats free again and offered to the waitlist first (unless the
 * show is being cancelled). The refunds table's unique payment makes a second refund fail even
 * if two transactions got past the status check.
 */
export async function refundIn(
  trx: Tx,
  opts: { reservationId: string; userId?: number; reason: RefundReason; clock: Clock; policy: RefundPolicy },
): Promise<Reservation> {
  const { reservationId, reason } = opts;
  // The show's row first, in a cancellation's order (show, then its reservations): freeing a seat
  // of a show sold out clears its mark, and the mark's writer (markSoldOut) locks that row too.
  await repo.lockShowOf(trx, reservationId);
  const r = await lockReservation(trx, reservationId, opts.userId);
  // The buyer's row FOR UPDATE before the refund's row, whose foreign key takes it FOR KEY SHARE:
  // taken the other way round (KEY SHARE, then FOR UPDATE), two refunds of one buyer in two shows
  // (or a refund and a show's cancellation) each held the share the other's FOR UPDATE waited for.
  // Lock order: the show, the reservation, the buyer, then the tickets and seats.
  await lockUser(trx, r.user_id);
  // The time is read once all of them are ours, so whatever this refund waited for is stamped
  // before it: a payment of this reservation, or the buyer's payment for another show, which a
  // show's cancellation (refunding its buyers one by one) may wait for. Its entry would otherwise
  // be dated before the PAYMENT written ahead of it in the buyer's ledger.
  const now = await dbTime(trx, opts.clock);
  const before = await getReservation(trx, reservationId, now);
  if (r.status === 'REFUNDED') {
    throw new AppError('NOT_REFUNDABLE', `This reservation was already refunded at ${before.refundedAt?.toISOString()}`, { status: r.status });
  }
  if (r.status !== 'PAID') throw new AppError('NOT_REFUNDABLE', `Only a PAID reservation can be refunded; this one is ${before.status}`, { status: before.status });
  if (reason === 'USER') {
    const closesAt = new Date(before.startsAt.getTime() - opts.policy.cutoffHours * 3600_000);
    if (now >= closesAt) {
      throw new AppError('REFUND_WINDOW_CLOSED', `Refunds closed at ${closesAt.toISOString()}, ${opts.policy.cutoffHours} h before the show`, {
        closedAt: closesAt,
      });
    }
  }
  const payment = await repo.findPaymentOf(trx, reservationId);
  if (!payment) throw new AppError('INTERNAL', `PAID reservation ${reservationId} has no payment`);
  const refundId = randomUUID();
  await repo.insertRefund(trx, { id: refundId, paymentId: payment.id, reservationId, userId: r.user_id, amount: payment.amount, reason, now });
  // A free ticket refunds nothing: no ledger entry of zero won.
  const balanceAfter =
    payment.amount > 0
      ? (
          await applyLedgerEntry(trx, {
            user_id: r.user_id,
            kind: 'REFUND',
            source: 'SYSTEM',
            amount: payment.amount,
            reservation_id: reservationId,
            payment_id: null,
            refund_id: refundId,
            created_at: now,
          })
        ).balance
      : undefined;
  await repo.voidTickets(trx, reservationId, now);
  await repo.markRefunded(trx, reservationId, now);
  const refunded = await getReservation(trx, reservationId, now);
  await insertReservationEvent(trx, 'reservation.refunded', refunded, now, {
    refund: { refundId, paymentId: payment.id, amount: payment.amount, reason, refundedAt: now, ...(balanceAfter === undefined ? {} : { balanceAfter }) },
  });
  if (reason !== 'SCHEDULE_CANCELLED') await offerFreedSeats(trx, r.schedule_id, now, opts.policy.waitlistOfferSeconds);
  return publicReservation(refunded);
}
