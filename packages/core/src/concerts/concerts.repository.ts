import { type Moment, plusMs } from '../clock.ts';
import { sql } from 'kysely';
import { AppError } from '../errors.ts';
import type { Db, Tx } from '../db/database.ts';
import type { Schedule } from '../types.ts';
import { HOLDERS_READ } from '../queue/queue.store.ts';

type Executor = Db | Tx;

/** A seat is free when unsold and either unclaimed or its hold has run out, sweep or no sweep. */
export const seatIsFree = (now: Moment) => sql<boolean>`(s.sold_at IS NULL AND (s.reservation_id IS NULL OR s.held_until <= ${now}))`;

/** One page of the catalog in id order (keyset on the primary key): a new concert comes last. */
export async function listConcerts(db: Executor, page: { after?: number | undefined; limit: number }) {
  let q = db
    .selectFrom('concerts as c')
    // Cancelled shows are no longer listed, nor counted.
    .leftJoin('schedules as sc', (join) => join.onRef('sc.concert_id', '=', 'c.id').on('sc.cancelled_at', 'is', null))
    .select(['c.id', 'c.title', 'c.venue', sql<number>`count(sc.id)::int`.as('schedule_count')])
    .groupBy('c.id')
    .orderBy('c.id')
    .limit(page.limit);
  if (page.after !== undefined) q = q.where('c.id', '>', page.after);
  return q.execute();
}

export async function findConcert(db: Executor, concertId: number) {
  return db.selectFrom('concerts').select(['id', 'title', 'venue']).where('id', '=', concertId).executeTakeFirst();
}

export async function getConcert(db: Executor, concertId: number) {
  const concert = await findConcert(db, concertId);
  if (!concert) throw new AppError('CONCERT_NOT_FOUND', `Concert ${concertId} does not exist`);
  return concert;
}

/** Schedules with their live seat counts, by concert or by id. */
export async function findSchedules(db: Executor, where: { concertId?: number; scheduleId?: number }, now: Moment): Promise<Schedule[]> {
  let q = db
    .selectFrom('schedules as sc')
    .select((eb) => [
      'sc.id',
      'sc.concert_id',
      'sc.starts_at',
      'sc.booking_opens_at',
      'sc.seat_count',
      // Seats that can be bought: none once the show has started (a hold is BOOKING_CLOSED then),
      // so a started show reads as sold out and leaves the default listing, as the line does.
      eb
        .case()
        .when('sc.starts_at', '<=', now)
        .then(0)
        .else(eb.selectFrom('seats as s').select(sql<number>`count(*)::int`.as('n')).whereRef('s.schedule_id', '=', 'sc.id').where(seatIsFree(now)))
        .end()
        .as('available'),
    ])
    // A cancelled show is no longer listed.
    .where('sc.cancelled_at', 'is', null)
    .orderBy('sc.starts_at')
    .orderBy('sc.id');
  if (where.concertId !== undefined) q = q.where('sc.concert_id', '=', where.concertId);
  if (where.scheduleId !== undefined) q = q.where('sc.id', '=', where.scheduleId);
  const rows = await q.execute();
  return rows.map((r) => ({
    scheduleId: r.id,
    concertId: r.concert_id,
    startsAt: r.starts_at,
    bookingOpensAt: r.booking_opens_at,
    totalSeats: r.seat_count,
    availableSeats: Number(r.available ?? 0),
  }));
}

export async function findScheduleRow(db: Executor, scheduleId: number) {
  return db.selectFrom('schedules').selectAll().where('id', '=', scheduleId).executeTakeFirst();
}

export async function getScheduleRow(db: Executor, scheduleId: number) {
  const row = await findScheduleRow(db, scheduleId);
  if (!row) throw new AppError('SCHEDULE_NOT_FOUND', `Schedule ${scheduleId} does not exist`);
  return row;
}

export async function findSeatMap(db: Executor, scheduleId: number, now: Moment) {
  return db
    .selectFrom('seats as s')
    .select([
      's.seat_number',
      's.grade',
      's.price',
      's.held_until',
      sql<'AVAILABLE' | 'HELD' | 'SOLD'>`CASE WHEN s.sold_at IS NOT NULL THEN 'SOLD' WHEN s.reservation_id IS NOT NULL AND s.held_until > ${now} THEN 'HELD' ELSE 'AVAILABLE' END`.as(
        'status',
      ),
      // The time the statuses were read at, by the database's clock (see cachedSeats).
      sql<Date>`${now}::timestamptz`.as('at'),
    ])
    .where('s.schedule_id', '=', scheduleId)
    .orderBy('s.seat_number')
    .execute();
}

export async function insertConcert(trx: Tx, row: { title: string; venue: string }) {
  return trx.insertInto('concerts').values(row).returning(['id', 'title', 'venue']).executeTakeFirstOrThrow();
}

export async function insertSchedule(trx: Tx, row: { concert_id: number; starts_at: Date; booking_opens_at: Date; seat_count: number }) {
  return trx.insertInto('schedules').values(row).returning(['id', 'starts_at', 'seat_count']).executeTakeFirstOrThrow();
}

/**
 * Gathers the seats' statistics again (see ConcertsService.create). Inside its own transaction:
 * a lock held by another ANALYZE or VACUUM of seats, which refreshes the same statistics, is not
 * waited on past a second.
 */
export async function analyzeSeats(trx: Tx) {
  await sql`SET LOCAL lock_timeout = '1s'`.execute(trx);
  await sql`ANALYZE seats`.execute(trx);
}

export async function insertSeats(trx: Tx, seats: Array<{ schedule_id: number; seat_number: number; grade: string; price: number }>) {
  // Chunks keep each statement under PostgreSQL's parameter limit.
  for (let i = 0; i < seats.length; i += 1000) {
    const chunk = seats.slice(i, i + 1000).map((s) => ({ ...s, reservation_id: null, held_until: null, sold_at: null }));
    await trx.insertInto('seats').values(chunk).execute();
  }
}

/**
 * What the waiting room needs of a concert's shows that have not started and are not cancelled:
 * whether each has a seat AVAILABLE, or else when one may next be (no entry at all: sold out).
 * One probe of `seats_unsold_idx` per show, whatever the number of seats: the first unsold seat
 * in held_until order is free (no hold, or a lapsed one) or the show's next lapse. A show whose
 * booking has not opened has no seat AVAILABLE yet (a hold there is refused): its unsold seats
 * come at its opening (or at the first lapse after it), so the line waits for them rather than
 * admitting fans to nothing, and does not sell out while they are to come.
 * `now` is the time the statement is compared with (a lapsed hold is free).
 *
 * The same statement counts the AVAILABLE seats of the shows open for booking, up to `cap` (a
 * bounded scan of the same index, its free entries first), and only when there are fewer, the
 * users whose holds claim seats of the concert's shows now (the line's seatBudget). A cap of 0
 * counts nothing (a line that admits by slots).
 */
export async function findShowAvailability(db: Executor, concertId: number, now: Moment, cap = 0) {
  const { rows } = await sql<{
    id: number;
    found: boolean | null;
    first_hold_end: Date | null;
    opens_at: Date;
    starts_at: Date;
    marked: boolean;
    now: Date;
    free_seats: number;
    holders: string[] | null;
  }>`
    WITH free AS MATERIALIZED (
      SELECT count(*)::int AS n FROM (
        SELECT 1 FROM schedules x JOIN seats s ON s.schedule_id = x.id
        WHERE x.concert_id = ${concertId} AND x.starts_at > ${now} AND x.cancelled_at IS NULL AND x.booking_opens_at <= ${now}
          AND s.sold_at IS NULL AND (s.held_until IS NULL OR s.held_until <= ${now})
        LIMIT ${cap}
      ) y
    )
    SELECT sc.id, f.found, f.held_until AS first_hold_end, sc.booking_opens_at AS opens_at, sc.starts_at, sc.sold_out_at IS NOT NULL AS marked, ${now}::timestamptz AS now,
      free.n AS free_seats,
      CASE WHEN free.n < ${cap} AND ${cap} > 0 THEN (
        SELECT coalesce(array_agg(h.user_id), '{}') FROM (
          SELECT DISTINCT r.user_id FROM schedules x JOIN seats s ON s.schedule_id = x.id JOIN reservations r ON r.id = s.reservation_id
          WHERE x.concert_id = ${concertId} AND x.starts_at > ${now} AND x.cancelled_at IS NULL AND s.sold_at IS NULL AND s.held_until > ${now}
          LIMIT ${HOLDERS_READ}
        ) h
      ) END AS holders
    FROM free CROSS JOIN schedules sc
    LEFT JOIN LATERAL (
      SELECT true AS found, s.held_until FROM seats s
      WHERE s.schedule_id = sc.id AND s.sold_at IS NULL
      ORDER BY s.held_until NULLS FIRST
      LIMIT 1
    ) f ON true
    WHERE sc.concert_id = ${concertId} AND sc.starts_at > ${now} AND sc.cancelled_at IS NULL`.execute(db);
  return rows.map((r) => {
    const free = r.found === true && (r.first_hold_end === null || r.first_hold_end <= r.now);
    const opened = r.opens_at <= r.now;
    const available = free && opened;
    // When a seat may be AVAILABLE: at the first lapse, and not before the opening.
    const from = [...(free ? [] : [r.first_hold_end!]), ...(opened ? [] : [r.opens_at])];
    return {
      scheduleId: r.id,
      startsAt: r.starts_at,
      /** Some seat unsold: AVAILABLE now, or to come (nextLapse). */
      unsold: r.found === true,
      available,
      /** When a seat may next be AVAILABLE (its first live hold lapses, its booking opens); null when one is now or none is unsold. */
      nextLapse: r.found === true && !available ? new Date(Math.max(...from.map((d) => d.getTime()))) : null,
      /** Every seat sold, and concert.sold_out not yet written for it. */
      soldOutUnannounced: r.found !== true && !r.marked,
      /** The concert's AVAILABLE seats in shows open for booking, up to `cap` (the same on every row). */
      freeSeats: r.free_seats,
      /** The users holding seats of the concert's shows (at most HOLDERS_READ); null when `freeSeats` reached `cap` (not read). */
      holders: r.holders?.map(Number) ?? null,
    };
  });
}

/**
 * Shows whose seats are all sold and whose concert.sold_out is not written (the sweep's probe):
 * those that have not started, and those that started within the last day (a hold taken just
 * before the start can be paid after it, and the read after a change looks at upcoming shows only).
 */
export async function findUnannouncedSellOuts(db: Executor, now: Moment): Promise<number[]> {
  const { rows } = await sql<{ id: number }>`
    SELECT sc.id FROM schedules sc
    WHERE sc.sold_out_at IS NULL AND sc.cancelled_at IS NULL AND sc.starts_at > ${now}::timestamptz - interval '1 day'
      AND EXISTS (SELECT 1 FROM seats s WHERE s.schedule_id = sc.id)
      AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.schedule_id = sc.id AND s.sold_at IS NULL)`.execute(db);
  return rows.map((r) => r.id);
}

/**
 * Marks these shows sold out where every seat is sold, and returns what concert.sold_out says of
 * each one marked now. The rows are locked first, and a refund locks its show's row before it
 * frees a seat (refundIn), so the check runs in a snapshot taken after any such refund committed,
 * or the refund waits for this mark and clears it; the conditional UPDATE marks each show once,
 * whoever else saw it sold out at the same moment. Runs in the caller's transaction.
 */
export async function markSoldOut(trx: Tx, scheduleIds: number[]) {
  // NO KEY UPDATE: holds and waitlist joins insert rows that reference the show (a KEY SHARE lock) meanwhile.
  const { rows: locked } = await sql<{ id: number }>`
    SELECT id FROM schedules WHERE id = ANY(${scheduleIds}::bigint[]) AND sold_out_at IS NULL ORDER BY id FOR NO KEY UPDATE`.execute(trx);
  if (locked.length === 0) return [];
  const { rows } = await sql<{ id: number; concert_id: number; title: string; starts_at: Date; seat_count: number; at: Date }>`
    UPDATE schedules sc SET sold_out_at = last.at
    FROM (
      SELECT schedule_id, max(sold_at) AS at FROM seats
      WHERE schedule_id = ANY(${locked.map((r) => r.id)}::bigint[])
      GROUP BY schedule_id HAVING bool_and(sold_at IS NOT NULL)
    ) last, concerts c
    WHERE sc.id = last.schedule_id AND c.id = sc.concert_id
    RETURNING sc.id, sc.concert_id, c.title, sc.starts_at, sc.seat_count, last.at`.execute(trx);
  return rows.map((r) => ({ concertId: r.concert_id, concertTitle: r.title, scheduleId: r.id, startsAt: r.starts_at, totalSeats: r.seat_count, soldOutAt: r.at }));
}

/**
 * Per schedule of the concert that has not started and is not cancelled: seats AVAILABLE (a lapsed hold counts), HELD
 * and SOLD, those whose hold lapses soon, and when the first one lapses. One pass over the
 * concert's seats.
 */
export async function findSeatCounts(db: Executor, concertId: number, now: Moment, lapsingWithinMs = 60_000) {
  const held = sql<boolean>`(s.sold_at IS NULL AND s.reservation_id IS NOT NULL AND s.held_until > ${now})`;
  const soon = plusMs(now, lapsingWithinMs);
  const rows = await db
    .selectFrom('schedules as sc')
    .innerJoin('seats as s', 's.schedule_id', 'sc.id')
    .select([
      'sc.id',
      'sc.starts_at',
      'sc.booking_opens_at',
      sql<number>`count(*) FILTER (WHERE ${seatIsFree(now)})::int`.as('available'),
      sql<number>`count(*) FILTER (WHERE ${held})::int`.as('held'),
      sql<number>`count(*) FILTER (WHERE s.sold_at IS NOT NULL)::int`.as('sold'),
      sql<number>`count(*) FILTER (WHERE ${held} AND s.held_until <= ${soon})::int`.as('lapsing'),
      sql<Date | null>`min(s.held_until) FILTER (WHERE ${held})`.as('next_lapse'),
    ])
    .where('sc.concert_id', '=', concertId)
    .where('sc.starts_at', '>', now)
    .where('sc.cancelled_at', 'is', null)
    .groupBy(['sc.id', 'sc.starts_at', 'sc.booking_opens_at'])
    .orderBy('sc.starts_at')
    .orderBy('sc.id')
    .execute();
  return rows.map((r) => ({
    scheduleId: r.id,
    startsAt: r.starts_at,
    bookingOpensAt: r.booking_opens_at,
    available: Number(r.available),
    held: Number(r.held),
    sold: Number(r.sold),
    /** Held seats whose hold lapses within `lapsingWithinMs`. */
    lapsingSoon: Number(r.lapsing),
    nextLapse: r.next_lapse === null ? null : new Date(r.next_lapse),
  }));
}
