import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// Paged lists read in keyset order with the id as tiebreaker: a user's reservations newest
// first, the live holds soonest to lapse first. These indexes serve both the order and the
// row comparison of the cursor (the sweep of lapsed holds keeps using hold_expires_at first).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX reservations_user_page_idx ON reservations (user_id, created_at DESC, id DESC)`.execute(db);
  await sql`DROP INDEX reservations_user_idx`.execute(db);
  await sql`CREATE INDEX reservations_live_page_idx ON reservations (hold_expires_at, id) WHERE status = 'HELD'`.execute(db);
  await sql`DROP INDEX reservations_live_idx`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX reservations_live_idx ON reservations (hold_expires_at) WHERE status = 'HELD'`.execute(db);
  await sql`DROP INDEX reservations_live_page_idx`.execute(db);
  await sql`CREATE INDEX reservations_user_idx ON reservations (user_id, created_at DESC)`.execute(db);
  await sql`DROP INDEX reservations_user_page_idx`.execute(db);
}
