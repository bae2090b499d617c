import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.ts';
import { sql } from 'kysely';
import { type Clock, dbNow, dbNowAfterLocks } from '../clock.ts';
import { type Db, transaction, type Tx } from '../db/database.ts';
import type { Complete, IdempotencyService } from '../idempotency/idempotency.service.ts';
import type { ActivePass, PaidToken, QueueGate, SpentTokens } from '../queue/queue.gate.ts';
import type { PayInput } from '../schemas.ts';
import type { PaymentResult, Reservation } from '../types.ts';
import { getReservation, paidSubject } from '../reservations/reservations.repository.ts';
import { hotRaw } from '../db/hot.ts';
import type { SeatMapCache } from '../concerts/seatmap.cache.ts';
import { insertComputedEvent, insertReservationEvent } from '../outbox/outbox.repository.ts';
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
      const paymentId = randomUUID();
      // The sale in one statement (see sellReservation): seats sold only while still held by this
      // reservation and unexpired, then the payment, the debit, the tickets and PAID, only if the
      // balance covers it. statement_timestamp(): the sale's statement starts after the locks below.
      const sale = { paymentId, reservationId, scheduleId, userId, amount: reservation.totalPrice, seatCount: reservation.seats.length, now: dbNow(clock) };
      // The reservation, then the payer (every change of a balance locks it), in one statement.
      // The database's clock decides the deadline, read after the locks: a payment that queued
      // behind another must not sell a hold that lapsed while it waited.
      const lock = (withNext: boolean) => repo.lockReservationAndPayer(trx, reservationId, userId, dbNowAfterLocks(clock), { withNext });
      const onPaid = () => onCommit(() => this.deps.seatMaps.invalidate(concertId, scheduleId, 'claim'));
      if (active) {
        // With the queue's pass, the whole transaction is one round trip (db/pipeline.ts
        // WITH_NEXT): the locks, the sale, and the event with the key's answer, both built by the
        // database from what the sale wrote, and the COMMIT. A sale that wrote nothing fails the
        // event's statement, so nothing commits; the refusals below then read what the locks and
        // the sale read, in the same round trip.
        const locked = await lock(true);
        const selling = await repo.sellReservation(trx, active, sale, { withNext: true });
        const paidWith = { concertId, tokenId: active.tokenId };
        const written = await insertComputedEvent(
          trx,
          { type: 'payment.completed', reservationId, scheduleId },
          paidSubject(paymentId, reservationId, paidWith),
          complete.alongComputed(hotRaw('(SELECT stored FROM subject)')),
          { checkLive: false },
        );
        const r = locked.read();
        const sold = selling.read();
        refuseUnpayable(r, sold, scheduleId);
        if (sold.sold !== r.seat_count || sold.balance === null) throw holdEnded(sold);
        // Every check above passed, so the statement wrote the payment.
        if (written !== 'written') throw new Error(`payment of ${reservationId}: nothing written, and no check says why`);
        onPaid();
        return stored(r, sold, paidWith);
      }
      // A waitlist offer's pass is read from the locked reservation's OFFERED entry, after the
      // refusals (in statements of their own, the show's read after the locks); the sale and the
      // offer's settlement follow, then the event, built here, with the COMMIT.
      const r = (await lock(false)).read();
      // The show is read only for a refusal that names it, as before the one-round-trip path.
      const show = () => readShow(trx, scheduleId, reservationId);
      refuseUnpayable(r, r.status === 'CANCELLED' || r.status === 'EXPIRED' || r.lapsed ? await show() : undefined, scheduleId);
      const sold = (await repo.sellReservation(trx, await offerPass(trx, reservationId, userId), sale, { withNext: false })).read();
      if (sold.sold !== r.seat_count || sold.balance === null) throw holdEnded(await show());
      await settleOffers(trx, [reservationId], 'ACCEPTED', sold.paid_at);
      const result = stored(r, sold, undefined);
      // What a read now would return, without the read: the sale's statement set these two.
      const paid = { ...reservation, status: 'PAID' as const, paidAt: sold.paid_at };
      // The idempotency key is completed in the event's statement, and the transaction commits
      // with it (one round trip): nothing below may roll it back.
      await insertReservationEvent(trx, 'payment.completed', paid, sold.paid_at, {
        payment: { paymentId, amount: r.total_price, paidAt: sold.paid_at, balanceAfter: sold.balance },
      }, complete.along(result), { last: true });
      onPaid();
      return result;

      /** What the key keeps; paidSubject builds the same in the database. */
      function stored(r: { total_price: number; balance: number }, sold: { paid_at: Date; balance: number | null }, paidWith: PaidToken | undefined): StoredPayment {
        return {
          paymentId,
          reservationId,
          amount: r.total_price,
          status: 'COMPLETED',
          paidAt: sold.paid_at,
          balanceBefore: r.balance,
          balanceAfter: sold.balance!,
          concertId,
          scheduleId,
          ...(paidWith ? { paidWith } : {}),
        };
      }
    });
  }
}

/** The show of a payment, read in a statement of its own (after the locks), for its refusals. */
async function readShow(trx: Tx, scheduleId: number, reservationId: string): Promise<Show> {
  const { rows } = await sql<Show>`
    SELECT sc.cancelled_at IS NOT NULL AS show_cancelled, sc.starts_at, sc.starts_at <= r.hold_expires_at AS ended_by_start
    FROM schedules sc JOIN reservations r ON r.id = ${reservationId}::uuid WHERE sc.id = ${scheduleId}`.execute(trx);
  return rows[0]!;
}

/**
 * A payment's show, as read after its locks: whether it was cancelled, when it starts, and
 * whether its start ended the hold (a hold never outlasts it, so its expiry is then the start).
 */
interface Show {
  show_cancelled: boolean;
  starts_at: Date;
  ended_by_start: boolean;
}

/**
 * The refusals of a payment, from its locked reservation and payer (lockReservationAndPayer) and
 * its show (needed only by a CANCELLED, EXPIRED or lapsed reservation's).
 */
function refuseUnpayable(r: { status: string; lapsed: boolean; balance: number; total_price: number }, show: Show | undefined, scheduleId: number): void {
  if (r.status === 'PAID') throw new AppError('ALREADY_PAID', 'This reservation is already paid');
  // Paid once and refunded: it is not for sale again (its seats are free; book them anew).
  if (r.status === 'REFUNDED') throw new AppError('ALREADY_PAID', 'This reservation was paid and then refunded; book its seats again');
  if (r.status === 'CANCELLED') {
    // A hold released by its show's cancellation says so: the fan did not cancel it. The show is
    // read after the locks: when the lock waited for that cancellation, its statement saw the
    // reservation as committed but the show as its snapshot had it, not cancelled (an outside
    // review: 23 payments in 30 racing a show's cancellation were told they had cancelled the
    // hold themselves).
    if (show!.show_cancelled) throw new AppError('SCHEDULE_CANCELLED', `Schedule ${scheduleId} has been cancelled; this hold was released`);
    throw new AppError('RESERVATION_CANCELLED', 'This reservation was cancelled');
  }
  if (r.status === 'EXPIRED' || r.lapsed) throw holdEnded(show!);
  if (r.balance < r.total_price) {
    throw new AppError('INSUFFICIENT_BALANCE', `The balance is ${r.balance} won; this reservation costs ${r.total_price} won`, {
      balance: r.balance,
      required: r.total_price,
    });
  }
}

/**
 * HOLD_EXPIRED, saying whether it was the show's start that ended the hold: the fan cannot hold
 * again either. A hold that lapsed before is told so, whenever it is paid.
 */
function holdEnded(show: Show): AppError {
  if (show.ended_by_start) {
    return new AppError('HOLD_EXPIRED', `The hold ended when the show started (${show.starts_at.toISOString()}); its seats can no longer be bought`, {
      startsAt: show.starts_at,
    });
  }
  return new AppError('HOLD_EXPIRED', 'The hold expired before payment; its seats are free again');
}
