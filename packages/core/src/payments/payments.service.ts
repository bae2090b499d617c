import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.ts';
import { sql } from 'kysely';
import { type Clock, dbNow, dbNowAfterLocks } from '../clock.ts';
import { type Db, transaction, type Tx } from '../db/database.ts';
import type { Complete, IdempotencyService } from '../idempotency/idempotency.service.ts';
import type { ActivePass, PaidToken, QueueGate, SpentTokens } from '../queue/queue.gate.ts';
import type { PayInput } from '../schemas.ts';
import type { PaymentResult, Reservation } from '../types.ts';
import { getReservation } from '../reservations/reservations.repository.ts';
import { getScheduleRow } from '../concerts/concerts.repository.ts';
import type { SeatMapCache } from '../concerts/seatmap.cache.ts';
import { insertReservationEvent } from '../outbox/outbox.repository.ts';
import { settleOffers } from '../waitlist/waitlist.repository.ts';
import { offerPass } from '../waitlist/waitlist.pass.ts';
import * as repo from './payments.repository.ts';

/** What the idempotency key keeps: the answer, and what a replay needs (the seats' schedule, the token that paid). */
type StoredPayment = Omit<PaymentResult, 'queueTokenExpired'> & { concertId: number; scheduleId: number; paidWith?: PaidToken };

export class PaymentsService {
  constructor(
    private readonly deps: { db: Db; clock: Clock; idempotency: IdempotencyService; queue: SpentTokens; seatMaps: SeatMapCache },
  ) {}

  async pay(userId: number, input: PayInput, gate: QueueGate): Promise<PaymentResult> {
    const { reservationId, idempotencyKey } = input;
    return this.deps.idempotency.run<StoredPayment, PaymentResult>(
      { userId, procedure: 'payments.pay', key: idempotencyKey },
      { reservationId },
      {
        execute: async (complete) => {
          // The reservation as its owner sees it, read once before the transaction: its concert
          // (for the queue gate), and what the paid reservation's event shows. Nothing in it but
          // its status changes while it is HELD; the transaction locks it and decides on that.
          const reservation = await getReservation(this.deps.db, reservationId, dbNow(this.deps.clock), userId);
          // A waitlist offer is its own admission: it is paid without a queue token (its OfferPass
          // is taken inside the transaction, from the locked reservation's OFFERED entry).
          const pass = reservation.source === 'WAITLIST' ? undefined : await gate.admit(reservation.concertId);
          return this.answer(await this.execute(userId, pass, reservation, complete));
        },
        // A replay gives up the token that paid once more (it may not have been given up the first
        // time, the queue store being down), never whatever token the user holds now.
        replay: (stored) => this.answer(stored),
      },
    );
  }

  /** After the commit: the token that paid is given up; queueTokenExpired says whether that is done. */
  private async answer({ concertId: _c, scheduleId: _s, paidWith, ...payment }: StoredPayment): Promise<PaymentResult> {
    const queueTokenExpired = paidWith ? await this.deps.queue.spend(paidWith).then(() => true, () => false) : false;
    return { ...payment, queueTokenExpired };
  }

  private async execute(
    userId: number,
    active: ActivePass | undefined,
    reservation: Reservation & { userId: number },
    complete: Complete<StoredPayment>,
  ): Promise<StoredPayment> {
    const { db, clock } = this.deps;
    const { reservationId, concertId, scheduleId } = reservation;
    return transaction(db, async (trx, onCommit) => {
      // The reservation, then the payer (every change of a balance locks it), in one statement.
      // The database's clock decides the deadline, read after the locks: a payment that queued
      // behind another must not sell a hold that lapsed while it waited.
      const r = await repo.lockReservationAndPayer(trx, reservationId, userId, dbNowAfterLocks(clock));
      if (r.status === 'PAID') throw new AppError('ALREADY_PAID', 'This reservation is already paid');
      // Paid once and refunded: it is not for sale again (its seats are free; book them anew).
      if (r.status === 'REFUNDED') throw new AppError('ALREADY_PAID', 'This reservation was paid and then refunded; book its seats again');
      if (r.status === 'CANCELLED') {
        // A hold released by its show's cancellation says so: the fan did not cancel it. Read in a
        // statement of its own: when the lock above waited for that cancellation, its statement
        // saw the reservation as committed but the show as its snapshot had it, not cancelled
        // (an outside review: 23 payments in 30 racing a show's cancellation were told they had
        // cancelled the hold themselves).
        if ((await getScheduleRow(trx, scheduleId)).cancelled_at !== null) {
          throw new AppError('SCHEDULE_CANCELLED', `Schedule ${scheduleId} has been cancelled; this hold was released`);
        }
        throw new AppError('RESERVATION_CANCELLED', 'This reservation was cancelled');
      }
      if (r.status === 'EXPIRED' || r.lapsed) throw await holdEnded(trx, scheduleId, r.hold_expires_at);
      if (r.balance < r.total_price) {
        throw new AppError('INSUFFICIENT_BALANCE', `The balance is ${r.balance} won; this reservation costs ${r.total_price} won`, {
          balance: r.balance,
          required: r.total_price,
        });
      }
      const pass = active ?? (await offerPass(trx, reservationId, userId));
      const paymentId = randomUUID();
      // The sale in one statement (see sellReservation): seats sold only while still held by this
      // reservation and unexpired, then the payment, the debit, the tickets and PAID.
      const { sold, balance, paid_at: now } = await repo.sellReservation(trx, pass, {
        paymentId,
        reservationId,
        userId,
        amount: r.total_price,
        seatCount: r.seat_count,
        // statement_timestamp(): the sale's statement starts after the locks above.
        now: dbNow(clock),
      });
      if (sold !== r.seat_count || balance === null) throw await holdEnded(trx, scheduleId, r.hold_expires_at);
      if (r.source === 'WAITLIST') await settleOffers(trx, [reservationId], 'ACCEPTED', now);
      // What a read now would return, without the read: the sale's statement set these two.
      const paid = { ...reservation, status: 'PAID' as const, paidAt: now };
      const result: StoredPayment = {
        paymentId,
        reservationId,
        amount: r.total_price,
        status: 'COMPLETED',
        paidAt: now,
        balanceBefore: r.balance,
        balanceAfter: balance,
        concertId,
        scheduleId,
        ...(active ? { paidWith: { concertId, tokenId: active.tokenId } } : {}),
      };
      // The idempotency key is completed in the event's statement, and the transaction commits
      // with it (one round trip): nothing below may roll it back.
      await insertReservationEvent(trx, 'payment.completed', paid, now, {
        payment: { paymentId, amount: r.total_price, paidAt: now, balanceAfter: balance },
      }, complete.along(result), { last: true });
      onCommit(() => this.deps.seatMaps.invalidate(concertId, scheduleId, 'claim'));
      return result;
    });
  }
}

/**
 * HOLD_EXPIRED, saying whether it was the show's start that ended the hold (a hold never outlasts
 * it, so its expiry is then the start): the fan cannot hold again either. A hold that lapsed
 * before is told so, whenever it is paid. Read only on this refusal, off the payment's hot path.
 */
async function holdEnded(trx: Tx, scheduleId: number, holdExpiresAt: Date): Promise<AppError> {
  const { rows } = await sql<{ starts_at: Date; ended_by_start: boolean }>`
    SELECT starts_at, starts_at <= ${holdExpiresAt}::timestamptz AS ended_by_start FROM schedules WHERE id = ${scheduleId}`.execute(trx);
  const show = rows[0];
  if (show?.ended_by_start) {
    return new AppError('HOLD_EXPIRED', `The hold ended when the show started (${show.starts_at.toISOString()}); its seats can no longer be bought`, {
      startsAt: show.starts_at,
    });
  }
  return new AppError('HOLD_EXPIRED', 'The hold expired before payment; its seats are free again');
}
