import { AppError } from '../errors.ts';
import { type Clock, dbTime } from '../clock.ts';
import { type Db, type Tx, transaction } from '../db/database.ts';
import type { SeatMapCache } from '../concerts/seatmap.cache.ts';
import { insertEvent, insertReservationEvent } from '../outbox/outbox.repository.ts';
import { type RefundPolicy, refundIn } from '../refunds/refunds.service.ts';
import { getReservation, markCancelled, markExpired, releaseSeats } from '../reservations/reservations.repository.ts';
import type { ScheduleCancelResult } from '../types.ts';
import { closeScheduleEntries, settleOffers } from '../waitlist/waitlist.repository.ts';
import * as repo from './schedules.repository.ts';

export class SchedulesService {
  constructor(private readonly deps: { db: Db; clock: Clock; seatMaps: SeatMapCache; policy: RefundPolicy }) {}

  /**
   * Cancels a show in one transaction: every paid reservation refunded, every hold released,
   * every waitlist entry closed, the show no longer bookable. The schedule's row lock serialises
   * operators on any number of processes; a crash rolls the whole of it back, and running it
   * again does only what is left (this call's counts say what it did).
   */
  async cancel(scheduleId: number): Promise<ScheduleCancelResult> {
    const { db, clock, policy } = this.deps;
    const result = await transaction(db, async (trx) => {
      const schedule = await repo.lockSchedule(trx, scheduleId);
      if (!schedule) throw new AppError('SCHEDULE_NOT_FOUND', `Schedule ${scheduleId} does not exist`);
      // Lock order: the show's row (FOR UPDATE: a hold's FOR KEY SHARE of it and a waitlist
      // join's, an offer's, a refund's and a cancel's FOR NO KEY UPDATE wait for our commit, and
      // they take it before anything else), then its reservations (the order payments lock in),
      // then every seat of the show, then the refunded users (refundIn). A hold that got the
      // show's row before us has committed or rolled back before we get it.
      const live = await repo.lockLiveReservations(trx, scheduleId, []);
      await repo.lockSeats(trx, scheduleId);
      // A guard: no hold can commit between the two locks (it waits at the show's row).
      live.push(...(await repo.lockLiveReservations(trx, scheduleId, live.map((r) => r.id))));
      // The time once every lock is ours: a payment we waited for is stamped before our refund.
      const now = await dbTime(trx, clock);
      const firstTime = schedule.cancelled_at === null;
      if (firstTime) await repo.markCancelled(trx, scheduleId, now);
      // A hold past its expiry already reads EXPIRED to its fan: it ends EXPIRED, as the sweep
      // would end it, not CANCELLED, and is not one of the holds this cancellation released.
      const held = live.filter((r) => r.status === 'HELD' && r.hold_expires_at > now).map((r) => r.id);
      const lapsed = live.filter((r) => r.status === 'HELD' && r.hold_expires_at <= now).map((r) => r.id);
      const paid = live.filter((r) => r.status === 'PAID').sort((a, b) => a.user_id - b.user_id || a.id.localeCompare(b.id));
      for (const id of held) await markCancelled(trx, id, now);
      await markExpired(trx, lapsed);
      await releaseSeats(trx, [...held, ...lapsed]);
      await settleOffers(trx, [...held, ...lapsed], 'LAPSED', now);
      for (const id of held) {
        await insertReservationEvent(trx, 'reservation.cancelled', await getReservation(trx, id, now), now, { cancelledBy: 'SCHEDULE_CANCELLED' });
      }
      for (const id of lapsed) await insertReservationEvent(trx, 'reservation.expired', await getReservation(trx, id, now), now);
      const released = held.length;
      for (const r of paid) await refundIn(trx, { reservationId: r.id, reason: 'SCHEDULE_CANCELLED', clock, policy });
      await closeScheduleEntries(trx, scheduleId, now);
      if (firstTime) await emitScheduleCancelled(trx, scheduleId, now, { refunded: paid.length, released });
      return { concertId: schedule.concert_id, scheduleId, refunded: paid.length, released };
    });
    await this.deps.seatMaps.invalidate(result.concertId, scheduleId);
    return { scheduleId, refunded: result.refunded, released: result.released };
  }
}

async function emitScheduleCancelled(trx: Tx, scheduleId: number, now: Date, counts: { refunded: number; released: number }) {
  const s = await repo.getScheduleSummary(trx, scheduleId);
  await insertEvent(trx, {
    type: 'schedule.cancelled',
    scheduleId,
    now,
    data: { scheduleId, concertId: s.concert_id, concertTitle: s.title, venue: s.venue, startsAt: s.starts_at, cancelledAt: now, ...counts },
  });
}
