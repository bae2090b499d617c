import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import { type Db, type Tx, transaction } from '../db/database.ts';
import type { IdempotencyService } from '../idempotency/idempotency.service.ts';
import type { QueueGate } from '../queue/queue.gate.ts';
import type { PayInput } from '../schemas.ts';
import type { PaymentResult } from '../types.ts';
import type { SeatMapCache } from '../concerts/seatmap.cache.ts';
import * as repo from './payments.repository.ts';

/** What happens to the payer's place in the waiting room once the money has moved. */
export interface PurchaseHook {
  /** Expires the payer's queue token for the concert, freeing the slot; false if that failed. */
  purchased(userId: number, concertId: number): Promise<boolean>;
}

type StoredPayment = Omit<PaymentResult, 'queueTokenExpired'> & { concertId: number; scheduleId: number };

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
    const { concertId, scheduleId, ...payment } = stored;
    await this.deps.seatMaps.invalidate(concertId, scheduleId);
    const queueTokenExpired = await this.deps.purchase.purchased(userId, concertId).catch(() => false);
    return { ...payment, queueTokenExpired };
  }

  private async execute(
    userId: number,
    reservationId: string,
    gate: QueueGate,
    complete: (trx: Tx, result: StoredPayment) => Promise<void>,
  ): Promise<StoredPayment> {
    const { db, clock } = this.deps;
    const reservation = await repo.getReservationShow(db, reservationId, userId);
    await gate.assertActive(reservation.concertId);
    return transaction(db, async (trx) => {
      const r = await repo.lockReservationAndPayer(trx, reservationId, userId);
      // Read the time after the lock: a payment that queued behind another must not sell a hold
      // that lapsed while it waited.
      const now = clock.now();
      if (r.status === 'PAID') throw new AppError('ALREADY_PAID', 'This reservation is already paid');
      if (r.status === 'CANCELLED') throw new AppError('RESERVATION_CANCELLED', 'This reservation was cancelled');
      if (r.status === 'EXPIRED' || r.hold_expires_at <= now) {
        throw new AppError('HOLD_EXPIRED', 'The hold expired before payment; its seats are free again');
      }
      if (r.balance < r.total_price) {
        throw new AppError('INSUFFICIENT_BALANCE', `The balance is ${r.balance} won; this reservation costs ${r.total_price} won`, {
          balance: r.balance,
          required: r.total_price,
        });
      }
      const paymentId = randomUUID();
      const { sold, balance } = await repo.sellReservation(trx, {
        paymentId,
        reservationId,
        userId,
        amount: r.total_price,
        seatCount: r.seat_count,
        balanceBefore: r.balance,
        now,
      });
      if (sold !== r.seat_count || balance === null) throw new AppError('HOLD_EXPIRED', 'The hold expired before payment; its seats are free again');
      const result: StoredPayment = {
        paymentId,
        reservationId,
        amount: r.total_price,
        status: 'COMPLETED',
        paidAt: now,
        balanceBefore: r.balance,
        balanceAfter: balance,
        concertId: reservation.concertId,
        scheduleId: reservation.scheduleId,
      };
      await complete(trx, result);
      return result;
    });
  }
}
