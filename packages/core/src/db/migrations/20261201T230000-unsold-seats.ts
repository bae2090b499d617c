import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// The waiting room asks after every change of a concert's seats whether any show still has one
// AVAILABLE, or only HELD ones and when the first of those lapses. That was a count over every
// seat of the concert (16,000 in the bench: 3 ms of PostgreSQL CPU after each hold). The unsold
// seats of a show in held_until order answer it with one index probe per show: the first entry is
// a free seat (NULL, or a hold already lapsed), or the show's first live hold to lapse; no entry:
// sold out. The same index serves the sold-out check after a payment.
// The probe's reading of a NULL deadline as "free" rests on seats_claim_state: an unsold seat has
// a hold deadline exactly when it has a claim.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX seats_unsold_idx ON seats (schedule_id, held_until NULLS FIRST) WHERE sold_at IS NULL`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX seats_unsold_idx`.execute(db);
}
