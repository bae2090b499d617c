import { Kysely } from 'kysely';
import { loadConfig } from '../config.ts';
import { migrateToLatest } from './database.ts';
import { createDialect } from './dialect.ts';

/** `pnpm db:migrate`: brings the configured database to the latest schema. */
async function migrate(): Promise<string> {
  const config = loadConfig();
  const { dialect } = createDialect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
  const db = new Kysely<unknown>({ dialect });
  try {
    const applied = await migrateToLatest(db);
    return applied.length ? `Applied: ${applied.join(', ')}` : 'The database is up to date.';
  } finally {
    await db.destroy();
  }
}

// A refusal (a bad setting, a DATA_DIR in use by a running server, a database not there) is one
// line and exit 1, as `pnpm start` says it, not an uncaught exception's stack.
await migrate().then(
  (said) => console.log(said),
  (err: unknown) => {
    console.error(`db:migrate: could not migrate: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
