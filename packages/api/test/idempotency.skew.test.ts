/**
 * The database's clock judges an idempotency key's lease, not the process's. Two API processes
 * whose own clocks are 40 s apart (CLOCK_OFFSET_MS -20 s and +20 s; the lease is 15 s) on one
 * PostgreSQL: a call running on the slow one, its key's lease still far from over by the
 * database's time, is not taken over by a retry on the fast one. Before the change each process
 * set and judged `locked_until` with its own clock, so the fast process saw the lease as lapsed
 * at once, took the key over, and the first caller (still running) was told it was superseded.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, key, outcome, REDIS_URL, spawnApi, type SpawnedApi, testEnv } from '../../../test/harness.ts';

const SKEW_MS = 20_000;

describe('idempotency leases across API processes with clocks 40 s apart', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let sql: InstanceType<typeof pg.Client>;
  let slow: SpawnedApi; // clock 20 s behind
  let fast: SpawnedApi; // clock 20 s ahead

  const keyRow = async (userId: number, k: string) =>
    (await sql.query<{ state: string; owner: string }>('SELECT state, owner FROM idempotency_keys WHERE user_id = $1 AND key = $2', [userId, k])).rows[0];
  const until = async (what: string, cond: () => Promise<boolean>, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const prefix = `idemskew-${randomBytes(4).toString('hex')}:`;
    const env = (offset: number) => testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix, RATE_LIMITS: 'off', CLOCK_OFFSET_MS: String(offset) });
    slow = await spawnApi(env(-SKEW_MS));
    fast = await spawnApi(env(SKEW_MS));
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  }, 240_000);

  afterAll(async () => {
    await Promise.all([slow?.stop(), fast?.stop()]);
    await sql?.end();
    await db?.drop();
  });

  it('a retry on the fast process does not take over a call still running on the slow one', async () => {
    const u = (await admin(slow.url).admin.users.create.mutate({ name: 'skew', initialBalance: 0 })).userId;
    const k = key('skew');
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      // The user's row locked from outside: the first charge claims its key on the slow process, then waits.
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [u]);
      const first = outcome(client(slow.url, { userId: u }).balance.charge.mutate({ amount: 700, idempotencyKey: k }));
      await until('the first call to claim its key', async () => (await keyRow(u, k))?.state === 'IN_PROGRESS');
      const owner = (await keyRow(u, k))!.owner;
      // The retry on the fast process, well inside the lease by the database's time.
      const retry = outcome(client(fast.url, { userId: u }).balance.charge.mutate({ amount: 700, idempotencyKey: k }));
      // It answers at once, or (the bug) takes the key over and waits on the same lock.
      let settled = false;
      void retry.then(() => (settled = true));
      await until('the retry to answer or take the key over', async () => settled || (await keyRow(u, k))?.owner !== owner);
      await blocker.query('COMMIT');
      expect({ first: await first, retry: await retry }).toEqual({ first: 'OK', retry: 'IDEMPOTENCY_IN_PROGRESS' });
    } finally {
      await blocker.end();
    }
    expect((await sql.query('SELECT balance::int FROM users WHERE id = $1', [u])).rows).toEqual([{ balance: 700 }]);
    // Replays on both processes answer the first call's result.
    const replays = await Promise.all([slow, fast].map((api) => client(api.url, { userId: u }).balance.charge.mutate({ amount: 700, idempotencyKey: k })));
    expect(replays.map((r) => r.balance)).toEqual([700, 700]);
  }, 120_000);
});
