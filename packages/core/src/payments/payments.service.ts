import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import { type Db, type Tx, transaction } from '../db/database.ts';
import type { IdempotencyService } from '../idempotency/idempotency.service.ts';
import type { QueueGate } from '../queue/queue.gate.ts';
import type { PayInput } from '../schemas.ts';
import type { PaymentResult } from '../types.ts';
import { applyLedgerEntry } from '../balance/balance.repository.ts';
import { getReservation, lockReservation } from '../reservations/reservations.repository.ts';
import { lockUser } from '../users/users.repository.ts';
import type { SeatMapCache } from '../concerts/seatmap.cache.ts';
import { insertReservationEvent } from '../outbox/outbox.repository.ts';
import { emitSoldOutIfSo, settleOffers } from '../waitlist/waitlist.repository.ts';
import * as repo from './payments.repository.ts';

/** What happens to the payer's place in the waiting room once the money has moved. */
export interface PurchaseHook {
  /** Expires the payer's queue token for the concert, freeing the slot; false if that failed. */
  purchased(userId: number, concertId: number): Promise<boolean>;
}

type StoredPayment = Omit<PaymentResult, 'queueTokenExpired'> & { concertId: number; scheduleId: number; source?: 'QUEUE' | 'WAITLIST' };

export class PaymentsService {
  constructor(
    private readonly deps: { db: Db; clock: Clock; idempotency: IdempotencyService; purchase: PurchaseHook; seatMaps: SeatMapCache },
  ) {}

  async pay(userId: number, input: PayInput, gate: QueueGate): Promise<PaymentResult> {
    const { reservationId, idempotencyKey } = input;
    const stored = await this.deps.idempotency.run<StoredPayment>(
      { userId, procedure: 'payments.pay', key: idempotencyKey },
      { reservationId },
      { execute: (complete) => this.execute(userId, reservationId, gate, complete) },
    );
    // Runs after the commit, on the first call and on every replay: a token that could not be
    // expired the first time (queue store down) gets another chance when the client retries.
    const { concertId, scheduleId, source, ...payment } = stored;
    await this.deps.seatMaps.invalidate(concertId, scheduleId);
    // A waitlist offer was paid without a queue token: there is no place in line to free.
    const queueTokenExpired = source === 'WAITLIST' ? false : await this.deps.purchase.purchased(userId, concertId).catch(() => false);
    return { ...payment, queueTokenExpired };
  }

  private async execute(
    userId: number,
    reservationId: string,
    gate: QueueGate,
    complete: (trx: Tx, result: StoredPayment) => Promise<void>,
  ): Promise<StoredPayment> {
    const { db, clock } = this.deps;
    const reservation = await getReservation(db, reservationId, clock.now(), userId);
    // A waitlist offer is its own admission: it is paid without a queue token.
    if (reservation.source !== 'WAITLIST') await gate.assertActive(reservation.concertId);
    return transaction(db, async (trx) => {
      const r = await lockReservation(trx, reservationId, userId);
      // Read the time after the lock: a payment that queued behind another must not sell a hold
      // that lapsed while it waited.
      const now = clock.now();
      if (r.status === 'PAID') throw new AppError('ALREADY_PAID', 'This reservation is already paid');
      if (r.status === 'CANCELLED') throw new AppError('RESERVATION_CANCELLED', 'This reservation was cancelled');
      if (r.status === 'EXPIRED' || r.hold_expires_at <= now) {
        throw new AppError('HOLD_EXPIRED', 'The hold expired before payment; its seats are free again');
      }
      const user = await lockUser(trx, userId);
      if (user.balance < r.total_price) {
        throw new AppError('INSUFFICIENT_BALANCE', `The balance is ${user.balance} won; this reservation costs ${r.total_price} won`, {
          balance: user.balance,
          required: r.total_price,
        });
      }
      // Seats still held by this reservation, unexpired, become SOLD in the same statement that
      // checks it: a hold lapsing concurrently ends either sold (here) or free (re-held), never both.
      const sold = await repo.sellHeldSeats(trx, reservationId, now);
      if (sold.length !== r.seat_count) throw new AppError('HOLD_EXPIRED', 'The hold expired before payment; its seats are free again');
      const paymentId = randomUUID();
      await repo.insertPayment(trx, {
        id: paymentId,
        reservationId,
        userId,
        amount: r.total_price,
        balanceBefore: user.balance,
        balanceAfter: user.balance - r.total_price,
        now,
      });
      const { balance } = await applyLedgerEntry(trx, {
        user_id: userId,
        kind: 'PAYMENT',
        source: 'SYSTEM',
        amount: -r.total_price,
        reservation_id: reservationId,
        payment_id: paymentId,
        created_at: now,
      });
      await repo.insertTickets(trx, sold, { reservationId, userId, paymentId, now });
      await repo.markPaid(trx, reservationId, now);
      if (r.source === 'WAITLIST') await settleOffers(trx, [reservationId], 'ACCEPTED', now);
      const paid = await getReservation(trx, reservationId, now);
      await insertReservationEvent(trx, 'payment.completed', paid, now, {
        payment: { paymentId, amount: r.total_price, paidAt: now, balanceAfter: balance },
      });
      await emitSoldOutIfSo(trx, r.schedule_id, now);
      const result: StoredPayment = {
        paymentId,
        reservationId,
        amount: r.total_price,
        status: 'COMPLETED',
        paidAt: now,
        balanceBefore: user.balance,
        balanceAfter: balance,
        concertId: reservation.concertId,
        scheduleId: reservation.scheduleId,
        source: r.source,
      };
      await complete(trx, result);
      return result;
    });
  }
}
