import { type Kysely, sql, type Transaction } from 'kysely';
import type { HotFragment } from './hot.ts';
import { Migrator } from 'kysely/migration';
import { migrations } from './migrations/index.ts';
import type { DB } from './schema.ts';

export type Db = Kysely<DB>;
export type Tx = Transaction<DB>;

/**
 * A data-modifying statement that rides along in another statement of the same transaction, as
 * one of its WITH clauses, to save a round trip (an idempotency key's completion in a write's
 * event statement). Its RETURNING rows are counted: `settle` is told whether it returned any, and
 * throws to roll the transaction back when it must have.
 */
export interface RidingStatement {
  sql: HotFragment;
  settle(returnedRows: boolean): void;
}

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock detected

/**
 * Runs fn in a transaction, retrying it whole on a serialization failure or a detected deadlock
 * (both leave nothing behind). Hooks given to onCommit run after the commit, never after a rollback,
 * and outside the retry: whatever a hook throws, the committed transaction is never run again.
 */
export async function transaction<T>(db: Db, fn: (trx: Tx, onCommit: (hook: () => unknown) => void) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const hooks: Array<() => unknown> = [];
    let result: T;
    try {
      result = await db.transaction().execute((trx) => fn(trx, (hook) => hooks.push(hook)));
    } catch (err) {
      if (attempt < 4 && RETRYABLE.has(pgCode(err) ?? '')) continue;
      throw err;
    }
    for (const hook of hooks) await hook();
    return result;
  }
}

export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function pgConstraint(err: unknown): string | undefined {
  const c = (err as { constraint?: unknown } | null)?.constraint;
  return typeof c === 'string' ? c : undefined;
}

/**
 * Runs the pending migrations in one transaction that holds a transaction-level advisory lock,
 * so two processes starting at once migrate one after the other. Kysely's own PostgreSQL lock is
 * session-level and taken outside the migration's transaction: behind PgBouncer in transaction
 * pooling its lock and unlock land on different server connections, and the lock stays held
 * on a pooled connection forever, so every later start waits for it until it times out.
 * Here the migrator is given the transaction (it then takes its own lock inside it too, on the
 * same server connection) and the transaction's lock is released by the commit or the rollback.
 */
export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`.execute(trx);
    const migrator = new Migrator({ db: trx, provider: { getMigrations: async () => migrations } });
    const { error, results } = await migrator.migrateToLatest();
    if (error) throw error instanceof Error ? error : new Error(String(error));
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  });
}

// Any constant of our own; Kysely's is 3853314791062309107.
const MIGRATION_LOCK_ID = sql.lit(7_305_114_209_618_311);

// Connection failures, server shutdown or restart, and pool timeouts: the database is not there
// right now, which is not a bug of ours. (Class 08 is connection exceptions; 57P01..57P03 are
// admin/crash shutdown and "cannot connect now"; 53300 too many connections, 28P01/28000 a login
// refused, 3D000 a database that does not exist: each answered 500 INTERNAL, found from outside.)
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P02', '57P03', '53300', '28P01', '28000', '3D000']);
const UNAVAILABLE_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed/i;

// A statement cancelled by the statement timeout (or an operator's pg_cancel_backend), and a lock
// not granted in time: the database is too busy to finish the call now, which is not a bug of
// ours either. A payment that waited 10 s behind a row lock answered INTERNAL (money.races.test.ts).
const BUSY_CODES = new Set(['57014', '55P03']);

/** Whether an error means the database could not finish the statement in time (a lock wait, the statement timeout). */
export function isDatabaseBusy(err: unknown): boolean {
  return BUSY_CODES.has(pgCode(err) ?? '');
}

/** Whether an error means the database could not be reached, rather than that a query was wrong. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = pgCode(err);
  if (code && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  return err instanceof Error && UNAVAILABLE_MESSAGES.test(err.message);
}
