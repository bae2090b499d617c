import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
//
// A statement may run at most 10 s, so a stuck lock cannot hold a request (and its idempotency
// key) for long. It is the database's default rather than a connection startup option: behind
// PgBouncer in transaction pooling a startup option is refused or dropped, and a session SET
// would land on whichever server connection the next transaction gets. Only the database's
// owner may set it; a deployment whose role does not own the database sets it on the role.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    DO $$
    BEGIN
      IF pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER') THEN
        EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '10s');
      ELSE
        RAISE NOTICE 'not the owner of %: set statement_timeout = 10s on the role instead', current_database();
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
        EXECUTE format('ALTER DATABASE %I RESET statement_timeout', current_database());
      END IF;
    END
    $$;
  `.execute(db);
}
