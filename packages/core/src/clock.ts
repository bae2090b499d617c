import { type RawBuilder, sql } from 'kysely';
import { CLOCK_TIME, hot, registerHot, STATEMENT_TIME } from './db/hot.ts';

/**
 * The process's own clock. It decides nothing about holds, payments or the line: PostgreSQL's
 * clock decides holds and payments (statement_timestamp() in the statements) and Redis's TIME
 * the line (inside its scripts), so API processes whose clocks drift still agree (README,
 * Decisions: "One clock decides"). A clock with `decides` set (FakeClock, in tests) stands in for
 * both, so a test can move time by hand.
 */
export interface Clock {
  now(): Date;
  /** This clock's time is used in place of the database's and Redis's (tests only). */
  readonly decides?: boolean;
}

/** The system clock, shifted by offsetMs (CLOCK_OFFSET_MS: a drill or test of clock drift). */
export function appClock(offsetMs = 0): Clock {
  return offsetMs === 0 ? { now: () => new Date() } : { now: () => new Date(Date.now() + offsetMs) };
}

export const systemClock: Clock = appClock();

/** A clock tests move by hand; it decides in place of the database's and Redis's clocks. */
export class FakeClock implements Clock {
  readonly decides = true;
  private ms: number;
  constructor(start: Date | number = Date.now()) {
    this.ms = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(to: Date | number): void {
    this.ms = typeof to === 'number' ? to : to.getTime();
  }
}

/** The time a statement decides with: the database's own, or a deciding (test) clock's value. */
export type Moment = Date | RawBuilder<Date>;

/**
 * The deciding time for a statement: `statement_timestamp()` (one value for the whole statement,
 * taken when it starts, so after any lock an earlier statement of the transaction waited for).
 */
export function dbNow(clock: Clock): Moment {
  return clock.decides ? clock.now() : STATEMENT_TIME;
}

/** The deciding time where it is read, row by row (`clock_timestamp()`): after this statement's own locks. */
export function dbNowAfterLocks(clock: Clock): Moment {
  return clock.decides ? clock.now() : CLOCK_TIME;
}

/** A moment plus ms, as SQL. */
export function plusMs(at: Moment, ms: number): Moment {
  if (at instanceof Date) return new Date(at.getTime() + ms);
  // The same SQL as a hot statement's fragment (db/hot.ts).
  return registerHot(sql<Date>`(${at} + make_interval(secs => ${ms / 1000}))`, hot`(${at} + make_interval(secs => ${ms / 1000}))`);
}

/** The deciding time for a Redis script, in ms: undefined lets the script read Redis's TIME. */
export function storeNow(clock: Clock): number | undefined {
  return clock.decides ? clock.now().getTime() : undefined;
}

/**
 * The deciding time as a value, read from the database inside the caller's transaction (one round
 * trip): for the paths that are not hot enough to fold it into their statements.
 */
export async function dbTime(db: Parameters<RawBuilder<unknown>['execute']>[0], clock: Clock): Promise<Date> {
  if (clock.decides) return clock.now();
  const { rows } = await sql<{ t: Date }>`SELECT statement_timestamp() AS t`.execute(db);
  return rows[0]!.t;
}
