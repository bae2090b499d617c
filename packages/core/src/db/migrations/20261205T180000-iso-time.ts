import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// concert_iso(t) writes a time as JavaScript's toISOString does ("2026-12-05T18:00:00.123Z":
// UTC, milliseconds, truncated as node-postgres truncates a time it reads). A hold's event and
// the answer its idempotency key keeps are built in the database from what the hold wrote
// (reservations.repository heldSubject), and must say the times the answer says. A function of
// its own, not the format inline: the format's colons read as variables to pgbench, which
// replays the hold's statements as they are sent (bench/pgbench.ts). STABLE, as to_char is, so
// the planner inlines it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE FUNCTION concert_iso(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
      SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    $$`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION concert_iso(timestamptz)`.execute(db);
}
