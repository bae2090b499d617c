import { sql } from 'kysely';
import { AppError } from '../errors.ts';
import type { Moment } from '../clock.ts';
import type { Db, Tx } from '../db/database.ts';
import { HotFragment, hot, hotRaw, runHot } from '../db/hot.ts';
import { WITH_NEXT } from '../db/pipeline.ts';
import type { ActivePass } from '../queue/queue.gate.ts';
import type { OfferPass } from '../waitlist/waitlist.pass.ts';
import { cursorTime, cursorTimeText } from '../paging.ts';

/** What a booking write must present: the queue gate's pass, or a waitlist offer's. */
export type BookingPass = ActivePass | OfferPass;
import type { ReservationStatus } from '../schemas.ts';
import type { Reservation } from '../types.ts';

type Executor = Db | Tx;

/** A HELD reservation past its expiry reads EXPIRED at once, before any sweep marks it. */
const liveStatus = (now: Moment) => hot`CASE WHEN r.status = 'HELD' AND r.hold_expires_at <= ${now} THEN 'EXPIRED' ELSE r.status END`;

/**
 * A reservation as read (one reservation, a page of a user's): its show, its seats, its status as
 * of `now`. A hot statement's parts (db/hot.ts): every payment reads its reservation first.
 */
const reservationColumns = (now: Moment) =>
  hot`r.id, r.user_id, r.schedule_id, r.total_price, r.hold_expires_at, r.created_at, r.paid_at, r.refunded_at, r.source, sc.concert_id, sc.starts_at, c.title,
      ${liveStatus(now)} AS status,
      (SELECT coalesce(json_agg(json_build_object('seatNumber', rs.seat_number, 'grade', rs.grade, 'price', rs.price) ORDER BY rs.seat_number), '[]') FROM reservation_seats AS rs WHERE rs.reservation_id = r.id) AS seats`;
const RESERVATION_FROM = hotRaw('reservations AS r INNER JOIN schedules AS sc ON sc.id = r.schedule_id INNER JOIN concerts AS c ON c.id = sc.concert_id');

interface Row {
  id: string;
  user_id: number;
  schedule_id: number;
  total_price: number;
  hold_expires_at: Date;
  created_at: Date;
  paid_at: Date | null;
  refunded_at: Date | null;
  source: Reservation['source'];
  concert_id: number;
  starts_at: Date;
  title: string;
  status: ReservationStatus;
  /** json_agg's array (PGlite may hand it over as text). */
  seats: Array<{ seatNumber: number; grade: string; price: number }> | string;
}

function toReservation(r: Row): Reservation {
  const seats = (typeof r.seats === 'string' ? JSON.parse(r.seats) : r.seats) as Reservation['seats'];
  return {
    reservationId: r.id,
    concertId: r.concert_id,
    concertTitle: r.title,
    scheduleId: r.schedule_id,
    startsAt: r.starts_at,
    seats: seats.map((s) => ({ seatNumber: Number(s.seatNumber), grade: s.grade, price: Number(s.price) })),
    totalPrice: r.total_price,
    status: r.status,
    source: r.source,
    holdExpiresAt: r.hold_expires_at,
    createdAt: r.created_at,
    paidAt: r.paid_at,
    refundedAt: r.refunded_at,
  };
}

/** A reservation as its owner sees it; someone else's reads as missing. */
export async function findReservation(db: Executor, reservationId: string, now: Moment, userId?: number): Promise<(Reservation & { userId: number }) | undefined> {
  const { rows } = await runHot<Row>(
    db,
    hot`SELECT ${reservationColumns(now)} FROM ${RESERVATION_FROM}
    WHERE r.id = ${reservationId}${userId === undefined ? hotRaw('') : hot` AND r.user_id = ${userId}`}`,
  );
  const row = rows[0];
  return row && { ...toReservation(row), userId: row.user_id };
}

export async function getReservation(db: Executor, reservationId: string, now: Moment, userId?: number) {
  const r = await findReservation(db, reservationId, now, userId);
  if (!r) throw new AppError('RESERVATION_NOT_FOUND', 'No such reservation');
  return r;
}

/**
 * One page of a user's reservations, newest first: keyset on (created_at, id) through
 * reservations_user_page_idx, so a page costs the same at row 20 as at row 20,000. Each row
 * carries its created_at to the microsecond for the next page's cursor.
 */
export async function findUserReservations(
  db: Db,
  userId: number,
  now: Moment,
  page: { status?: ReservationStatus | undefined; before?: { createdAt: string; id: string } | undefined; limit: number },
): Promise<Array<Reservation & { createdKey: string }>> {
  const { status, before, limit } = page;
  const { rows } = await runHot<Row & { created_key: string }>(
    db,
    hot`SELECT ${reservationColumns(now)}, ${hotRaw(cursorTimeText('r.created_at'))} AS created_key FROM ${RESERVATION_FROM}
    WHERE r.user_id = ${userId}${status ? hot` AND ${liveStatus(now)} = ${status}` : hotRaw('')}${
      before ? hot` AND (r.created_at, r.id) < (${before.createdAt}::timestamptz, ${before.id}::uuid)` : hotRaw('')
    }
    ORDER BY r.created_at DESC, r.id DESC LIMIT ${limit}`,
  );
  return rows.map((r) => ({ ...toReservation(r), createdKey: r.created_key }));
}

/** Locks a reservation row for a state change; with userId, only the owner's. */
export async function lockReservation(trx: Tx, reservationId: string, userId?: number) {
  let q = trx
    .selectFrom('reservations')
    .select(['id', 'user_id', 'schedule_id', 'status', 'total_price', 'seat_count', 'hold_expires_at', 'source'])
    .where('id', '=', reservationId)
    .forUpdate();
  if (userId !== undefined) q = q.where('user_id', '=', userId);
  const row = await q.executeTakeFirst();
  if (!row) throw new AppError('RESERVATION_NOT_FOUND', 'No such reservation');
  return row;
}

/**
 * A hold's locks, in one statement and in this order: the show's row FOR KEY SHARE (the lock the
 * reservation's foreign key takes anyway), then the user's row FOR UPDATE (it serialises one user's
 * holds, so the limit cannot be raced past). Lock order: show, then user, then seats, as a show's
 * cancellation takes them (its FOR UPDATE of the show, then the seats, then the refunded users):
 * a hold now waits for a cancellation at the show's row, holding nothing the cancellation needs.
 * When the foreign key took the show's row after the claim, a hold holding a seat waited for a
 * cancellation holding the show and waiting for that seat (and a hold holding its user's row
 * waited for a seat the cancellation held, while the cancellation's refund of that user waited
 * for the row): deadlocks, in a CI run's PostgreSQL log and in lock-order.test.ts.
 *
 * Sent with the hold's statement (WITH_NEXT: one round trip for BEGIN, the locks and the hold;
 * PostgreSQL runs the hold after the locks are taken, with a snapshot taken then). So nothing is
 * read from it: the hold's statement says whether the user exists.
 */
export async function lockShowAndHolder(trx: Tx, scheduleId: number, userId: number): Promise<void> {
  await runHot(
    trx,
    hot`${hotRaw(WITH_NEXT)}
    WITH show AS MATERIALIZED (SELECT id FROM schedules WHERE id = ${scheduleId} FOR KEY SHARE)
    SELECT u.id FROM show CROSS JOIN LATERAL (SELECT id FROM users WHERE id = ${userId} FOR UPDATE) u`,
  );
}

/**
 * Seats of one schedule that a user holds (live) or bought: the per-user ticket limit counts
 * these. Counted from the user's own reservations of that schedule (a live HELD one claims its
 * seats until its expiry, a PAID one owns them), through reservations_user_schedule_idx: one
 * table, equality on both leading columns, so no statistics, however stale, can make the planner
 * walk the seats of other users (joined to seats, it once walked every claimed seat).
 */
export function userSeatCount(userId: number, scheduleId: number, now: Moment) {
  return hot<{ n: number }>`SELECT coalesce(sum(seat_count), 0)::int AS n FROM reservations
    WHERE user_id = ${userId} AND schedule_id = ${scheduleId} AND (status = 'PAID' OR (status = 'HELD' AND hold_expires_at > ${now}))`;
}

export async function countUserSeats(trx: Tx, userId: number, scheduleId: number, now: Date): Promise<number> {
  return (await runHot(trx, userSeatCount(userId, scheduleId, now))).rows[0]!.n;
}

/**
 * The hold itself: one conditional UPDATE claims every requested seat that is free now.
 * Concurrent claims of a seat queue on its row lock; the loser re-reads the row and matches nothing.
 * Only with the gate's pass, and only seats of the concert the pass admits to.
 */
export async function claimSeats(trx: Tx, pass: BookingPass, scheduleId: number, seatNumbers: number[], reservationId: string, heldUntil: Date, now: Date) {
  return trx
    .updateTable('seats')
    .set({ reservation_id: reservationId, held_until: heldUntil })
    .where('schedule_id', '=', scheduleId)
    .where(passAdmitsTo(pass))
    .where('seat_number', 'in', seatNumbers)
    .where('sold_at', 'is', null)
    .where((eb) => eb.or([eb('reservation_id', 'is', null), eb('held_until', '<=', now)]))
    .returning(['seat_number', 'grade', 'price'])
    .execute();
}

export async function insertReservation(
  trx: Tx,
  row: {
    id: string;
    userId: number;
    scheduleId: number;
    seats: Array<{ seat_number: number; grade: string; price: number }>;
    holdExpiresAt: Date;
    now: Date;
    source?: 'QUEUE' | 'WAITLIST';
  },
) {
  await trx
    .insertInto('reservations')
    .values({
      id: row.id,
      user_id: row.userId,
      schedule_id: row.scheduleId,
      status: 'HELD',
      total_price: row.seats.reduce((sum, s) => sum + s.price, 0),
      seat_count: row.seats.length,
      hold_expires_at: row.holdExpiresAt,
      created_at: row.now,
      paid_at: null,
      cancelled_at: null,
      source: row.source ?? 'QUEUE',
    })
    .execute();
  await trx
    .insertInto('reservation_seats')
    .values(row.seats.map((s) => ({ reservation_id: row.id, schedule_id: row.scheduleId, seat_number: s.seat_number, grade: s.grade, price: s.price })))
    .execute();
}

/** What a hold writes: the reservation's id, its holder and show, the seats, the hold's deadline, now, and the per-user limit. */
export interface HoldInput { reservationId: string; userId: number; scheduleId: number; seatNumbers: number[]; heldUntil: Moment; now: Moment; limit: number }

/**
 * The hold, in one statement once the user's row is locked (the lock serialises one user's holds,
 * and this statement's snapshot, taken after it, sees every hold committed before it): count the
 * user's seats; claim every requested seat that is free now, with one conditional UPDATE, only
 * if the user exists, the show's booking is open and the limit allows; and write the reservation
 * and its seats only if every seat was claimed. Concurrent claims of a seat queue on its row
 * lock; the loser re-reads the row and matches nothing. Only with the gate's pass, and only seats
 * of the concert the pass admits to.
 *
 * Sent with the next statement (WITH_NEXT): the hold's event, which reads what this one wrote
 * and refuses when it wrote no reservation (outbox insertComputedEvent), so its COMMIT goes in
 * the same round trip. `read()`, once that statement has answered, gives the user's seat count
 * before the hold, the seats claimed (fewer than asked: nothing was written, and the caller
 * raises), and what the answer shows of the show.
 */
export async function holdSeats(trx: Tx, pass: BookingPass, h: HoldInput) {
  const { rows } = await runHot<HoldRow>(trx, holdStatement(pass, h));
  return { read: () => readHold(rows) };
}

/** holdSeats's statement (exported for its plan's test). */
export function holdStatement(pass: BookingPass, h: HoldInput) {
  const k = h.seatNumbers.length;
  // A hold lasts its TTL but never past the show's start: a hold made minutes before a show was
  // payable minutes into it, and its buyer could not refund it (an outside review).
  const until = hot`LEAST(${h.heldUntil}::timestamptz, (SELECT starts_at FROM show))`;
  // The show's row is read once (show), not in each of the five places that need it: a small
  // schedules table is read whole, page by page, at every such read (a sequential scan is the
  // planner's choice below about eight pages), and 116 shows made each of the five 3 pages where
  // 16 made it 1 (auto_explain of the bench's grown database: the statement read 34 buffers a hold, 25 after).
  return hot<HoldRow>`${hotRaw(WITH_NEXT)}
    WITH show AS MATERIALIZED (SELECT id, concert_id, starts_at, booking_opens_at FROM schedules WHERE id = ${h.scheduleId}),
    holder AS (SELECT EXISTS (SELECT FROM users WHERE id = ${h.userId}) AS found),
    owned AS (${userSeatCount(h.userId, h.scheduleId, h.now)}),
    claimed AS (
      UPDATE seats SET reservation_id = ${h.reservationId}, held_until = ${until}
      WHERE schedule_id = ${h.scheduleId} AND ${hotShowAdmits(pass)} AND seat_number IN ${seatList(h.seatNumbers)}
        AND sold_at IS NULL AND (reservation_id IS NULL OR held_until <= ${h.now})
        AND (SELECT n FROM owned) + ${k} <= ${h.limit} AND (SELECT found FROM holder)
        AND (SELECT booking_opens_at <= ${h.now} AND starts_at > ${h.now} FROM show)
      RETURNING seat_number, grade, price
    ),
    whole AS (SELECT count(*) = ${k} AS ok, coalesce(sum(price), 0) AS total FROM claimed),
    reservation AS (
      INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at)
      SELECT ${h.reservationId}, ${h.userId}, ${h.scheduleId}, 'HELD', total, ${k}, ${until}, ${h.now} FROM whole WHERE ok
    ),
    reservation_seat AS (
      INSERT INTO reservation_seats (reservation_id, schedule_id, seat_number, grade, price)
      SELECT ${h.reservationId}, ${h.scheduleId}, seat_number, grade, price FROM claimed WHERE (SELECT ok FROM whole)
    )
    SELECT o.n AS owned, sc.concert_id, c.title, sc.starts_at, cl.seat_number, cl.grade, cl.price,
      ${h.now}::timestamptz AS at, LEAST(${h.heldUntil}::timestamptz, sc.starts_at) AS held_until,
      sc.booking_opens_at <= ${h.now} AS opened, sc.starts_at <= ${h.now} AS started, (SELECT found FROM holder) AS holder
    FROM owned o
    CROSS JOIN show sc
    JOIN concerts c ON c.id = sc.concert_id
    LEFT JOIN claimed cl ON true
    ORDER BY cl.seat_number`;
}

/** A row of the hold's statement: one per seat claimed, or one with no seat. */
interface HoldRow {
  owned: number;
  concert_id: number;
  title: string;
  starts_at: Date;
  seat_number: number | null;
  grade: string | null;
  price: number | null;
  at: Date;
  held_until: Date;
  opened: boolean;
  started: boolean;
  holder: boolean;
}

function readHold(rows: HoldRow[]) {
  const first = rows[0];
  if (!first) throw new Error('the hold statement returned no row');
  return {
    /** The statement's time (the database's clock), the hold's expiry, and the show's booking window then. */
    at: first.at,
    heldUntil: first.held_until,
    opened: first.opened,
    started: first.started,
    /** Whether the user exists (the hold claims nothing for no one). */
    holder: first.holder,
    owned: first.owned,
    show: { concertId: first.concert_id, concertTitle: first.title, startsAt: first.starts_at },
    seats: rows.flatMap((r) => (r.seat_number === null ? [] : [{ seatNumber: r.seat_number, grade: r.grade!, price: Number(r.price) }])),
  };
}

/**
 * A reservation as the API answers it, read in the statement of an event that a write sent in
 * the same round trip (outbox insertComputedEvent): `a`, the answer's fields in Reservation's
 * order with its times written by concert_iso as toISOString writes them; and its user, time,
 * concert and show.
 */
function reservationAnswer(reservationId: string): HotFragment {
  return hot`SELECT r.user_id, r.created_at, sc.concert_id, r.schedule_id, json_build_object(
        'reservationId', r.id, 'concertId', sc.concert_id, 'concertTitle', c.title, 'scheduleId', r.schedule_id, 'startsAt', concert_iso(sc.starts_at),
        'seats', (SELECT json_agg(json_build_object('seatNumber', rs.seat_number, 'grade', rs.grade, 'price', rs.price) ORDER BY rs.seat_number)
                  FROM reservation_seats rs WHERE rs.reservation_id = r.id),
        'totalPrice', r.total_price, 'status', r.status, 'holdExpiresAt', concert_iso(r.hold_expires_at), 'source', r.source,
        'createdAt', concert_iso(r.created_at), 'paidAt', concert_iso(r.paid_at), 'refundedAt', concert_iso(r.refunded_at)) AS a
      FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id JOIN concerts c ON c.id = sc.concert_id
      WHERE r.id = ${reservationId}::uuid`;
}

/**
 * A hold just written, for its event's statement: `data`, the event's (reservationData: the
 * answer and the user); `at`, the hold's time; and `stored`, the answer as its idempotency key
 * keeps it, the text superjson.stringify makes of the answer ReservationsService.hold returns
 * (the same fields in the same order, its three times as Dates). No row when the hold wrote no
 * reservation.
 */
export function heldSubject(reservationId: string): HotFragment {
  return hot`SELECT jsonb_build_object('reservation', a::jsonb || jsonb_build_object('userId', user_id)) AS data, created_at AS at,
      json_build_object('json', a, 'meta', json_build_object('values',
        json_build_object('startsAt', json_build_array('Date'), 'holdExpiresAt', json_build_array('Date'), 'createdAt', json_build_array('Date')), 'v', 1))::text AS stored
    FROM (${reservationAnswer(reservationId)}) held`;
}

/**
 * A payment just written, for its event's statement: `data`, the event's (the paid reservation
 * with its user, and the payment); `at`, the payment's time; and `stored`, the text superjson
 * makes of what PaymentsService keeps under the key (its fields in order, paidAt a Date). No row
 * when the sale wrote no payment.
 */
export function paidSubject(paymentId: string, reservationId: string, paidWith?: { concertId: number; tokenId: string }): HotFragment {
  const token = paidWith ? hot`, 'paidWith', json_build_object('concertId', ${paidWith.concertId}::bigint, 'tokenId', ${paidWith.tokenId}::text)` : hotRaw('');
  return hot`SELECT jsonb_build_object('reservation', r.a::jsonb || jsonb_build_object('userId', r.user_id),
        'payment', jsonb_build_object('paymentId', p.id, 'amount', p.amount, 'paidAt', concert_iso(p.created_at), 'balanceAfter', p.balance_after)) AS data,
      p.created_at AS at,
      json_build_object('json', json_build_object('paymentId', p.id, 'reservationId', p.reservation_id, 'amount', p.amount, 'status', p.status,
        'paidAt', concert_iso(p.created_at), 'balanceBefore', p.balance_before, 'balanceAfter', p.balance_after, 'concertId', r.concert_id,
        'scheduleId', r.schedule_id${token}), 'meta', json_build_object('values', json_build_object('paidAt', json_build_array('Date')), 'v', 1))::text AS stored
    FROM payments p CROSS JOIN (${reservationAnswer(reservationId)}) r
    WHERE p.id = ${paymentId}::uuid`;
}

/** Frees the unsold seats a reservation still claims. */
export async function releaseSeats(trx: Tx, reservationIds: string[]) {
  if (reservationIds.length === 0) return;
  await trx
    .updateTable('seats')
    .set({ reservation_id: null, held_until: null })
    .where('reservation_id', 'in', reservationIds)
    .where('sold_at', 'is', null)
    .execute();
}

export async function markCancelled(trx: Tx, reservationId: string, now: Date) {
  await trx.updateTable('reservations').set({ status: 'CANCELLED', cancelled_at: now }).where('id', '=', reservationId).execute();
}

/** Marks lapsed holds EXPIRED and frees their seats; SKIP LOCKED lets any number of sweepers run at once. */
/**
 * Locks the shows of the soonest-lapsed holds (FOR NO KEY UPDATE, the lock a show's offers, a
 * refund, a cancel and a show's cancellation take first, before its reservations and seats),
 * skipping a show another transaction has locked: the sweep takes it on its next round. Taking
 * the show's row after the holds' rows (as the offer of their seats did) deadlocked with a show
 * cancelled at once, four times running in a CI run: INTERNAL to the operator.
 */
export async function lockShowsWithLapsedHolds(trx: Tx, now: Moment, limit: number): Promise<number[]> {
  const { rows } = await sql<{ id: string }>`
    SELECT id FROM schedules WHERE id IN (
      SELECT schedule_id FROM reservations WHERE status = 'HELD' AND hold_expires_at <= ${now} ORDER BY hold_expires_at LIMIT ${limit})
    ORDER BY id FOR NO KEY UPDATE SKIP LOCKED`.execute(trx);
  return rows.map((r) => Number(r.id));
}

/** Lapsed holds of the given shows (whose rows the caller has locked), soonest first: EXPIRED, their seats free. */
export async function expireLapsedHolds(trx: Tx, now: Moment, limit: number, scheduleIds: number[]): Promise<string[]> {
  if (scheduleIds.length === 0) return [];
  const ids = await trx
    .selectFrom('reservations')
    .select('id')
    .where('status', '=', 'HELD')
    .where('schedule_id', 'in', scheduleIds)
    .where('hold_expires_at', '<=', now)
    .orderBy('hold_expires_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
  const list = ids.map((r) => r.id);
  if (list.length === 0) return list;
  await markExpired(trx, list);
  await releaseSeats(trx, list);
  return list;
}

/** Holds past their expiry (the caller has locked them) end EXPIRED, as their reads say already. */
export async function markExpired(trx: Tx, reservationIds: string[]) {
  if (reservationIds.length === 0) return;
  await trx.updateTable('reservations').set({ status: 'EXPIRED' }).where('id', 'in', reservationIds).where('status', '=', 'HELD').execute();
}

/**
 * One page of the live holds, soonest to lapse first: keyset on (hold_expires_at, id) through
 * reservations_live_page_idx. A hold made while an operator pages lapses after the ones shown,
 * so it comes on a later page, never twice.
 */
export async function findLiveHolds(
  db: Db,
  now: Moment,
  page: { concertId?: number | undefined; scheduleId?: number | undefined; after?: { expiresAt: string; id: string } | undefined; limit: number },
) {
  let q = db
    .selectFrom('reservations as r')
    .innerJoin('schedules as sc', 'sc.id', 'r.schedule_id')
    .select((eb) => [
      'r.id',
      'r.user_id',
      'r.schedule_id',
      'r.total_price',
      'r.hold_expires_at',
      'r.source',
      cursorTime('r.hold_expires_at').as('expires_key'),
      eb
        .selectFrom('reservation_seats as rs')
        .select(sql<number[]>`array_agg(rs.seat_number ORDER BY rs.seat_number)`.as('n'))
        .whereRef('rs.reservation_id', '=', 'r.id')
        .as('seat_numbers'),
    ])
    .where('r.status', '=', 'HELD')
    .where('r.hold_expires_at', '>', now)
    .orderBy('r.hold_expires_at')
    .orderBy('r.id')
    .limit(page.limit);
  if (page.concertId !== undefined) q = q.where('sc.concert_id', '=', page.concertId);
  if (page.scheduleId !== undefined) q = q.where('r.schedule_id', '=', page.scheduleId);
  const after = page.after;
  if (after) q = q.where(sql<boolean>`(r.hold_expires_at, r.id) > (${after.expiresAt}::timestamptz, ${after.id}::uuid)`);
  return q.execute();
}

/** Seats of a schedule of the pass's concert: a pass for one concert opens no other. */
export const passAdmitsTo = (pass: BookingPass) =>
  sql<boolean>`schedule_id IN (SELECT id FROM schedules WHERE concert_id = ${pass.concertId})`;

/** passAdmitsTo, as a fragment of a hot statement (db/hot.ts). */
export const hotPassAdmitsTo = (pass: BookingPass) => hot`schedule_id IN (SELECT id FROM schedules WHERE concert_id = ${pass.concertId})`;

/**
 * `($1, $2, …)`: a statement per number of seats (at most MAX_SEATS_PER_USER_PER_SCHEDULE), so
 * that its generic plan knows how many rows the claim finds. With `seat_number = ANY($n)` a
 * generic plan reckons with ten, and its estimated cost came out above a custom plan's (which
 * knows the array): PostgreSQL's plan cache then planned the hold's statement afresh at every
 * hold on the bench's database grown by 100,000 sold seats (8,020 plans for 8,000 holds, 0.8 ms
 * each, pg_stat_statements), where the fresh database beside it settled on its generic plan
 * (120 plans), and the grown one ran 0.72-0.79x of its holds.
 */
const seatListShapes: Array<ReadonlyArray<string>> = [];
function seatList(seatNumbers: readonly number[]): HotFragment {
  const k = seatNumbers.length;
  const strings = (seatListShapes[k] ??= Object.freeze(['(', ...Array.from({ length: k - 1 }, () => ', '), ')']));
  return new HotFragment(strings, seatNumbers);
}

/** passAdmitsTo for a statement that has read its one show's row as `show` (id, concert_id): that show is of the pass's concert. */
const hotShowAdmits = (pass: BookingPass) => hot`schedule_id IN (SELECT id FROM show WHERE concert_id = ${pass.concertId})`;
