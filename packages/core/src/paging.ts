import { sql } from 'kysely';
import { z } from 'zod';
import { AppError } from './errors.ts';
import type { Page } from './types.ts';

/**
 * Keyset cursors: the sort key of the last row shown, with the list's name, as base64url JSON.
 * Opaque to clients; not signed, because a position grants nothing (every list still filters by
 * its caller), so a cursor that decodes to a well-formed key is simply a place to start from.
 * Anything else (not base64url, not JSON, another list's cursor, a key of the wrong shape) is
 * INVALID_INPUT, never a 500.
 */
export function encodeCursor(list: string, key: readonly unknown[]): string {
  return Buffer.from(JSON.stringify([list, ...key])).toString('base64url');
}

export function decodeCursor<const T extends readonly [z.ZodType, ...z.ZodType[]]>(
  cursor: string,
  list: string,
  key: T,
): { [K in keyof T]: z.output<T[K]> } {
  const refuse = (): never => {
    throw new AppError('INVALID_INPUT', 'cursor must be the nextCursor of an earlier page of this list', { path: ['cursor'] });
  };
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) refuse();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    refuse();
  }
  const parsed = z.tuple([z.literal(list), ...key]).safeParse(value);
  if (!parsed.success) refuse();
  return parsed.data!.slice(1) as unknown as { [K in keyof T]: z.output<T[K]> };
}

/**
 * A timestamptz to the microsecond, as the database keeps it (a JS Date holds only milliseconds,
 * so a key rounded to them would skip or repeat rows that share a millisecond).
 */
export const ZCursorTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/)
  .refine((s) => {
    const d = new Date(s);
    // PostgreSQL has no year 0 (1 BC comes before AD 1), though JavaScript does: it was a 500.
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 23) === s.slice(0, 23) && s.slice(0, 4) !== '0000';
  });
export const ZCursorId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const ZCursorUuid = z.guid();

/** The SQL that renders a timestamptz column as a ZCursorTime. */
const CURSOR_TIME_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
export const cursorTime = (column: string) => sql<string>`to_char(${sql.ref(column)} AT TIME ZONE 'UTC', ${sql.raw(CURSOR_TIME_FORMAT)})`;

/** cursorTime's SQL as text, for a hot statement (db/hot.ts); `column` is the code's, never input. */
export const cursorTimeText = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', ${CURSOR_TIME_FORMAT})`;

/** A page from `limit + 1` rows read in order: the extra row only says that there is more. */
export function toPage<R, T>(rows: R[], limit: number, item: (row: R) => T, cursorOf: (row: R) => string): Page<T> {
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return { items: shown.map(item), nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : null };
}
