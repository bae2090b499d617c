import { afterAll, beforeAll, describe, it } from 'vitest';
import { createTestDatabase, startApi, type TestApi, testEnv } from '../../../test/harness.ts';
import { connectSql, printTimings, RACE_ENV, raceCharges, raceLimits, raceExpiry, raceOneSeat, racePayments, type RaceEnv, raceSeatWindows, type SqlClient } from './races.shared.ts';

/** Real races through HTTP against one API in this process, on PostgreSQL. */
describe('races: one API process on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let api: TestApi;
  /** A second API on the same database whose holds last one second, for the expiry race. */
  let shortHolds: TestApi;
  let sql: SqlClient;
  let env: RaceEnv;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(testEnv(db.url, RACE_ENV));
    shortHolds = await startApi(testEnv(db.url, { ...RACE_ENV, HOLD_TTL_SECONDS: '1' }));
    sql = await connectSql(db.url);
    env = { urls: [api.url], sql, timings: {}, notes: [] };
  });
  afterAll(async () => {
    if (env) printTimings('races.test.ts', env);
    await sql?.end();
    await shortHolds?.close();
    await api?.close();
    await db?.drop();
  });

  it('200 users holding one seat: exactly one wins, 199 SEAT_UNAVAILABLE', async () => {
    await raceOneSeat(env, 200);
  });

  it('60 overlapping 2-4 seat holds on 20 seats: all or nothing, no seat twice', async () => {
    await raceSeatWindows(env, 60, 20);
  });

  it('20 payments of one reservation with 20 keys: one payment, one debit, the rest ALREADY_PAID', async () => {
    await racePayments(env, 20);
  });

  it('50 charges with 50 keys all land; 30 charges with one key land once', async () => {
    await raceCharges(env, 50, 30);
  });

  it('payments racing their hold expiry against other users re-holding the seats and the sweeper', async () => {
    await raceExpiry(
      { ...env, urls: [shortHolds.url] },
      // The lapsed-hold sweep (a background job, not an API call) runs at each expiry instant too.
      { waves: 2, roundsPerWave: 10, challengers: 2, sweep: () => shortHolds.core.reservations.sweepExpired() },
    );
  });

  it('limits and cross-operation races: seat limit, monthly cap, overdraft, one hold key, pay vs cancel', async () => {
    await raceLimits(env);
  });
});
