import { sql } from 'kysely';
import { type Moment, plusMs } from '../clock.ts';
import type { Db, Tx } from '../db/database.ts';

export interface KeyRef {
  userId: number;
  procedure: string;
  key: string;
}

/** Claims a fresh key, its lease leaseMs from `now` (the database's time); undefined when the key already exists. */
export async function insertKey(db: Db, ref: KeyRef, row: { requestHash: string; owner: string; leaseMs: number; now: Moment }) {
  return db
    .insertInto('idempotency_keys')
    .values({
      user_id: ref.userId,
      procedure: ref.procedure,
      key: ref.key,
      request_hash: row.requestHash,
      state: 'IN_PROGRESS',
      owner: row.owner,
      response: null,
      locked_until: plusMs(row.now, row.leaseMs),
      created_at: row.now,
      completed_at: null,
    })
    .onConflict((oc) => oc.doNothing())
    .returning('owner')
    .executeTakeFirst();
}

/** The key, and whether its lease has lapsed by `now` (the database's time, not the caller's). */
export async function findKey(db: Db, ref: KeyRef, now: Moment) {
  return db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'state', 'owner', 'response', sql<boolean>`locked_until <= ${now}`.as('lapsed')])
    .where('user_id', '=', ref.userId)
    .where('procedure', '=', ref.procedure)
    .where('key', '=', ref.key)
    .executeTakeFirst();
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
export function completeKeyStatement(ref: KeyRef, owner: string, response: string, now: Moment) {
  return sql`
    UPDATE idempotency_keys SET state = 'DONE', response = ${response}, completed_at = ${now}
    WHERE user_id = ${ref.userId} AND procedure = ${ref.procedure} AND key = ${ref.key} AND state = 'IN_PROGRESS' AND owner = ${owner}
    RETURNING 1`;
}

export async function completeKey(trx: Tx, ref: KeyRef, owner: string, response: string, now: Moment) {
  const { rows } = await completeKeyStatement(ref, owner, response, now).execute(trx);
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
