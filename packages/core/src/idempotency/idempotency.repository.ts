import { type Moment, plusMs } from '../clock.ts';
import type { Db, Tx } from '../db/database.ts';
import { type HotFragment, hot, hotRaw, runHot } from '../db/hot.ts';

export interface KeyRef {
  userId: number;
  procedure: string;
  key: string;
}

/** Claims a fresh key, its lease leaseMs from `now` (the database's time); undefined when the key already exists. */
export async function insertKey(db: Db, ref: KeyRef, row: { requestHash: string; owner: string; leaseMs: number; now: Moment }) {
  // Every call of an idempotent procedure sends it: a hot statement (db/hot.ts).
  const { rows } = await runHot<{ owner: string }>(
    db,
    hot`INSERT INTO idempotency_keys (user_id, procedure, key, request_hash, state, owner, locked_until, created_at)
    VALUES (${ref.userId}, ${ref.procedure}, ${ref.key}, ${row.requestHash}, 'IN_PROGRESS', ${row.owner}, ${plusMs(row.now, row.leaseMs)}, ${row.now})
    ON CONFLICT DO NOTHING RETURNING owner`,
  );
  return rows[0];
}

/** The key, and whether its lease has lapsed by `now` (the database's time, not the caller's). */
export async function findKey(db: Db, ref: KeyRef, now: Moment) {
  // Read by every call refused before its claim (a crowd on a taken seat): a hot statement.
  const { rows } = await runHot<{ request_hash: string; state: string; owner: string; response: string | null; lapsed: boolean }>(
    db,
    hot`SELECT request_hash, state, owner, response, locked_until <= ${now} AS lapsed FROM idempotency_keys
    WHERE user_id = ${ref.userId} AND procedure = ${ref.procedure} AND key = ${ref.key}`,
  );
  return rows[0];
}

/** Takes over a key whose owner let its lease lapse (a crashed process), by `now` (the database's time). */
export async function takeOverKey(db: Db, ref: KeyRef, from: string, to: string, leaseMs: number, now: Moment) {
  const r = await db
    .updateTable('idempotency_keys')
    .set({ owner: to, locked_until: plusMs(now, leaseMs) })
    .where('user_id', '=', ref.userId)
    .where('procedure', '=', ref.procedure)
    .where('key', '=', ref.key)
    .where('state', '=', 'IN_PROGRESS')
    .where('owner', '=', from)
    .where('locked_until', '<=', now)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** Inside the operation's own transaction: the result and the key commit together or not at all. */
/** Marks the key DONE with its response, if this owner still holds it: RETURNING a row when it did. */
/**
 * `response`: the stored answer (superjson's text), or a fragment of the statement that computes
 * it (then the key is completed only where it is not null).
 */
export function completeKeyStatement(ref: KeyRef, owner: string, response: string | HotFragment, now: Moment) {
  return hot`
    UPDATE idempotency_keys SET state = 'DONE', response = ${response}, completed_at = ${now}
    WHERE user_id = ${ref.userId} AND procedure = ${ref.procedure} AND key = ${ref.key} AND state = 'IN_PROGRESS' AND owner = ${owner}${
      typeof response === 'string' ? hotRaw('') : hot` AND ${response} IS NOT NULL`
    }
    RETURNING 1`;
}

export async function completeKey(trx: Tx, ref: KeyRef, owner: string, response: string, now: Moment) {
  const { rows } = await runHot(trx, completeKeyStatement(ref, owner, response, now));
  return rows.length > 0;
}

/** Deletes the key if it is still `owner`'s call in progress; whether it was. */
export async function releaseKey(db: Db, ref: KeyRef, owner: string): Promise<boolean> {
  const r = await db
    .deleteFrom('idempotency_keys')
    .where('user_id', '=', ref.userId)
    .where('procedure', '=', ref.procedure)
    .where('key', '=', ref.key)
    .where('state', '=', 'IN_PROGRESS')
    .where('owner', '=', owner)
    .executeTakeFirst();
  return r.numDeletedRows > 0n;
}

export async function deleteKeysCreatedBefore(db: Db, before: Moment) {
  const r = await db.deleteFrom('idempotency_keys').where('created_at', '<', before).where('state', '=', 'DONE').executeTakeFirst();
  return Number(r.numDeletedRows);
}
