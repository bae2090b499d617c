import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createCore, loadConfig } from '@concert/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, REDIS_URL, type SpawnedApi, spawnApi, testEnv } from '../../../test/harness.ts';
import { type PgBouncer, startPgBouncer } from '../../../test/pgbouncer.ts';
import { connectSql, printTimings, RACE_ENV, raceCharges, raceLimits, raceOneSeat, racePayments, type RaceEnv, raceSeatWindows, type SqlClient } from './races.shared.ts';

/**
 * The races with two API processes whose every connection goes through PgBouncer in transaction
 * pooling (the production shape): a transaction may land on any server connection, so nothing
 * may rely on session state, and the invariants still hold.
 */
describe('races: two API processes through PgBouncer (transaction pooling)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let bouncer: PgBouncer;
  let apis: SpawnedApi[] = [];
  let sql: SqlClient;
  let env: RaceEnv;

  beforeAll(async () => {
    db = await createTestDatabase();
    // As a deployment does: migrate first (the timeout is a database default that server
    // connections pick up when they open), then serve through PgBouncer.
    await (await createCore(loadConfig(testEnv(db.url)))).close();
    // Debian's PgBouncer (1.18) cannot carry named statements from one server connection to the next.
    // Few server connections for many clients, so transactions really do share them.
    bouncer = await startPgBouncer({ poolSize: 6 });
    const shared = { ...RACE_ENV, REDIS_URL, REDIS_KEY_PREFIX: `racesbouncer-${randomBytes(4).toString('hex')}:`, DB_PREPARED_STATEMENTS: 'off' };
    const spawned = await Promise.allSettled([spawnApi(testEnv(bouncer.via(db.url), shared)), spawnApi(testEnv(bouncer.via(db.url), shared))]);
    apis = spawned.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = spawned.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    sql = await connectSql(db.url);
    env = { urls: apis.map((a) => a.url), sql, timings: {}, notes: [] };
  });
  afterAll(async () => {
    if (env) printTimings('races.pgbouncer.test.ts', env);
    await sql?.end();
    await Promise.all(apis.map((a) => a.stop()));
    await bouncer?.stop();
    await db?.drop();
  });

  it('a transaction through PgBouncer carries the 10 s statement timeout and the 1 min idle-in-transaction timeout (database defaults, not session state)', async () => {
    const c = new pg.Client({ connectionString: bouncer.via(db.url) });
    await c.connect();
    try {
      await c.query('BEGIN');
      const { rows } = await c.query<{ statement_timeout: string }>('SHOW statement_timeout');
      // A stalled API process must not hold its row locks for as long as TCP takes to notice it.
      const idle = await c.query<{ idle_in_transaction_session_timeout: string }>('SHOW idle_in_transaction_session_timeout');
      await c.query('COMMIT');
      expect(rows[0]!.statement_timeout).toBe('10s');
      expect(idle.rows[0]!.idle_in_transaction_session_timeout).toBe('1min');
    } finally {
      await c.end();
    }
  });

  it('processes starting at once migrate through PgBouncer one after the other, and leave no lock behind', async () => {
    // A fresh database and a pooler that hands consecutive transactions to different server
    // connections: Kysely's own session-level migration lock was taken on one and released on
    // another, so it stayed held on a pooled connection and every later start timed out on it.
    const fresh = await createTestDatabase();
    const rr = await startPgBouncer({ poolSize: 4, roundRobin: true });
    try {
      const env = loadConfig(testEnv(rr.via(fresh.url), { DB_PREPARED_STATEMENTS: 'off' }));
      for (let round = 0; round < 3; round++) {
        const t0 = performance.now();
        const cores = await Promise.all([createCore(env), createCore(env), createCore(env)]);
        await Promise.all(cores.map((c) => c.close()));
        expect(performance.now() - t0, `round ${round}`).toBeLessThan(9_000);
      }
      const c = new pg.Client({ connectionString: fresh.url });
      await c.connect();
      try {
        const { rows } = await c.query(
          `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = current_database()`,
        );
        expect(rows).toEqual([]);
      } finally {
        await c.end();
      }
    } finally {
      await rr.stop();
      await fresh.drop();
    }
  });

  it('200 holds of one seat over two processes: exactly one wins', async () => {
    await raceOneSeat(env, 200);
  });

  it('60 overlapping seat windows: all or nothing', async () => {
    await raceSeatWindows(env, 60, 20);
  });

  it('20 payments of one reservation: one payment', async () => {
    await racePayments(env, 20);
  });

  it('charges: 50 keys all land, one key lands once', async () => {
    await raceCharges(env, 50, 30);
  });

  it('limits and cross-operation races', async () => {
    await raceLimits(env);
  });
});
