import pg from 'pg';
import { afterAll, beforeAll, expect, vi } from 'vitest';
import { type Core, createCore, loadConfig } from '@concert/core';
import { createTestDatabase, type TestDatabase, testEnv } from './harness.ts';

/**
 * A core on a fresh database for a suite that races it by hand: `sql` takes locks in
 * transactions of its own, `watcher` (another session: statistics views read inside a
 * transaction keep their first snapshot) sees who waits on them.
 */
export function useCoreWithSessions(): { db: TestDatabase; core: Core; sql: InstanceType<typeof pg.Client>; watcher: InstanceType<typeof pg.Client> } {
  const suite = {} as ReturnType<typeof useCoreWithSessions>;
  beforeAll(async () => {
    suite.db = await createTestDatabase();
    suite.core = await createCore(loadConfig(testEnv(suite.db.url)));
    suite.sql = new pg.Client({ connectionString: suite.db.url });
    await suite.sql.connect();
    suite.watcher = new pg.Client({ connectionString: suite.db.url });
    await suite.watcher.connect();
  });
  afterAll(async () => {
    await suite.sql?.end();
    await suite.watcher?.end();
    await suite.core?.close();
    await suite.db?.drop();
  });
  return suite;
}

/** Waits until exactly one session of the database waits on a lock (its statement matching `like`, when given). */
export async function oneWaitsOnALock(watcher: InstanceType<typeof pg.Client>, like = '%'): Promise<void> {
  await vi.waitFor(
    async () => {
      const { rows } = await watcher.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE $1 AND datname = current_database()`, [like]);
      expect(rows.length).toBe(1);
    },
    { timeout: 10_000, interval: 20 },
  );
}

/** A show of 4 seats on sale since a second ago, starting tomorrow, and a fan with `balance` won admitted to its line. */
export async function admittedFan(core: Core, balance: number) {
  const startsAt = new Date(Date.now() + 86_400_000);
  const c = await core.concerts.create({ title: 'Race', venue: '', schedules: [{ startsAt, bookingOpensAt: new Date(Date.now() - 1000), seatCount: 4 }] });
  const scheduleId = c.schedules[0]!.scheduleId;
  const user = (await core.admin.createUser({ name: 'fan', initialBalance: balance })).userId;
  const ticket = await core.queue.enter(user, c.concertId);
  return { scheduleId, user, gate: core.queue.gate(user, ticket.token) };
}
