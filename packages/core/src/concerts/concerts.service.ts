import { AppError } from '../errors.ts';
import { type Clock, dbNow, dbTime, type Moment } from '../clock.ts';
import type { Db } from '../db/database.ts';
import { type Tx, transaction } from '../db/database.ts';
import type { CreateConcertInput, PageInput, ScheduleSpec } from '../schemas.ts';
import type { ConcertDetail, ConcertSummary, Page, Schedule, SeatMap } from '../types.ts';
import { decodeCursor, encodeCursor, toPage, ZCursorId } from '../paging.ts';
import type { ActivePass, QueueGate } from '../queue/queue.gate.ts';
import { type Inventory, SEAT_COUNT_CAP } from '../queue/queue.store.ts';
import { insertEvent } from '../outbox/outbox.repository.ts';
import * as repo from './concerts.repository.ts';
import { type CachedSeat, firstLapse, type SeatMapCache, seatStatusAt } from './seatmap.cache.ts';

export const DEFAULT_GRADE = 'R';
export const DEFAULT_PRICE = 100_000;

export class ConcertsService {
  private readonly maps = new WeakMap<CachedSeat[], { map: SeatMap; until: number }>();
  private readonly scheduleRows = new Map<number, Awaited<ReturnType<typeof repo.getScheduleRow>>>();

  constructor(private readonly deps: { db: Db; clock: Clock; seatMaps: SeatMapCache }) {}

  async list(page: PageInput): Promise<Page<ConcertSummary>> {
    const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor, 'concerts', [ZCursorId])[0];
    const rows = await repo.listConcerts(this.deps.db, { after, limit: page.limit + 1 });
    return toPage(
      rows,
      page.limit,
      (r) => ({ concertId: r.id, title: r.title, venue: r.venue, scheduleCount: r.schedule_count }),
      (r) => encodeCursor('concerts', [r.id]),
    );
  }

  async get(concertId: number): Promise<ConcertDetail> {
    const concert = await repo.getConcert(this.deps.db, concertId);
    const schedules = await repo.findSchedules(this.deps.db, { concertId }, dbNow(this.deps.clock));
    return { concertId: concert.id, title: concert.title, venue: concert.venue, schedules };
  }

  async schedules(concertId: number, includeSoldOut: boolean): Promise<{ concertId: number; schedules: Schedule[] }> {
    await repo.getConcert(this.deps.db, concertId);
    const all = await repo.findSchedules(this.deps.db, { concertId }, dbNow(this.deps.clock));
    return { concertId, schedules: includeSoldOut ? all : all.filter((s) => s.availableSeats > 0) };
  }

  async schedule(scheduleId: number): Promise<Schedule> {
    const [schedule] = await repo.findSchedules(this.deps.db, { scheduleId }, dbNow(this.deps.clock));
    if (!schedule) {
      await assertNotCancelled(this.deps.db, scheduleId);
      throw new AppError('SCHEDULE_NOT_FOUND', `Schedule ${scheduleId} does not exist`);
    }
    return schedule;
  }

  /** Seats AVAILABLE, HELD and SOLD per show that has not started, with when its first hold lapses. */
  async seatCounts(concertId: number, now: Moment = dbNow(this.deps.clock), lapsingWithinMs?: number) {
    return repo.findSeatCounts(this.deps.db, concertId, now, lapsingWithinMs);
  }

  /**
   * The concert's bookable seats as its waiting room needs them, read after every change of
   * them: how many shows have a seat AVAILABLE, how many have none AVAILABLE but some to come
   * (HELD, or in a show whose booking has not opened), and when the first of those may be
   * AVAILABLE (a probe per show); and the AVAILABLE seats, counted up to `seatCap` (0: not counted), with the
   * users holding seats, for the line's seatBudget.
   */
  async inventory(concertId: number, now: Moment = dbNow(this.deps.clock), seatCap = SEAT_COUNT_CAP): Promise<Inventory> {
    const shows = await repo.findShowAvailability(this.deps.db, concertId, now, seatCap);
    const soldOut = shows.filter((s) => s.soldOutUnannounced).map((s) => s.scheduleId);
    // Best effort here: the sweep (announceSellOuts) writes what this read saw and failed to.
    if (soldOut.length > 0) await this.announceSoldOut(soldOut).catch(() => {});
    const lapses = shows.flatMap((s) => (s.nextLapse ? [s.nextLapse.getTime()] : []));
    const starts = shows.flatMap((s) => (s.unsold ? [s.startsAt.getTime()] : []));
    return {
      available: shows.filter((s) => s.available).length,
      held: lapses.length,
      nextLapse: lapses.length ? Math.min(...lapses) : null,
      nextStart: starts.length ? Math.min(...starts) : null,
      ...(seatCap > 0
        ? {
            // No show to come: nothing to count (the line is sold out). A count that reached the cap
            // is the cap: at least that many, and the line admits against it until a read with a
            // higher cap counts more. (It was null, no limit: a line that then raised its maxActive
            // past the cap admitted up to the new maxActive at once, 80 fans over 520 seats from
            // outside, before any read counted that far.)
            seats: shows.length === 0 ? 0 : shows[0]!.freeSeats,
            holders: shows[0]?.holders ?? [],
          }
        : {}),
    };
  }

  /**
   * concert.sold_out, once per sell-out, for each of these shows whose seats are all sold: after
   * the sales committed, so that it sees every one of them (a payment's own transaction cannot
   * see the payments racing it for the last seats). Called by the read of a concert's seats that
   * follows every change of them, before the writer answers, and by the periodic sweep.
   */
  async announceSoldOut(scheduleIds: number[]): Promise<number> {
    return transaction(this.deps.db, async (trx) => {
      const marked = await repo.markSoldOut(trx, scheduleIds);
      if (marked.length === 0) return 0;
      // The database's time, as for every other event: it is when the event's deliveries are due
      // (a process whose clock ran ahead dated it in the future, and nobody sent it until then).
      const now = await dbTime(trx, this.deps.clock);
      for (const data of marked) await insertEvent(trx, { type: 'concert.sold_out', scheduleId: data.scheduleId, now, data });
      return marked.length;
    });
  }

  /** The periodic sweep: shows sold out whose event a crash or a failed write left unwritten. */
  async announceSellOuts(): Promise<number> {
    const ids = await repo.findUnannouncedSellOuts(this.deps.db, dbNow(this.deps.clock));
    return ids.length > 0 ? this.announceSoldOut(ids) : 0;
  }

  async seats(scheduleId: number, gate: QueueGate): Promise<SeatMap> {
    const schedule = await this.scheduleRow(scheduleId);
    const pass = await gate.admit(schedule.concert_id, { seatMapOf: scheduleId });
    const seats = await this.cachedSeats(pass, scheduleId);
    const now = this.deps.clock.now().getTime();
    const view = (at: number): SeatMap => ({
      concertId: schedule.concert_id,
      scheduleId,
      startsAt: schedule.starts_at,
      seats: seats.map((s) => ({ seatNumber: s.seatNumber, grade: s.grade, price: s.price, status: seatStatusAt(s, at) })),
    });
    // One frozen map per cached load, while none of its holds has lapsed: every reader of that
    // version shares it, and the API serializes a frozen result once.
    let shared = this.maps.get(seats);
    if (!shared) {
      shared = { map: deepFreeze(view(now)), until: firstLapse(seats) };
      this.maps.set(seats, shared);
    }
    // A hold in it lapsed after the load began: this reader sees that seat AVAILABLE.
    return now < shared.until ? shared.map : view(now);
  }

  /**
   * Which of these seats are taken (held or sold) now, as far as the cached seat map knows. A
   * hold asks this first so that a crowd racing for one seat is turned away without a
   * transaction; the conditional UPDATE stays the only judge of a seat that looks free.
   */
  async takenSeats(pass: ActivePass, scheduleId: number, seatNumbers: number[]): Promise<number[]> {
    const seats = await this.cachedSeats(pass, scheduleId, 'no-false-taken');
    const now = this.deps.clock.now().getTime();
    return seatNumbers.filter((n) => {
      const seat = seats[n - 1];
      return seat !== undefined && (seatStatusAt(seat, now) !== 'AVAILABLE' || this.deps.seatMaps.claimedHere(scheduleId, n, now));
    });
  }

  /** The seat map behind the gate: the pass's concert, and the seat-map version its check read, if any. */
  private cachedSeats(pass: ActivePass, scheduleId: number, need?: 'current' | 'no-false-taken') {
    const load = async () => {
      // Only on a cache miss; a cancellation invalidates the cached map after it commits.
      await assertNotCancelled(this.deps.db, scheduleId);
      const before = this.deps.clock.now().getTime();
      const rows = await repo.findSeatMap(this.deps.db, scheduleId, dbNow(this.deps.clock));
      // A hold lapses at held_until by the database's clock; the map is read by this process's.
      // Each lapse is moved by the difference between this process's time before the read and the
      // database's time of it, so it comes no later than in the database whatever either clock
      // says (a process whose clock was behind kept calling a lapsed hold's seat taken for as long
      // as the difference: found by a review).
      const shift = rows.length > 0 ? before - rows[0]!.at.getTime() : 0;
      return rows.map((s) => ({
        seatNumber: s.seat_number,
        grade: s.grade,
        price: s.price,
        status: s.status,
        heldUntil: s.held_until === null ? null : new Date(s.held_until.getTime() + shift),
      }));
    };
    return this.deps.seatMaps.get(pass.concertId, scheduleId, load, pass.seatMapVersion, need);
  }

  /** Schedules never change once created, so each is read from the database once per process. */
  async scheduleRow(scheduleId: number) {
    let row = this.scheduleRows.get(scheduleId);
    if (!row) {
      row = await repo.getScheduleRow(this.deps.db, scheduleId);
      this.scheduleRows.set(scheduleId, row);
    }
    return row;
  }

  async create(input: CreateConcertInput): Promise<CreatedConcert> {
    const created = await transaction(this.deps.db, (trx) => createConcertIn(trx, input, this.deps.clock.now()));
    await analyzeSeatsAfterCreate(this.deps.db);
    return created;
  }
}

export interface CreatedConcert {
  concertId: number;
  schedules: Array<{ scheduleId: number; startsAt: Date; seatCount: number }>;
}

/**
 * After new shows' seats are committed, their statistics. A database whose statistics were taken
 * before any seat existed (a new deployment's first sale, before autovacuum's next pass) had the
 * planner read a show as a row or two: the hold's seat claim, prepared and on a generic plan,
 * then walked every seat of the show for the one asked for (1,000 index entries and 0.7 ms of
 * PostgreSQL per hold in the bench) rather than probing the seats by their key. Best effort: the
 * concert is created whatever happens here (a failure leaves the statistics to autovacuum).
 */
export async function analyzeSeatsAfterCreate(db: Db): Promise<void> {
  await transaction(db, repo.analyzeSeats).catch(() => {});
}

/** Creates a concert with its schedules and seats inside the caller's transaction. */
export async function createConcertIn(trx: Tx, input: CreateConcertInput, now: Date): Promise<CreatedConcert> {
  assertStorableText(input.title, 'title');
  assertStorableText(input.venue, 'venue');
  input.schedules.forEach((spec, i) => {
    // Nobody can book a show that has begun: creating one is an operator's slip.
    if (spec.startsAt <= now) {
      throw new AppError('INVALID_INPUT', `schedules[${i}].startsAt must be in the future (it is ${spec.startsAt.toISOString()})`, {
        path: ['schedules', i, 'startsAt'],
      });
    }
  });
  const layouts = input.schedules.map((spec, i) => ({ spec, seats: seatLayout(spec, i) }));
  const concert = await repo.insertConcert(trx, { title: input.title, venue: input.venue });
  const schedules = [];
  for (const { spec, seats } of layouts) {
    const row = await repo.insertSchedule(trx, {
      concert_id: concert.id,
      starts_at: spec.startsAt,
      booking_opens_at: spec.bookingOpensAt ?? now,
      seat_count: spec.seatCount,
    });
    await repo.insertSeats(trx, seats.map((s) => ({ ...s, schedule_id: row.id })));
    schedules.push({ scheduleId: row.id, startsAt: row.starts_at, seatCount: row.seat_count });
  }
  return { concertId: concert.id, schedules };
}

/** Every seat's grade and price (ZScheduleSpec has checked that the tiers cover each seat once). */
export function seatLayout(spec: ScheduleSpec, index: number): Array<{ seat_number: number; grade: string; price: number }> {
  const seats = Array.from({ length: spec.seatCount }, (_, i) => ({ seat_number: i + 1, grade: DEFAULT_GRADE, price: DEFAULT_PRICE }));
  spec.tiers?.forEach((tier, t) => {
    assertStorableText(tier.grade, `schedules[${index}].tiers[${t}].grade`);
    for (let n = tier.fromSeat; n <= tier.toSeat; n++) seats[n - 1] = { seat_number: n, grade: tier.grade, price: tier.price };
  });
  return seats;
}

// PostgreSQL text cannot hold NUL, nor a lone surrogate as sent (it becomes U+FFFD): refuse them
// as INVALID_INPUT rather than let the INSERT fail as an internal error or store other text.
// The input schemas refuse both already (schemas.ts storable); this holds for callers of core
// that did not parse with them. (Dates are range-checked by ZDateTime.)
export function assertStorableText(value: string, field: string): void {
  if (value.includes('\u0000')) throw new AppError('INVALID_INPUT', `${field} must not contain NUL characters`);
  if (!value.isWellFormed()) throw new AppError('INVALID_INPUT', `${field} must be well-formed Unicode (a lone UTF-16 surrogate is not a character)`);
}

/** Reads the committed schedule row (the per-process cache of schedule rows does not know of a cancellation). */
export async function assertNotCancelled(db: Db | Tx, scheduleId: number): Promise<void> {
  const row = await repo.findScheduleRow(db, scheduleId);
  if (row?.cancelled_at) throw new AppError('SCHEDULE_CANCELLED', `Schedule ${scheduleId} has been cancelled`);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
