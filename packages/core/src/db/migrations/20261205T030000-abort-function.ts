import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// concert_abort(reason) fails the statement that calls it, with SQLSTATE CA001 and the reason as
// its message. The hold's and the payment's last statement call it when their transaction must
// not commit (the show was cancelled, the idempotency key was taken over), so that the statement
// can carry its transaction's COMMIT in the same round trip: the database refuses, not code that
// runs after the statement (db/pipeline.ts).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE FUNCTION concert_abort(reason text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
      RAISE EXCEPTION USING ERRCODE = 'CA001', MESSAGE = reason;
    END
    $$`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION concert_abort(text)`.execute(db);
}
