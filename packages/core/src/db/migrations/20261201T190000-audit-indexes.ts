import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// A reservation's ledger entries (its payment debit) had no index: the audit's per-reservation
// debit sum read the whole ledger once per PAID reservation. The audit now aggregates the ledger
// in one pass; this index gives that pass, and any lookup of one reservation's entries, an
// ordered, narrow path instead of the whole table.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX ledger_entries_reservation_idx ON ledger_entries (reservation_id, kind) INCLUDE (amount) WHERE reservation_id IS NOT NULL`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX ledger_entries_reservation_idx`.execute(db);
}
