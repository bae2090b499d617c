import { Kysely } from 'kysely';
import { loadConfig } from '../config.ts';
import { migrateToLatest } from './database.ts';
import { createDialect } from './dialect.ts';

/** `pnpm db:migrate`: brings the configured database to the latest schema. */
const config = loadConfig();
const { dialect } = createDialect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
const db = new Kysely<unknown>({ dialect });
try {
  const applied = await migrateToLatest(db);
  console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'The database is up to date.');
} finally {
  await db.destroy();
}
