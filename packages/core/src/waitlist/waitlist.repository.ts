import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Moment } from '../clock.ts';
import type { Db, Tx } from '../db/database.ts';
import { seatIsFree } from '../concerts/concerts.repository.ts';
import { insertReservationEvent } from '../outbox/outbox.repository.ts';
import { claimSeats, countUserSeats, getReservation, insertReservation } from '../reservations/reservations.repository.ts';
import type { WaitlistEntry } from '../types.ts';
import { lockUser } from '../users/users.repository.ts';
import { grantOffer } from './waitlist.pass.ts';

type Executor = Db | Tx;

/** The per-user ticket limit; the waitlist honours it like a hold does. */
export const SEAT_LIMIT = 4;

/**
 * An offer whose hold has run out reads LAPSED at once, as its reservation reads EXPIRED, before
 * the sweep settles it (within two seconds) and passes its seats on. So does an entry still
 * WAITING once its show has started: nothing is offered after that (offerFreedSeats).
 */
const entryColumns = (db: Executor, now: Moment) =>
  db
    .selectFrom('waitlist_entries as w')
    .innerJoin('schedules as sc', 'sc.id', 'w.schedule_id')
    .leftJoin('reservations as r', 'r.id', 'w.reservation_id')
    .select((eb) => [
      'w.id',
      'w.user_id',
      'w.schedule_id',
      'w.seat_count',
      sql<WaitlistEntry['status']>`CASE
        WHEN w.status = 'OFFERED' AND r.status = 'HELD' AND r.hold_expires_at <= ${now} THEN 'LAPSED'
        WHEN w.status = 'WAITING' AND sc.starts_at <= ${now} THEN 'LAPSED'
        ELSE w.status END`.as('status'),
      'w.reservation_id',
      'w.created_at',
      'r.hold_expires_at',
      // 1-based place among the show's WAITING entries.
      sql<number | null>`CASE WHEN w.status = 'WAITING' AND sc.starts_at > ${now} THEN (
        SELECT count(*)::int FROM waitlist_entries o WHERE o.schedule_id = w.schedule_id AND o.status = 'WAITING' AND o.id <= w.id) END`.as('position'),
      eb
        .selectFrom('reservation_seats as rs')
        .select(sql<number[]>`array_agg(rs.seat_number ORDER BY rs.seat_number)`.as('n'))
        .whereRef('rs.reservation_id', '=', 'w.reservation_id')
        .as('seat_numbers'),
    ]);

type EntryRow = Awaited<ReturnType<ReturnType<typeof entryColumns>['executeTakeFirstOrThrow']>>;

function toEntry(r: EntryRow): WaitlistEntry {
  const offered = r.status === 'OFFERED' || r.status === 'ACCEPTED';
  return {
    entryId: r.id,
    scheduleId: r.schedule_id,
    seatCount: r.seat_count,
    status: r.status,
    position: r.position === null ? null : Number(r.position),
    offer:
      offered && r.reservation_id && r.hold_expires_at
        ? { reservationId: r.reservation_id, seatNumbers: (r.seat_numbers ?? []).map(Number), expiresAt: r.hold_expires_at }
        : null,
    createdAt: r.created_at,
  };
}

export async function findEntry(db: Executor, entryId: number, userId: number, now: Moment): Promise<WaitlistEntry | undefined> {
  const row = await entryColumns(db, now).where('w.id', '=', entryId).where('w.user_id', '=', userId).executeTakeFirst();
  return row && toEntry(row);
}

export async function findLiveEntry(db: Executor, userId: number, scheduleId: number, now: Moment): Promise<WaitlistEntry | undefined> {
  const row = await entryColumns(db, now)
    .where('w.user_id', '=', userId)
    .where('w.schedule_id', '=', scheduleId)
    .where('w.status', 'in', ['WAITING', 'OFFERED'])
    // A WAITING entry of a show that has started reads LAPSED: it is no longer live, and joining
    // then is BOOKING_CLOSED, not that entry (an outside review).
    .where((eb) => eb.or([eb('w.status', '=', 'OFFERED'), eb('sc.starts_at', '>', now)]))
    .executeTakeFirst();
  return row && toEntry(row);
}

/** The user's entries, newest first, keyset-paged by id. */
export async function findUserEntries(db: Db, userId: number, now: Moment, beforeId: number | undefined, limit: number): Promise<WaitlistEntry[]> {
  let q = entryColumns(db, now).where('w.user_id', '=', userId).orderBy('w.id', 'desc').limit(limit);
  if (beforeId !== undefined) q = q.where('w.id', '<', beforeId);
  return (await q.execute()).map(toEntry);
}

export async function insertEntry(trx: Tx, row: { userId: number; scheduleId: number; seatCount: number; now: Date }): Promise<number> {
  const { id } = await trx
    .insertInto('waitlist_entries')
    .values({ user_id: row.userId, schedule_id: row.scheduleId, seat_count: row.seatCount, status: 'WAITING', reservation_id: null, created_at: row.now, updated_at: row.now })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}

/**
 * The show's row FOR NO KEY UPDATE, the lock the join's offer of freed seats (offerFreedSeats)
 * takes, taken first. A cancellation locks the row FOR UPDATE before it closes the show's
 * entries: it has either committed, and its cancelled_at is read here, or it waits for this
 * transaction and then closes what it inserted. FOR KEY SHARE here, then the user's row, then
 * NO KEY UPDATE for the offer, was the reverse of a refund's order (the show's row, then the
 * buyer's): a fan joining while refunding a ticket of the show deadlocked (lock-order.test.ts).
 */
export async function lockShowForJoin(trx: Tx, scheduleId: number) {
  return trx.selectFrom('schedules').select(['cancelled_at', 'starts_at', 'booking_opens_at', 'seat_count']).where('id', '=', scheduleId).forNoKeyUpdate().executeTakeFirst();
}

/**
 * Locks the reservation of the user's entry (its offer), if it has one, before the entry: the
 * order a payment of the offer takes them (the reservation, then settleOffers' update of its
 * entry), as a cancel, the sweep and a show's cancellation do. The caller holds the show's row,
 * so no offer gives the entry a reservation meanwhile.
 */
export async function lockOfferOfEntry(trx: Tx, entryId: number, userId: number): Promise<void> {
  await sql`SELECT id FROM reservations WHERE id = (SELECT reservation_id FROM waitlist_entries WHERE id = ${entryId} AND user_id = ${userId}) FOR UPDATE`.execute(trx);
}

export async function lockEntry(trx: Tx, entryId: number, userId: number) {
  return trx
    .selectFrom('waitlist_entries')
    .select(['id', 'status', 'reservation_id', 'schedule_id'])
    .where('id', '=', entryId)
    .where('user_id', '=', userId)
    .forUpdate()
    .executeTakeFirst();
}

export async function setEntryStatus(trx: Tx, entryId: number, status: 'LEFT' | 'LAPSED', now: Date) {
  await trx.updateTable('waitlist_entries').set({ status, updated_at: now }).where('id', '=', entryId).execute();
}

/** Offers that ended unpaid (lapsed, cancelled or released) are LAPSED; paid ones ACCEPTED. */
export async function settleOffers(trx: Tx, reservationIds: string[], status: 'LAPSED' | 'ACCEPTED', now: Date) {
  if (reservationIds.length === 0) return;
  await trx
    .updateTable('waitlist_entries')
    .set({ status, updated_at: now })
    .where('reservation_id', 'in', reservationIds)
    .where('status', '=', 'OFFERED')
    .execute();
}

/** A cancelled show keeps no one waiting. */
export async function closeScheduleEntries(trx: Tx, scheduleId: number, now: Date) {
  await trx
    .updateTable('waitlist_entries')
    .set({ status: 'LAPSED', updated_at: now })
    .where('schedule_id', '=', scheduleId)
    .where('status', 'in', ['WAITING', 'OFFERED'])
    .execute();
}

export async function countAvailableSeats(db: Executor, scheduleId: number, now: Date): Promise<number> {
  const row = await db
    .selectFrom('seats as s')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('s.schedule_id', '=', scheduleId)
    .where(seatIsFree(now))
    .executeTakeFirstOrThrow();
  return row.n;
}

/** Locks the row of the entry's show, as a show's offers take it (none when there is no such entry). */
export async function lockShowOfEntry(trx: Tx, entryId: number): Promise<void> {
  await sql`SELECT id FROM schedules WHERE id = (SELECT schedule_id FROM waitlist_entries WHERE id = ${entryId}) FOR NO KEY UPDATE`.execute(trx);
}

/**
 * Seats that came back go to the waitlist first: each WAITING entry, earliest first, whose
 * seat count fits the free seats (and the user's ticket limit) gets an offer: a HELD reservation
 * with source WAITLIST for `offerSeconds`. Runs in the transaction that freed the seats, under
 * the show's row lock, so one transaction at a time offers a show's seats and reads the entries
 * the one before it served. Seats another transaction is still freeing or claiming are skipped
 * (SKIP LOCKED): that transaction offers its own. Seats nobody fits stay on sale.
 */
export async function offerFreedSeats(trx: Tx, scheduleId: number, now: Date, offerSeconds: number): Promise<number> {
  // The show's row lock (a refund's) serialises the offers of one show: with the entries skipped
  // while another transaction had them locked, two cancels at once each saw nobody waiting but
  // the entries the other was serving, and a seat went back on sale past a WAITING entry.
  const schedule = await trx
    .selectFrom('schedules')
    .select(['cancelled_at', 'starts_at', 'concert_id'])
    .where('id', '=', scheduleId)
    .forNoKeyUpdate()
    .executeTakeFirst();
  if (!schedule || schedule.cancelled_at !== null || now >= schedule.starts_at) return 0;
  // Nobody waiting (most shows): leave the free seats unlocked for the holds racing for them.
  const waiting = await trx.selectFrom('waitlist_entries').select('id').where('schedule_id', '=', scheduleId).where('status', '=', 'WAITING').limit(1).executeTakeFirst();
  if (!waiting) return 0;
  const free = (
    await trx
      .selectFrom('seats as s')
      .select('s.seat_number')
      .where('s.schedule_id', '=', scheduleId)
      .where(seatIsFree(now))
      .orderBy('s.seat_number')
      .forUpdate()
      .skipLocked()
      .execute()
  ).map((s) => s.seat_number);
  if (free.length === 0) return 0;
  // No later than the show's start: an offer made ten minutes before it was payable ten
  // minutes into it, past the refund window (an outside review).
  const expiresAt = new Date(Math.min(now.getTime() + offerSeconds * 1000, schedule.starts_at.getTime()));
  let offered = 0;
  // Entries a page at a time, earliest first, only those that could fit what is left: a page
  // of the first 100 entries, none fitting one seat, once put the seat back on sale past a fan
  // further back waiting for one.
  let afterId = 0;
  while (free.length > 0) {
    const entries = await trx
      .selectFrom('waitlist_entries')
      .select(['id', 'user_id', 'seat_count'])
      .where('schedule_id', '=', scheduleId)
      .where('status', '=', 'WAITING')
      .where('seat_count', '<=', free.length)
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(100)
      .forUpdate()
      .skipLocked()
      .execute();
    if (entries.length === 0) break;
    afterId = entries[entries.length - 1]!.id;
    for (const entry of entries) {
      if (entry.seat_count > free.length) continue;
      // The offered user's row lock (a hold's and a join's) before the count: a hold of theirs that
      // has locked the row but not committed is invisible to the count, and both would commit past
      // the limit. It comes after the seats' locks, the reverse of a hold's order, and after the
      // buyer's or joiner's row in a refund or a join, the reverse of another such transaction
      // offering to that buyer: PostgreSQL detects those deadlocks and transaction() retries the
      // loser whole (README, Lock order: they remain by choice).
      await lockUser(trx, entry.user_id);
      if ((await countUserSeats(trx, entry.user_id, scheduleId, now)) + entry.seat_count > SEAT_LIMIT) continue;
      const reservationId = randomUUID();
      const pass = grantOffer(entry, schedule.concert_id, reservationId);
      const seats = await claimSeats(trx, pass, scheduleId, free.splice(0, entry.seat_count), reservationId, expiresAt, now);
      await insertReservation(trx, { id: reservationId, userId: entry.user_id, scheduleId, seats, holdExpiresAt: expiresAt, now, source: 'WAITLIST' });
      await trx.updateTable('waitlist_entries').set({ status: 'OFFERED', reservation_id: reservationId, updated_at: now }).where('id', '=', entry.id).execute();
      const reservation = await getReservation(trx, reservationId, now);
      await insertReservationEvent(trx, 'reservation.held', reservation, now);
      await insertReservationEvent(trx, 'waitlist.offered', reservation, now, {
        entry: { entryId: entry.id, userId: entry.user_id, scheduleId, seatCount: entry.seat_count },
        offerExpiresAt: expiresAt,
      });
      offered++;
    }
  }
  return offered;
}
