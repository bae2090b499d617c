import { Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/harness.ts';
import { createDialect } from '../db/dialect.ts';
import { migrateToLatest } from '../db/database.ts';
import type { DB } from '../db/schema.ts';
import { isAppError } from '../errors.ts';
import { UsersService } from './users.service.ts';

const code = (p: Promise<unknown>) => p.then(() => 'OK', (err: unknown) => (isAppError(err) ? err.code : String(err)));

// Both databases the product runs on: the lookup is one statement with an array parameter.
describe.each(['postgres', 'pglite'] as const)('UsersService.assertExists on %s', (kind) => {
  let pgdb: TestDatabase | undefined;
  let db: Kysely<DB>;
  beforeAll(async () => {
    if (kind === 'postgres') pgdb = await createTestDatabase();
    db = new Kysely<DB>({ dialect: createDialect({ databaseUrl: pgdb?.url, dataDir: 'memory://', poolSize: 4 }).dialect });
    await migrateToLatest(db as Kysely<unknown>);
  });
  afterAll(async () => {
    await db?.destroy();
    await pgdb?.drop();
  });

  it('answers each of many users asked for at once, USER_NOT_FOUND for one with no row, and finds it once it has one', async () => {
    const ids = (await db.insertInto('users').values(Array.from({ length: 50 }, (_, i) => ({ name: `fan ${i}` }))).returning('id').execute()).map((r) => r.id);
    const users = new UsersService({ db });
    const phantom = Math.max(...ids) + 7;
    const got = await Promise.all([...ids, phantom, ids[0]!].map((id) => code(users.assertExists(id))));
    expect(got).toEqual([...ids.map(() => 'OK'), 'USER_NOT_FOUND', 'OK']);
    await sql`INSERT INTO users (id, name) OVERRIDING SYSTEM VALUE VALUES (${phantom}, 'late fan')`.execute(db);
    expect(await code(users.assertExists(phantom))).toBe('OK');
  });
});
