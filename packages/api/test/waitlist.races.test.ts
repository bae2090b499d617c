import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { client, createTestDatabase, key, outcome, REDIS_URL, type SpawnedApi, spawnApi, testEnv } from '../../../test/harness.ts';
import { adminAt, admitted, buySeats, expectAuditOk, holdSeats, makeShow } from './aftersale.shared.ts';

/**
 * The waitlist against the transactions it runs beside, with the requests split over two API OS
 * processes on one database. Each race is made to happen every time: a plain row lock taken from
 * here keeps one transaction open at a known statement while the other runs into it, and the
 * test waits for PostgreSQL to show the waits (pg_stat_activity), never for a fixed time.
 */
describe('waitlist races: two API processes on one PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const apis: SpawnedApi[] = [];
  let sql: InstanceType<typeof pg.Client>;
  const url = (i: number) => apis[i % apis.length]!.url;
  const rows = async <T,>(text: string, params: unknown[] = []) => (await sql.query(text, params)).rows as T[];
  /** Backends of this database waiting for a lock. */
  const lockWaits = async () => (await rows<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))[0]!.n;
  /** Runs fn with a transaction of its own that holds the row lock `lock` takes, then commits it. */
  async function whileLocked(lock: [string, unknown[]], fn: () => Promise<void>): Promise<void> {
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(...lock);
      await fn();
      await blocker.query('COMMIT');
    } finally {
      await blocker.end();
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: `waitlist-races-${randomBytes(4).toString('hex')}:`, QUEUE_MAX_ACTIVE: '100000', DB_POOL_SIZE: '6' });
    // One at a time: on a loaded machine two cold starts at once can each miss the start deadline.
    for (let i = 0; i < 2; i++) apis.push(await spawnApi(env));
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await Promise.all(apis.map((a) => a.stop()));
    await db?.drop();
  });

  it('an offer made while its user is mid-hold keeps the 4-seat limit', async () => {
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 5, 3, 1_000_000);
    const [w, x, y] = userIds as [number, number, number];
    await buySeats(url(0), w, concertId, scheduleId, [1, 2]);
    const wApi = await admitted(url(0), w, concertId);
    const xHold = await holdSeats(url(1), x, concertId, scheduleId, [3, 4]);
    const yHold = await holdSeats(url(0), y, concertId, scheduleId, [5]);
    // Nothing AVAILABLE: W, owning 2, waits for 2 more (4 in all, allowed).
    expect((await client(url(0), { userId: w }, { batch: false }).waitlist.join.mutate({ scheduleId, seatCount: 2 })).status).toBe('WAITING');
    // Seat 5 comes back; one seat does not fit W's entry, so it goes back on sale.
    await client(url(0), { userId: y }, { batch: false }).reservations.cancel.mutate({ reservationId: yHold.reservationId });

    let hold: Promise<string> | undefined;
    let cancel: Promise<string> | undefined;
    await whileLocked([`SELECT 1 FROM seats WHERE schedule_id = $1 AND seat_number = 5 FOR UPDATE`, [scheduleId]], async () => {
      // W holds seat 5 (3 seats, allowed): its transaction locks W's row, then waits for the seat.
      hold = outcome(wApi.reservations.hold.mutate({ scheduleId, seatNumbers: [5], idempotencyKey: key() }));
      await vi.waitFor(async () => expect(await lockWaits()).toBe(1), { timeout: 15_000, interval: 50 });
      // X cancels seats 3 and 4 on the other process, and they are offered to W's entry: the
      // offer must wait for W's hold to end before it counts W's seats.
      let settled = false;
      cancel = outcome(client(url(1), { userId: x }, { batch: false }).reservations.cancel.mutate({ reservationId: xHold.reservationId })).finally(() => (settled = true));
      await vi.waitFor(async () => expect(settled || (await lockWaits()) === 2).toBe(true), { timeout: 15_000, interval: 50 });
    });
    expect(await hold).toBe('OK');
    expect(await cancel).toBe('OK');

    const live = (await client(url(1), { userId: w }, { batch: false }).reservations.mine.query({ limit: 20 })).items.filter((r) => r.status === 'PAID' || r.status === 'HELD');
    // Contract: a user holds or owns at most 4 seats of one schedule; on the waitlist too.
    expect(live.flatMap((r) => r.seats.map((s) => s.seatNumber)).sort((a, b) => a - b)).toEqual([1, 2, 5]);
    // The offer did not fit W (3 + 2 > 4): the entry still waits and seats 3 and 4 are on sale.
    expect((await client(url(0), { userId: w }, { batch: false }).waitlist.mine.query({})).items[0]).toMatchObject({ status: 'WAITING' });
    expect((await client(url(1)).concerts.schedule.query({ scheduleId })).availableSeats).toBe(2);
    await expectAuditOk(url(0));
  });

  it('a join racing the show’s cancellation is refused, and leaves no entry waiting on it', async () => {
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 2, 2, 500_000);
    const [h, w] = userIds as [number, number];
    const held = await holdSeats(url(0), h, concertId, scheduleId, [1, 2]);
    let cancel: Promise<unknown> | undefined;
    let join: Promise<string> | undefined;
    await whileLocked([`SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE`, [held.reservationId]], async () => {
      // The cancellation locks the show's row and marks it cancelled, then waits for the hold.
      cancel = adminAt(url(1)).admin.schedules.cancel.mutate({ scheduleId });
      cancel.catch(() => {}); // awaited below, after the join has started
      await vi.waitFor(async () => expect(await lockWaits()).toBe(1), { timeout: 15_000, interval: 50 });
      // The join, on the other process, read the show before the cancellation committed.
      join = outcome(client(url(0), { userId: w }, { batch: false }).waitlist.join.mutate({ scheduleId, seatCount: 1 }));
      await vi.waitFor(async () => expect(await lockWaits()).toBe(2), { timeout: 15_000, interval: 50 });
    });
    expect(await cancel).toEqual({ scheduleId, refunded: 0, released: 1 });
    expect(await join).toBe('SCHEDULE_CANCELLED');
    expect(await rows(`SELECT id FROM waitlist_entries WHERE schedule_id = $1 AND status IN ('WAITING', 'OFFERED')`, [scheduleId])).toEqual([]);
    expect((await client(url(1), { userId: w }, { batch: false }).waitlist.mine.query({})).items).toEqual([]);
    await expectAuditOk(url(1));
  });

  it('two holds cancelled at once, on two processes, while the first offer waits on a lock: both seats offered, none back on sale', async () => {
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 2, 4, 500_000);
    const [h1, h2, w1, w2] = userIds as [number, number, number, number];
    const first = await holdSeats(url(0), h1, concertId, scheduleId, [1]);
    const second = await holdSeats(url(1), h2, concertId, scheduleId, [2]);
    for (const w of [w1, w2]) expect((await client(url(0), { userId: w }, { batch: false }).waitlist.join.mutate({ scheduleId, seatCount: 1 })).status).toBe('WAITING');
    let one: Promise<string> | undefined;
    let two: Promise<string> | undefined;
    // The first cancel's offer to W1 waits for W1's row (as it would behind a hold of W1's) with
    // the show's entries in hand; the second cancel, on the other process, frees seat 2 meanwhile.
    await whileLocked([`SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, [w1]], async () => {
      one = outcome(client(url(0), { userId: h1 }, { batch: false }).reservations.cancel.mutate({ reservationId: first.reservationId }));
      await vi.waitFor(async () => expect(await lockWaits()).toBe(1), { timeout: 15_000, interval: 50 });
      let settled = false;
      two = outcome(client(url(1), { userId: h2 }, { batch: false }).reservations.cancel.mutate({ reservationId: second.reservationId })).finally(() => (settled = true));
      await vi.waitFor(async () => expect(settled || (await lockWaits()) === 2).toBe(true), { timeout: 15_000, interval: 50 });
    });
    expect([await one, await two]).toEqual(['OK', 'OK']);
    // Contract: seats that come back go to the waitlist before anyone else. Without the show's
    // lock the second cancel skipped the entries the first had locked, saw nobody waiting, and
    // put seat 2 back on sale while W2 waited.
    const entries = await Promise.all([w1, w2].map(async (w) => (await client(url(1), { userId: w }, { batch: false }).waitlist.mine.query({})).items[0]!));
    expect(entries.map((e) => [e.status, e.offer?.seatNumbers])).toEqual([
      ['OFFERED', [1]],
      ['OFFERED', [2]],
    ]);
    expect((await client(url(0)).concerts.schedule.query({ scheduleId })).availableSeats).toBe(0);
    await expectAuditOk(url(0));
  });
});
