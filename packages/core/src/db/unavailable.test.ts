import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../../../test/harness.ts';
import { isDatabaseUnavailable } from './database.ts';

/**
 * A database the API cannot use right now is SERVICE_UNAVAILABLE (503, retry), not a bug of ours:
 * a database dropped under the API, a login refused and too many connections answered 500 INTERNAL.
 */
describe('isDatabaseUnavailable', () => {
  const connect = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (err) {
      return err;
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  it('is true for a database that does not exist and a role that cannot log in, false for a wrong query', async () => {
    const db = await createTestDatabase();
    try {
      const base = new URL(db.url);
      const missing = new URL(db.url);
      missing.pathname = '/no_such_database_for_this_test';
      const err = await connect(missing.toString());
      expect((err as { code?: string }).code).toBe('3D000');
      expect(isDatabaseUnavailable(err)).toBe(true);
      const nobody = new URL(base.toString());
      nobody.username = 'no_such_role_for_this_test';
      const login = await connect(nobody.toString());
      expect(['28000', '28P01']).toContain((login as { code?: string }).code);
      expect(isDatabaseUnavailable(login)).toBe(true);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const wrong = await client.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
      await client.end();
      expect(isDatabaseUnavailable(wrong)).toBe(false);
      expect(isDatabaseUnavailable(Object.assign(new Error('sorry, too many clients already'), { code: '53300' }))).toBe(true);
    } finally {
      await db.drop();
    }
  });
});
