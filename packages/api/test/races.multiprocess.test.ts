import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createTestDatabase, REDIS_URL, type SpawnedApi, spawnApi, startApi, type TestApi, testEnv } from '../../../test/harness.ts';
import {
  connectSql,
  printTimings,
  RACE_ENV,
  raceCharges,
  raceExpiry,
  raceLimits,
  raceOneSeat,
  racePayments,
  type RaceEnv,
  type SqlClient,
  raceSeatWindows,
} from './races.shared.ts';

/**
 * The same races with the requests split between two API OS processes on one database: only
 * the database (and Redis) can keep them honest. Both processes start at once, as replicas do.
 */
describe('races: two API processes on one PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let apis: SpawnedApi[] = [];
  /** For the expiry race, holds of one second: a spawned process and one in this process. */
  let shortSpawned: SpawnedApi | undefined;
  let shortLocal: TestApi | undefined;
  let sql: SqlClient;
  let env: RaceEnv;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Waiting rooms are keyed by concert id: a prefix of its own keeps other suites' concert 1 apart.
    const shared = { ...RACE_ENV, REDIS_URL, REDIS_KEY_PREFIX: `races-${randomBytes(4).toString('hex')}:` };
    const short = { ...shared, HOLD_TTL_SECONDS: '1', DB_POOL_SIZE: '5' };
    const spawned = await Promise.allSettled([spawnApi(testEnv(db.url, shared)), spawnApi(testEnv(db.url, shared)), spawnApi(testEnv(db.url, short))]);
    const started = spawned.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = spawned.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(started.map((a) => a.stop()));
      throw failed.reason;
    }
    apis = started.slice(0, 2);
    shortSpawned = started[2];
    shortLocal = await startApi(testEnv(db.url, short));
    sql = await connectSql(db.url);
    env = { urls: apis.map((a) => a.url), sql, timings: {}, notes: [] };
  });
  afterAll(async () => {
    if (env) printTimings('races.multiprocess.test.ts', env);
    await sql?.end();
    await shortLocal?.close();
    await Promise.all([...apis, ...(shortSpawned ? [shortSpawned] : [])].map((a) => a.stop()));
    await db?.drop();
  });

  it('200 holds of one seat split over two processes: exactly one wins', async () => {
    await raceOneSeat(env, 200);
  });

  it('60 overlapping seat windows over two processes: all or nothing', async () => {
    await raceSeatWindows(env, 60, 20);
  });

  it('20 payments of one reservation over two processes: one payment', async () => {
    await racePayments(env, 20);
  });

  it('charges over two processes: 50 keys all land, one key lands once', async () => {
    await raceCharges(env, 50, 30);
  });

  it('limits and cross-operation races over two processes', async () => {
    await raceLimits(env);
  });

  it('payments racing their hold expiry, payer and challengers on different processes', async () => {
    await raceExpiry({ ...env, urls: [shortSpawned!.url, shortLocal!.url] }, { waves: 2, roundsPerWave: 10, challengers: 2 });
  });
});
