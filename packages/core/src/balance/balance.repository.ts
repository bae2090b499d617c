import { sql } from 'kysely';
import type { Db, Tx } from '../db/database.ts';
import type { NewLedgerEntry } from '../db/schema.ts';

/**
 * Adds `amount` (signed) to a locked user's balance and writes its ledger entry, in the caller's
 * transaction. The balance's CHECK (>= 0) stops an overdraft even if a caller skipped its check.
 */
export async function applyLedgerEntry(trx: Tx, entry: Omit<NewLedgerEntry, 'balance_after'>) {
  const { balance, updated_at } = await trx
    .updateTable('users')
    .set((eb) => ({ balance: eb('balance', '+', entry.amount), updated_at: entry.created_at }))
    .where('id', '=', entry.user_id)
    .returning(['balance', 'updated_at'])
    .executeTakeFirstOrThrow();
  const row = await trx
    .insertInto('ledger_entries')
    .values({ ...entry, balance_after: balance })
    .returning(['id', 'created_at'])
    .executeTakeFirstOrThrow();
  return { entryId: row.id, balance, updatedAt: updated_at };
}

/** The user's own top-ups in [from, to), for the monthly cap. */
export async function sumUserCharges(trx: Tx, userId: number, from: Date, to: Date): Promise<number> {
  const row = await trx
    .selectFrom('ledger_entries')
    .select(sql<number>`coalesce(sum(amount), 0)::bigint`.as('total'))
    .where('user_id', '=', userId)
    .where('kind', '=', 'CHARGE')
    .where('source', '=', 'USER')
    .where('created_at', '>=', from)
    .where('created_at', '<', to)
    .executeTakeFirstOrThrow();
  return Number(row.total);
}

export async function findLedgerPage(db: Db, userId: number, beforeId: number | undefined, limit: number) {
  let q = db
    .selectFrom('ledger_entries')
    .select(['id', 'kind', 'amount', 'balance_after', 'reservation_id', 'created_at'])
    .where('user_id', '=', userId)
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (beforeId !== undefined) q = q.where('id', '<', beforeId);
  return q.execute();
}
