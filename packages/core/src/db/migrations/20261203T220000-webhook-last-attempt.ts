import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// admin.webhooks.list's lastDelivery was an endpoint's newest delivery: behind a receiver
// answering 500, that was an event not tried yet (PENDING, no answer, no time), and the list hid
// the failing attempts. It is now the delivery attempted last, which this index finds at once
// (the newest one, when none has been tried).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX webhook_deliveries_last_attempt_idx ON webhook_deliveries (endpoint_id, last_attempt_at DESC NULLS LAST, id DESC)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX webhook_deliveries_last_attempt_idx`.execute(db);
}
