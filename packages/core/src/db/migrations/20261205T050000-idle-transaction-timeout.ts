import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
//
// A transaction left idle for a minute is ended by the database: an API process that stalls
// between two statements of a transaction (a frozen VM, a network partition, a pause far past the
// idempotency key's 15 s lease) held its row locks, the fan's and the seats', until its connection
// was found dead, which TCP may take hours to notice, and every other call on that fan or those
// seats waited for its statement timeout and answered 503 (an outside review). A minute is far
// past anything the API leaves between two statements. As for the statement timeout, a database
// default (PgBouncer in transaction pooling drops session settings); a role that does not own
// the database sets it on the role.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    DO $$
    BEGIN
      IF pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER') THEN
        EXECUTE format('ALTER DATABASE %I SET idle_in_transaction_session_timeout = %L', current_database(), '60s');
      ELSE
        RAISE NOTICE 'not the owner of %: set idle_in_transaction_session_timeout = 60s on the role instead', current_database();
      END IF;
    END
    $$;
  `.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DO $$
    BEGIN
      IF pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER') THEN
        EXECUTE format('ALTER DATABASE %I RESET idle_in_transaction_session_timeout', current_database());
      END IF;
    END
    $$;
  `.execute(db);
}
