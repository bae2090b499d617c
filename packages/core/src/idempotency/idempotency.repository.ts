import { sql } from 'kysely';
import type { Db, Tx } from '../db/database.ts';

export interface KeyRef {
  userId: number;
  procedure: string;
  key: string;
}

/** Claims a fresh key; undefined when the key already exists. */
export async function insertKey(db: Db, ref: KeyRef, row: { requestHash: string; owner: string; lockedUntil: Date; now: Date }) {
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
      locked_until: row.lockedUntil,
      created_at: row.now,
      completed_at: null,
    })
    .onConflict((oc) => oc.doNothing())
    .returning('owner')
    .executeTakeFirst();
}

export async function findKey(db: Db, ref: KeyRef) {
  return db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'state', 'owner', 'response', 'locked_until'])
    .where('user_id', '=', ref.userId)
    .where('procedure', '=', ref.procedure)
    .where('key', '=', ref.key)
    .executeTakeFirst();
}

/** Takes over a key whose owner let its lease lapse (a crashed process). */
export async function takeOverKey(db: Db, ref: KeyRef, from: string, to: string, lockedUntil: Date, now: Date) {
  const r = await db
    .updateTable('idempotency_keys')
    .set({ owner: to, locked_until: lockedUntil })
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
export function completeKeyStatement(ref: KeyRef, owner: string, response: string, now: Date) {
  return sql`
    UPDATE idempotency_keys SET state = 'DONE', response = ${response}, completed_at = ${now}
    WHERE user_id = ${ref.userId} AND procedure = ${ref.procedure} AND key = ${ref.key} AND state = 'IN_PROGRESS' AND owner = ${owner}
    RETURNING 1`;
}

export async function completeKey(trx: Tx, ref: KeyRef, owner: string, response: string, now: Date) {
  const { rows } = await completeKeyStatement(ref, owner, response, now).execute(trx);
  return rows.length > 0;
}

export async function releaseKey(db: Db, ref: KeyRef, owner: string) {
  await db
    .deleteFrom('idempotency_keys')
    .where('user_id', '=', ref.userId)
    .where('procedure', '=', ref.procedure)
    .where('key', '=', ref.key)
    .where('state', '=', 'IN_PROGRESS')
    .where('owner', '=', owner)
    .execute();
}

export async function deleteKeysCreatedBefore(db: Db, before: Date) {
  const r = await db.deleteFrom('idempotency_keys').where('created_at', '<', before).where('state', '=', 'DONE').executeTakeFirst();
  return Number(r.numDeletedRows);
}
