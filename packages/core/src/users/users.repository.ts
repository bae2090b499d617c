import { sql } from 'kysely';
import { AppError } from '../errors.ts';
import type { Db, Tx } from '../db/database.ts';

export async function findUser(db: Db | Tx, userId: number) {
  return db.selectFrom('users').select(['id', 'name', 'balance', 'updated_at']).where('id', '=', userId).executeTakeFirst();
}

/** Which of these users exist: one statement whatever their number (one statement text, so one prepared statement). */
export async function existingUsers(db: Db | Tx, userIds: readonly number[]): Promise<Set<number>> {
  const rows = await db
    .selectFrom('users')
    .select('id')
    .where(sql<boolean>`id = ANY(${userIds}::bigint[])`)
    .execute();
  return new Set(rows.map((r) => r.id));
}

export async function getUser(db: Db | Tx, userId: number) {
  const user = await findUser(db, userId);
  if (!user) throw new AppError('USER_NOT_FOUND', `User ${userId} does not exist`);
  return user;
}

/** Locks the user's row for the rest of the transaction: every change of a balance goes through here. */
export async function lockUser(trx: Tx, userId: number) {
  const user = await trx
    .selectFrom('users')
    .select(['id', 'name', 'balance'])
    .where('id', '=', userId)
    .forUpdate()
    .executeTakeFirst();
  if (!user) throw new AppError('USER_NOT_FOUND', `User ${userId} does not exist`);
  return user;
}

export async function insertUser(trx: Tx, name: string) {
  return trx.insertInto('users').values({ name }).returning(['id', 'name', 'balance']).executeTakeFirstOrThrow();
}
