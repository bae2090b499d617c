import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { type DialectAdapter, type Dialect, PostgresAdapter, PostgresDialect } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';

// int8 (ids, money) and numeric (sums) arrive as strings; every value we keep fits in a double.
const INT8 = 20;
const NUMERIC = 1700;
const toNumber = (value: string) => Number(value);

export interface DialectHandle {
  dialect: Dialect;
  kind: 'postgres' | 'pglite';
  /** Pool usage, for metrics; undefined on PGlite. */
  pool?: InstanceType<typeof pg.Pool>;
}

export function createDialect(opts: { databaseUrl?: string | undefined; dataDir: string; poolSize: number }): DialectHandle {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      // No startup options or session state: PgBouncer in transaction pooling would refuse or lose
      // them. The 10 s statement timeout is the database's default (migration 20261201T140000).
      types: {
        getTypeParser: ((oid: number, format: 'text') =>
          oid === INT8 || oid === NUMERIC ? toNumber : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its server (a restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    // A checked-out client whose connection drops emits 'error' too (besides failing its query);
    // the pool listens only while a client is idle, so without this the process would crash.
    pool.on('connect', (client) => client.on('error', () => {}));
    return { dialect: new PoolerSafePostgresDialect({ pool }), kind: 'postgres', pool };
  }
  const dir = opts.dataDir === 'memory://' ? undefined : opts.dataDir;
  if (dir) mkdirSync(dir, { recursive: true });
  const pglite = new PGlite(dir ? `file://${dir}` : 'memory://', { parsers: { [INT8]: toNumber, [NUMERIC]: toNumber } });
  return { dialect: new PGliteDialect(pglite), kind: 'pglite' };
}

/**
 * Kysely's PostgreSQL migration lock is a session-level advisory lock, which a transaction
 * pooler (PgBouncer) leaks on a pooled server connection. migrateToLatest takes a
 * transaction-level lock instead, in the migration's own transaction; the adapter takes none.
 */
class TransactionLockedMigrationsAdapter extends PostgresAdapter {
  override async acquireMigrationLock(): Promise<void> {}
  override async releaseMigrationLock(): Promise<void> {}
}

class PoolerSafePostgresDialect extends PostgresDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionLockedMigrationsAdapter();
  }
}
