import { AppError } from '../errors.ts';
import { type Clock, dbNow, dbTime } from '../clock.ts';
import { type Db, pgCode, transaction } from '../db/database.ts';
import type { SeatMapCache } from '../concerts/seatmap.cache.ts';
import { insertReservationEvent } from '../outbox/outbox.repository.ts';
import { getReservation, lockReservation, markCancelled, releaseSeats, countUserSeats } from '../reservations/reservations.repository.ts';
import type { PageInput, WaitlistJoinInput } from '../schemas.ts';
import type { Page, WaitlistEntry } from '../types.ts';
import { lockUser } from '../users/users.repository.ts';
import * as repo from './waitlist.repository.ts';

export class WaitlistService {
  constructor(private readonly deps: { db: Db; clock: Clock; seatMaps: SeatMapCache; offerSeconds: number }) {}

  /** Joins a sold-out show's waitlist; joining again returns the live entry. */
  async join(userId: number, input: WaitlistJoinInput): Promise<WaitlistEntry> {
    const { db, clock } = this.deps;
    const { scheduleId, seatCount } = input;
    const existing = await repo.findLiveEntry(db, userId, scheduleId, dbNow(clock));
    if (existing) return existing;
    try {
      return await transaction(db, async (trx) => {
        // The show's row is read under the lock a cancellation waits for, not before the
        // transaction: a show cancelled while we joined would otherwise keep this entry WAITING.
        // Lock order: the show's row (FOR NO KEY UPDATE, the lock the offer below takes), then the
        // user's, as a refund takes them (see lockShowForJoin).
        const schedule = await repo.lockShowForJoin(trx, scheduleId);
        if (!schedule) throw new AppError('SCHEDULE_NOT_FOUND', `Schedule ${scheduleId} does not exist`);
        if (schedule.cancelled_at) throw new AppError('SCHEDULE_CANCELLED', 'This show has been cancelled');
        await lockUser(trx, userId);
        // The database's clock decides the offers' holds, as it decides every hold.
        const now = await dbTime(trx, clock);
        if (now >= schedule.starts_at) throw new AppError('BOOKING_CLOSED', 'This show has started; booking is closed');
        // Before its booking opens a show is not sold out: its seats go on sale at the opening
        // (SEATS_AVAILABLE, "book them instead", would send the fan to a hold that is refused).
        if (now < schedule.booking_opens_at) {
          throw new AppError('BOOKING_NOT_OPEN', `Booking opens at ${schedule.booking_opens_at.toISOString()}; the waitlist is for a sold-out show`, {
            bookingOpensAt: schedule.booking_opens_at,
          });
        }
        const live = await repo.findLiveEntry(trx, userId, scheduleId, now);
        if (live) return live;
        // An entry for more seats than the show has would wait for good (an outside review: two
        // seats of a one-seat show, WAITING after its seat came back and went on sale).
        if (seatCount > schedule.seat_count) {
          throw new AppError('INVALID_INPUT', `This show has ${schedule.seat_count} seat(s); a waitlist entry cannot ask for ${seatCount}`, { path: ['seatCount'] });
        }
        const available = await repo.countAvailableSeats(trx, scheduleId, now);
        if (available > 0) {
          throw new AppError('SEATS_AVAILABLE', `${available} seat(s) of this show are available: book them instead`, { availableSeats: available });
        }
        const owned = await countUserSeats(trx, userId, scheduleId, now);
        if (owned + seatCount > repo.SEAT_LIMIT) {
          throw new AppError('TICKET_LIMIT_EXCEEDED', `A user may hold or own at most ${repo.SEAT_LIMIT} seats of one schedule (you have ${owned})`, {
            limit: repo.SEAT_LIMIT,
            owned,
          });
        }
        const entryId = await repo.insertEntry(trx, { userId, scheduleId, seatCount, now });
        // A seat freed while we joined (its transaction saw no one waiting) is offered now.
        await repo.offerFreedSeats(trx, scheduleId, now, this.deps.offerSeconds);
        return (await repo.findEntry(trx, entryId, userId, now))!;
      });
    } catch (err) {
      // Two joins at once: the unique live-entry index lets one in; the other returns it.
      if (pgCode(err) === '23505') {
        const live = await repo.findLiveEntry(db, userId, scheduleId, dbNow(clock));
        if (live) return live;
      }
      throw err;
    }
  }

  /** Leaves the waitlist; an open offer is declined and its seats pass to the next entry. */
  async leave(userId: number, entryId: number): Promise<WaitlistEntry> {
    const { db, clock } = this.deps;
    const result = await transaction(db, async (trx) => {
      // Lock order: the show's row (the offer below takes it), then the offer's reservation, then
      // the entry: the order a show's offers, cancels, refunds and the sweep lock in, and a
      // payment of the offer (its reservation, then its entry). Locking the entry before the
      // reservation deadlocked with a payment of the offer (lock-order.test.ts).
      await repo.lockShowOfEntry(trx, entryId);
      await repo.lockOfferOfEntry(trx, entryId, userId);
      const entry = await repo.lockEntry(trx, entryId, userId);
      if (!entry) throw new AppError('WAITLIST_ENTRY_NOT_FOUND', 'No such waitlist entry');
      const now = await dbTime(trx, clock);
      // Decided on the entry as it reads, not as its row was last written: a WAITING entry of a
      // show that has started, and an offer past its expiry, read LAPSED before any sweep marks
      // them, and leaving an ended entry changes nothing (an outside review saw a LAPSED entry
      // turn LEFT).
      const current = (await repo.findEntry(trx, entryId, userId, now))!;
      if (current.status !== 'WAITING' && current.status !== 'OFFERED') return { entry: current, freed: undefined };
      let freed: { concertId: number; scheduleId: number } | undefined;
      if (entry.status === 'WAITING') await repo.setEntryStatus(trx, entryId, 'LEFT', now);
      if (entry.status === 'OFFERED' && entry.reservation_id) {
        await repo.setEntryStatus(trx, entryId, 'LEFT', now);
        const r = await lockReservation(trx, entry.reservation_id);
        if (r.status === 'HELD' && r.hold_expires_at > now) {
          await markCancelled(trx, r.id, now);
          await releaseSeats(trx, [r.id]);
          const cancelled = await getReservation(trx, r.id, now);
          await insertReservationEvent(trx, 'reservation.cancelled', cancelled, now, { cancelledBy: 'USER' });
          await repo.offerFreedSeats(trx, entry.schedule_id, now, this.deps.offerSeconds);
          freed = { concertId: cancelled.concertId, scheduleId: cancelled.scheduleId };
        }
      }
      return { entry: (await repo.findEntry(trx, entryId, userId, now))!, freed };
    });
    if (result.freed) await this.deps.seatMaps.invalidate(result.freed.concertId, result.freed.scheduleId);
    return result.entry;
  }

  async mine(userId: number, page: PageInput): Promise<Page<WaitlistEntry>> {
    const before = decodeIdCursor(page.cursor);
    const items = await repo.findUserEntries(this.deps.db, userId, dbNow(this.deps.clock), before, page.limit + 1);
    const more = items.length > page.limit;
    const shown = items.slice(0, page.limit);
    return { items: shown, nextCursor: more ? String(shown[shown.length - 1]!.entryId) : null };
  }
}

/** Cursors of id-ordered lists are the last id shown. */
export function decodeIdCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  if (!/^\d{1,15}$/.test(cursor)) throw new AppError('INVALID_INPUT', 'cursor must be the nextCursor of an earlier page', { path: ['cursor'] });
  return Number(cursor);
}
