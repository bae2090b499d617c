import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// A hold claims its seats with `schedule_id = $1 AND seat_number IN (…) AND sold_at IS NULL`,
// prepared, and soon on PostgreSQL's generic plan, made without the show's id. On a database
// where most seats are sold (other shows), the statistics say a show has a few unsold seats, and
// that plan took seats_unsold_idx (schedule_id, held_until) for the claim: every unsold or held
// seat of the show was read to find the one asked for (1,500 index entries per hold at 1,000 seats
// after 100,000 were sold elsewhere, more as the show fills). An index on the claim's own columns,
// under the same predicate, is the cheaper choice in every plan and finds exactly those seats.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX seats_claim_idx ON seats (schedule_id, seat_number) WHERE sold_at IS NULL`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX seats_claim_idx`.execute(db);
}
