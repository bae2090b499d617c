import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.ts';
import { type Clock, dbNow, dbTime, plusMs } from '../clock.ts';
import { type Db, transaction } from '../db/database.ts';
import { type IdempotencyService, storedAnswer } from '../idempotency/idempotency.service.ts';
import type { QueueGate } from '../queue/queue.gate.ts';
import type { HoldInput, HoldsListInput, MineInput } from '../schemas.ts';
import type { HoldSummary, Page, Reservation } from '../types.ts';
import { decodeCursor, encodeCursor, toPage, ZCursorTime, ZCursorUuid } from '../paging.ts';
import type { ConcertsService } from '../concerts/concerts.service.ts';
import type { SeatMapCache } from '../concerts/seatmap.cache.ts';
import { insertComputedEvent, insertReservationEvent } from '../outbox/outbox.repository.ts';
import { hotRaw } from '../db/hot.ts';
import { offerFreedSeats, settleOffers } from '../waitlist/waitlist.repository.ts';
import { lockShowOf } from '../refunds/refunds.repository.ts';
import * as repo from './reservations.repository.ts';
import { getConcert, getScheduleRow } from '../concerts/concerts.repository.ts';

export const MAX_SEATS_PER_USER_PER_SCHEDULE = 4;

/** What a hold's checks before its key is claimed found: the show's row and the queue's pass. */
interface HoldCheck {
  schedule: Awaited<ReturnType<ConcertsService['scheduleRow']>>;
  pass: Awaited<ReturnType<QueueGate['admit']>>;
}

export class ReservationsService {
  constructor(
    private readonly deps: {
      db: Db;
      clock: Clock;
      holdTtlSeconds: number;
      waitlistOfferSeconds: number;
      idempotency: IdempotencyService;
      seatMaps: SeatMapCache;
      concerts: Pick<ConcertsService, 'scheduleRow' | 'takenSeats'>;
    },
  ) {}

  async hold(userId: number, input: HoldInput, gate: QueueGate): Promise<Reservation> {
    const { scheduleId, idempotencyKey } = input;
    const seatNumbers = [...input.seatNumbers].sort((a, b) => a - b);
    return this.deps.idempotency.run<Reservation, Reservation, HoldCheck>({ userId, procedure: 'reservations.hold', key: idempotencyKey }, { scheduleId, seatNumbers }, {
      // Before the key is claimed (they write nothing): a crowd refused a taken seat from the
      // cached seat map costs one read of the key each, not its claim and release.
      check: async () => {
        const schedule = await this.deps.concerts.scheduleRow(scheduleId);
        // The same round trip reads the seat map's version, for the check of taken seats below.
        const pass = await gate.admit(schedule.concert_id, { seatMapOf: scheduleId });
        const missing = seatNumbers.filter((n) => n > schedule.seat_count);
        if (missing.length > 0) {
          throw new AppError('SEAT_NOT_FOUND', `Seat ${missing.join(', ')} does not exist in schedule ${scheduleId}`, { seatNumbers: missing });
        }
        const taken = await this.deps.concerts.takenSeats(pass, scheduleId, seatNumbers);
        if (taken.length > 0) throw new AppError('SEAT_UNAVAILABLE', `Seat ${taken.join(', ')} is not available`, { seatNumbers: taken });
        return { schedule, pass };
      },
      execute: async (complete, { schedule, pass }) => {
        const { db, clock } = this.deps;
        const reservationId = randomUUID();
        // The database's clock decides (statement_timestamp() in the statement), not this process's.
        const now = dbNow(clock);
        // This process's time before the transaction: a claim it remembers lapses by it (ClaimNote).
        const startedAt = clock.now().getTime();
        return transaction(db, async (trx, onCommit) => {
          // The show's row (FOR KEY SHARE), then the user's (it serialises one user's holds), before
          // the seats: the order a show's cancellation locks in (see lockShowAndHolder). Then the
          // hold, then its event with the key's completion and the COMMIT: one round trip for the
          // whole transaction (db/pipeline.ts WITH_NEXT), so it is open only while PostgreSQL works.
          await repo.lockShowAndHolder(trx, scheduleId, userId);
          const held = await repo.holdSeats(trx, pass, {
            reservationId,
            userId,
            scheduleId,
            seatNumbers,
            heldUntil: plusMs(now, this.deps.holdTtlSeconds * 1000),
            now,
            limit: MAX_SEATS_PER_USER_PER_SCHEDULE,
          });
          // Read before the COMMIT goes (with the next statement): see ClaimNote.
          const loadMark = this.deps.seatMaps.loadMark(scheduleId);
          // The event and the key's answer are built by the database from what the hold wrote; the
          // show read after the claim, in the event's statement: a cancellation locks every seat of
          // the show, so it either committed before our claim (and this read sees it) or releases
          // this hold itself. A hold that wrote nothing fails that statement, so nothing commits.
          const written = await insertComputedEvent(
            trx,
            { type: 'reservation.held', reservationId, scheduleId },
            repo.heldSubject(reservationId),
            complete.alongComputed(hotRaw('(SELECT stored FROM subject)')),
            { checkLive: true },
          );
          const { at, heldUntil: holdExpiresAt, opened, started, owned, show, seats, holder } = held.read();
          if (!holder) throw new AppError('USER_NOT_FOUND', `User ${userId} does not exist`);
          // The booking window, by the statement's time; the hold claims nothing outside it.
          if (!opened) {
            throw new AppError('BOOKING_NOT_OPEN', `Booking opens at ${schedule.booking_opens_at.toISOString()}`, {
              bookingOpensAt: schedule.booking_opens_at,
            });
          }
          if (started) throw new AppError('BOOKING_CLOSED', 'This show has started; booking is closed');
          if (owned + seatNumbers.length > MAX_SEATS_PER_USER_PER_SCHEDULE) {
            throw new AppError(
              'TICKET_LIMIT_EXCEEDED',
              `A user may hold or own at most ${MAX_SEATS_PER_USER_PER_SCHEDULE} seats of one schedule (you have ${owned})`,
              { limit: MAX_SEATS_PER_USER_PER_SCHEDULE, owned },
            );
          }
          if (seats.length !== seatNumbers.length) {
            const got = new Set(seats.map((s) => s.seatNumber));
            const taken = seatNumbers.filter((n) => !got.has(n));
            throw new AppError('SEAT_UNAVAILABLE', `Seat ${taken.join(', ')} is not available`, { seatNumbers: taken });
          }
          if (written === 'cancelled') throw new AppError('SCHEDULE_CANCELLED', `Schedule ${scheduleId} has been cancelled`);
          // Every check above passed, so the statement wrote the reservation.
          if (written !== 'written') throw new Error(`hold ${reservationId}: nothing written, and no check says why`);
          // The answer is what the statement wrote and returned: no second read. The key stores the
          // same, as the event's statement built it (heldSubject).
          const result: Reservation = {
            reservationId,
            concertId: show.concertId,
            concertTitle: show.concertTitle,
            scheduleId,
            startsAt: show.startsAt,
            seats,
            totalPrice: seats.reduce((sum, s) => sum + s.price, 0),
            status: 'HELD',
            holdExpiresAt,
            source: 'QUEUE',
            createdAt: at,
            paidAt: null,
            refundedAt: null,
          };
          const claim = { seatNumbers, until: startedAt + (holdExpiresAt.getTime() - at.getTime()), loadMark };
          onCommit(() => this.deps.seatMaps.invalidate(schedule.concert_id, scheduleId, 'claim', claim));
          return result;
        });
      },
      replay: storedAnswer,
    });
  }

  async get(userId: number, reservationId: string): Promise<Reservation> {
    return publicReservation(await repo.getReservation(this.deps.db, reservationId, dbNow(this.deps.clock), userId));
  }

  /** The user's reservations, newest first, a page at a time. */
  async mine(userId: number, input: MineInput): Promise<Page<Reservation>> {
    const before = input.cursor === undefined ? undefined : decodeCursor(input.cursor, 'reservations', [ZCursorTime, ZCursorUuid]);
    const rows = await repo.findUserReservations(this.deps.db, userId, dbNow(this.deps.clock), {
      status: input.status,
      before: before && { createdAt: before[0], id: before[1] },
      limit: input.limit + 1,
    });
    return toPage(
      rows,
      input.limit,
      ({ createdKey: _, ...r }) => r,
      (r) => encodeCursor('reservations', [r.createdKey, r.reservationId]),
    );
  }

  /** The owner cancels (userId given) or an operator releases (no userId). */
  async cancel(reservationId: string, userId?: number): Promise<Reservation> {
    return transaction(this.deps.db, async (trx, onCommit) => {
      // The show's row first, in a cancelled show's and a refund's order (show, then its
      // reservations): the offer of the freed seats below takes it.
      await lockShowOf(trx, reservationId);
      const r = await repo.lockReservation(trx, reservationId, userId);
      // Read after the lock: a cancel that waited for a payment must see the hold as it is now.
      const now = await dbTime(trx, this.deps.clock);
      assertReleasable(r, now);
      if (r.status === 'HELD') {
        await repo.markCancelled(trx, reservationId, now);
        await repo.releaseSeats(trx, [reservationId]);
        await settleOffers(trx, [reservationId], 'LAPSED', now);
        const cancelled = await repo.getReservation(trx, reservationId, now);
        await insertReservationEvent(trx, 'reservation.cancelled', cancelled, now, { cancelledBy: userId === undefined ? 'ADMIN' : 'USER' });
        await offerFreedSeats(trx, r.schedule_id, now, this.deps.waitlistOfferSeconds);
        onCommit(() => this.deps.seatMaps.invalidate(cancelled.concertId, cancelled.scheduleId));
        return publicReservation(cancelled);
      }
      return publicReservation(await repo.getReservation(trx, reservationId, now));
    });
  }

  /** Live holds, soonest to lapse first, a page at a time (operators). */
  async listHolds(input: HoldsListInput): Promise<Page<HoldSummary>> {
    const after = input.cursor === undefined ? undefined : decodeCursor(input.cursor, 'holds', [ZCursorTime, ZCursorUuid]);
    const rows = await repo.findLiveHolds(this.deps.db, dbNow(this.deps.clock), {
      concertId: input.concertId,
      scheduleId: input.scheduleId,
      after: after && { expiresAt: after[0], id: after[1] },
      limit: input.limit + 1,
    });
    // A filter that names no concert or show is NOT_FOUND, not an empty page: an operator's typo
    // (`admin holds --concert 999`) read as "no holds" (an outside review). Asked only when empty.
    if (rows.length === 0) {
      if (input.concertId !== undefined) await getConcert(this.deps.db, input.concertId);
      if (input.scheduleId !== undefined) await getScheduleRow(this.deps.db, input.scheduleId);
    }
    return toPage(
      rows,
      input.limit,
      (r) => ({
        reservationId: r.id,
        userId: r.user_id,
        scheduleId: r.schedule_id,
        seatNumbers: (r.seat_numbers ?? []).map(Number),
        totalPrice: r.total_price,
        holdExpiresAt: r.hold_expires_at,
        source: r.source,
      }),
      (r) => encodeCursor('holds', [r.expires_key, r.id]),
    );
  }

  /**
   * Marks lapsed holds EXPIRED (reads already say so), writes their events, and offers their
   * seats to the waitlist (a lapsed offer passes to the next entry). SKIP LOCKED makes it safe on
   * every replica at once.
   */
  async sweepExpired(batch = 200): Promise<number> {
    const { db, clock, waitlistOfferSeconds } = this.deps;
    return transaction(db, async (trx, onCommit) => {
      // The shows' rows first, then their holds and seats: the order everything else locks in.
      const shows = await repo.lockShowsWithLapsedHolds(trx, dbNow(clock), batch);
      const expired = await repo.expireLapsedHolds(trx, dbNow(clock), batch, shows);
      if (expired.length === 0) return 0;
      const now = await dbTime(trx, clock);
      await settleOffers(trx, expired, 'LAPSED', now);
      const schedules = new Map<number, number>();
      for (const id of expired) {
        const r = await repo.getReservation(trx, id, now);
        await insertReservationEvent(trx, 'reservation.expired', r, now);
        schedules.set(r.scheduleId, r.concertId);
      }
      for (const scheduleId of [...schedules.keys()].sort((a, b) => a - b)) await offerFreedSeats(trx, scheduleId, now, waitlistOfferSeconds);
      onCommit(async () => {
        for (const [scheduleId, concertId] of schedules) await this.deps.seatMaps.invalidate(concertId, scheduleId);
      });
      return expired.length;
    });
  }
}

/** Cancelling twice answers the cancelled reservation; a paid (or paid and refunded) or lapsed one cannot be cancelled. */
function assertReleasable(r: { status: string; hold_expires_at: Date }, now: Date): void {
  if (r.status === 'PAID') throw new AppError('ALREADY_PAID', 'This reservation is paid and cannot be cancelled');
  if (r.status === 'REFUNDED') throw new AppError('ALREADY_PAID', 'This reservation was paid and refunded; there is nothing to cancel');
  if (r.status === 'EXPIRED' || (r.status === 'HELD' && r.hold_expires_at <= now)) {
    throw new AppError('HOLD_EXPIRED', 'This hold has already expired; its seats are free');
  }
}

export function publicReservation(r: Reservation & { userId?: number }): Reservation {
  const { userId: _userId, ...rest } = r;
  return rest;
}

