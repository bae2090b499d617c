import { FakeClock } from '@concert/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, everyPage, expectAppError, seedSale, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV } from './booking.shared.ts';
import { type RestAnswer, rest } from './rest.shared.ts';

/**
 * Paged lists (contract: `{ limit?: 1..100 = 20, cursor? }` → `{ items, nextCursor }`): more
 * rows than the old silent cut-offs (reservations.mine 500, admin.holds.list 1,000) come back
 * exactly once across the pages, in order, while rows are written between page fetches; the
 * limit is bounded and a cursor the server did not give out is INVALID_INPUT, never a 500.
 */

const RESERVATIONS = 1_200;
const HOLDS = 1_100;
const CONCERTS = 250;

interface Paged<T> {
  items: T[];
  nextCursor: string | null;
}

/** Pages through a list, calling `between` after each page but the last; returns every page. */
async function pages<T>(fetchPage: (cursor?: string) => Promise<Paged<T>>, between: (page: number) => Promise<void> = async () => {}): Promise<T[][]> {
  const out: T[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    out.push(page.items);
    if (page.nextCursor === null) return out;
    expect(page.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
    await between(out.length);
    cursor = page.nextCursor;
    if (out.length > 10_000) throw new Error('the pages never end');
  }
}

const counts = (ids: string[]) => {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
};

/** A cursor edited after decoding, then encoded again the way the server does. */
const reencode = (cursor: string, edit: (v: unknown[]) => unknown) =>
  Buffer.from(JSON.stringify(edit(JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[]))).toString('base64url');

describe('paged lists', () => {
  const clock = new FakeClock();
  const suite = useApi(BOOKING_ENV, { clock });
  let sql: InstanceType<typeof pg.Client>;
  let sale: Awaited<ReturnType<typeof seedSale>>;
  let other: Awaited<ReturnType<typeof seedSale>>;
  let fanId: number;
  let neighbourId: number;

  beforeAll(async () => {
    sql = new pg.Client({ connectionString: suite.db.url });
    await sql.connect();
    sale = await seedSale(suite.api.url, { users: 2, seatCount: 10 });
    other = await seedSale(suite.api.url, { users: 0, seatCount: 10 });
    [fanId, neighbourId] = sale.userIds as [number, number];
  });
  afterAll(async () => {
    await sql?.end();
  });

  /**
   * Reservations written behind the API's back, `n` at once. created_at steps back one
   * millisecond every four rows, and within a millisecond two rows share each microsecond, so
   * the order needs both the microseconds and the id tiebreaker.
   */
  async function insertReservations(userId: number, scheduleId: number, n: number, opts: { newest: Date; status: 'EXPIRED' | 'CANCELLED' | 'HELD' | 'mixed'; holdExpiresAt?: (i: string) => string }) {
    const status = opts.status === 'mixed' ? `CASE WHEN i % 2 = 0 THEN 'EXPIRED' ELSE 'CANCELLED' END` : `'${opts.status}'`;
    const createdAt = `$3::timestamptz - (i / 4) * interval '1 millisecond' - (i % 4 / 2) * interval '1 microsecond'`;
    const holdExpiresAt = opts.holdExpiresAt ? opts.holdExpiresAt('i') : createdAt;
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at, cancelled_at)
       SELECT gen_random_uuid(), $1, $2, s, 100000, 1, ${holdExpiresAt}, ${createdAt}, CASE WHEN s = 'CANCELLED' THEN ${createdAt} END
       FROM (SELECT i, ${status} AS s FROM generate_series(0, $4 - 1) AS i) g
       RETURNING id`,
      [userId, scheduleId, opts.newest.toISOString(), n],
    );
    return rows.map((r) => r.id);
  }

  it(`reservations.mine returns all ${RESERVATIONS} of a user's reservations once each, newest first, while more are made`, { timeout: 180_000 }, async () => {
    const now = clock.now().getTime();
    const mine = await insertReservations(fanId, sale.scheduleId, RESERVATIONS, { newest: new Date(now - 1000), status: 'mixed' });
    const theirs = await insertReservations(neighbourId, sale.scheduleId, 40, { newest: new Date(now - 500), status: 'EXPIRED' });
    const fan = client(suite.api.url, { userId: fanId });

    // The default page is 20, with a cursor to the next.
    const first = await fan.reservations.mine.query({});
    expect(first.items).toHaveLength(20);
    expect(first.nextCursor).toEqual(expect.any(String));

    // Between pages, newer reservations (ahead of the cursor) and older ones (behind it) are written.
    const newer: string[] = [];
    const older: string[] = [];
    const seen = await pages(
      // An odd page size, so that pages end between two rows of the same instant.
      (cursor) => fan.reservations.mine.query({ limit: 99, ...(cursor ? { cursor } : {}) }),
      async (page) => {
        newer.push(...(await insertReservations(fanId, sale.scheduleId, 3, { newest: new Date(now - 10 + page), status: 'EXPIRED' })));
        older.push(...(await insertReservations(fanId, sale.scheduleId, 2, { newest: new Date(now - 3_600_000 - page), status: 'EXPIRED' })));
      },
    );
    expect(seen.length).toBeGreaterThanOrEqual(Math.ceil(RESERVATIONS / 99));
    for (const page of seen.slice(0, -1)) expect(page).toHaveLength(99);
    const all = seen.flat();
    const ids = counts(all.map((r) => r.reservationId));
    // Every reservation that was there at the start, exactly once: no gap, no duplicate.
    for (const id of mine) expect(ids.get(id), id).toBe(1);
    expect([...ids.values()].every((n) => n === 1)).toBe(true);
    // Rows written behind the cursor come on a later page, once; rows ahead of it do not.
    for (const id of older) expect(ids.get(id)).toBe(1);
    for (const id of newer) expect(ids.has(id)).toBe(false);
    for (const id of theirs) expect(ids.has(id)).toBe(false);
    expect(all.length).toBe(RESERVATIONS + older.length);
    // Newest first.
    const times = all.map((r) => r.createdAt.getTime());
    expect(times).toEqual([...times].sort((a, b) => b - a));

    // A status filter pages the same way: half the bulk rows are CANCELLED.
    const cancelled = await everyPage((p) => fan.reservations.mine.query({ status: 'CANCELLED', ...p }));
    expect(cancelled.map((r) => r.status).every((s) => s === 'CANCELLED')).toBe(true);
    expect(new Set(cancelled.map((r) => r.reservationId)).size).toBe(RESERVATIONS / 2);

    // REST pages the same list with ?limit&cursor.
    const viaRest: string[] = [];
    let cursor: string | null = null;
    do {
      const res: RestAnswer<Paged<{ reservationId: string }>> = await rest(suite.api.url, 'GET', `/v1/reservations?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { user: fanId });
      expect(res.status).toBe(200);
      viaRest.push(...res.body.items.map((r) => r.reservationId));
      cursor = res.body.nextCursor;
    } while (cursor);
    const fresh = await everyPage((p) => fan.reservations.mine.query(p));
    expect(viaRest).toEqual(fresh.map((r) => r.reservationId));
    expect(viaRest).toHaveLength(RESERVATIONS + older.length + newer.length);
  });

  it(`admin.holds.list returns all ${HOLDS} live holds once each, soonest to lapse first, while holds are made and released`, { timeout: 180_000 }, async () => {
    const ops = admin(suite.api.url);
    const now = clock.now().getTime();
    // Live holds lapsing from 100 s to about 375 s from now; two share each millisecond.
    const expiring = (base: number) => (i: string) => `to_timestamp(${base / 1000}) + (${i} / 2) * interval '250 milliseconds'`;
    const live = await insertReservations(fanId, sale.scheduleId, HOLDS, { newest: new Date(now), status: 'HELD', holdExpiresAt: expiring(now + 100_000) });
    const elsewhere = await insertReservations(neighbourId, other.scheduleId, 30, { newest: new Date(now), status: 'HELD', holdExpiresAt: expiring(now + 100_000) });
    // A lapsed hold (HELD, past its expiry) is not listed.
    const lapsed = await insertReservations(neighbourId, sale.scheduleId, 5, { newest: new Date(now), status: 'HELD', holdExpiresAt: () => `to_timestamp(${(now - 1000) / 1000})` });

    const made: string[] = [];
    let released: string | undefined;
    const seen = await pages(
      (cursor) => ops.admin.holds.list.query({ concertId: sale.concertId, limit: 99, ...(cursor ? { cursor } : {}) }),
      async (page) => {
        // New holds lapse after every hold already listed, so they come on a later page.
        made.push(...(await insertReservations(fanId, sale.scheduleId, 2, { newest: new Date(now), status: 'HELD', holdExpiresAt: () => `to_timestamp(${(now + 600_000 + page) / 1000})` })));
        if (page === 3) {
          // An operator releases the hold that lapses last (not listed yet): it is gone, nothing else moves.
          released = (await sql.query<{ id: string }>('SELECT id FROM reservations WHERE id = ANY($1) ORDER BY hold_expires_at DESC, id DESC LIMIT 1', [live])).rows[0]!.id;
          await ops.admin.holds.release.mutate({ reservationId: released });
        }
      },
    );
    const all = seen.flat();
    const ids = counts(all.map((h) => h.reservationId));
    expect([...ids.values()].every((n) => n === 1)).toBe(true);
    for (const id of live) if (id !== released) expect(ids.get(id), id).toBe(1);
    expect(ids.has(released!)).toBe(false);
    for (const id of made) expect(ids.get(id)).toBe(1);
    for (const id of [...elsewhere, ...lapsed]) expect(ids.has(id)).toBe(false);
    expect(all.length).toBe(HOLDS - 1 + made.length);
    const times = all.map((h) => h.holdExpiresAt.getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));

    // Unfiltered and by schedule, the same holds page the same way.
    const everything = await everyPage((p) => ops.admin.holds.list.query(p));
    expect(new Set(everything.map((h) => h.reservationId)).size).toBe(everything.length);
    expect(everything.length).toBe(HOLDS - 1 + made.length + elsewhere.length);
    const bySchedule = await everyPage((p) => ops.admin.holds.list.query({ scheduleId: other.scheduleId, ...p }));
    expect(bySchedule.map((h) => h.reservationId).sort()).toEqual([...elsewhere].sort());

    // Put the schedule back as it was for the next test: no hold of this test is left live.
    await sql.query(`UPDATE reservations SET status = 'EXPIRED' WHERE status = 'HELD' AND schedule_id IN ($1, $2)`, [sale.scheduleId, other.scheduleId]);
  });

  it(`concerts.list returns all of ${CONCERTS}+ concerts once each, in the order they were added, while more are added`, { timeout: 180_000 }, async () => {
    await sql.query(`INSERT INTO concerts (title, venue) SELECT 'Bulk ' || i, 'Hall' FROM generate_series(1, $1) AS i`, [CONCERTS]);
    const before = (await sql.query<{ id: string }>('SELECT id FROM concerts ORDER BY id')).rows.map((r) => Number(r.id));
    expect(before.length).toBeGreaterThanOrEqual(CONCERTS);
    const anon = client(suite.api.url);
    const added: number[] = [];
    const seen = await pages(
      (cursor) => anon.concerts.list.query({ limit: 30, ...(cursor ? { cursor } : {}) }),
      async () => {
        const created = await admin(suite.api.url).admin.concerts.create.mutate({ title: `Added while paging ${added.length}`, schedules: [{ startsAt: new Date(clock.now().getTime() + 86_400_000) }] });
        added.push(created.concertId);
      },
    );
    const ids = seen.flat().map((c) => c.concertId);
    expect(ids).toEqual([...before, ...added]);
    // The default page is 20.
    const first = await anon.concerts.list.query();
    expect(first.items.map((c) => c.concertId)).toEqual(before.slice(0, 20));
    // REST agrees.
    const page = await rest(suite.api.url, 'GET', `/v1/concerts?limit=5&cursor=${encodeURIComponent(first.nextCursor!)}`);
    expect(page.status).toBe(200);
    expect(page.body.items.map((c: { concertId: number }) => c.concertId)).toEqual(before.slice(20, 25));
  });

  // @trpc/tanstack-react-query's infiniteQueryOptions (the README's React example) asks for the
  // first page with `cursor: null` (its initialPageParam is `initialCursor ?? null`) and adds
  // `direction`: every paged procedure must answer that as the first page, not INVALID_INPUT.
  it("every paged list answers TanStack Query's first page (cursor: null, direction: 'forward') as the first page", async () => {
    const first = { limit: 1, cursor: null, direction: 'forward' } as const;
    const fan = client(suite.api.url, { userId: fanId });
    const ops = admin(suite.api.url);
    const hook = await ops.admin.webhooks.create.mutate({ url: 'http://127.0.0.1:9/paging', events: ['payment.completed'] });
    const answers = {
      'concerts.list': [await client(suite.api.url).concerts.list.query(first), await client(suite.api.url).concerts.list.query({ limit: 1 })],
      'reservations.mine': [await fan.reservations.mine.query(first), await fan.reservations.mine.query({ limit: 1 })],
      'waitlist.mine': [await fan.waitlist.mine.query(first), await fan.waitlist.mine.query({ limit: 1 })],
      'balance.history': [await fan.balance.history.query(first), await fan.balance.history.query({ limit: 1 })],
      'admin.concerts.list': [await ops.admin.concerts.list.query(first), await ops.admin.concerts.list.query({ limit: 1 })],
      'admin.holds.list': [await ops.admin.holds.list.query(first), await ops.admin.holds.list.query({ limit: 1 })],
      'admin.webhooks.deliveries': [
        await ops.admin.webhooks.deliveries.query({ webhookId: hook.webhookId, ...first }),
        await ops.admin.webhooks.deliveries.query({ webhookId: hook.webhookId, limit: 1 }),
      ],
    };
    for (const [name, [withNull, without]] of Object.entries(answers)) expect(withNull, name).toEqual(without);
  });

  describe('bad paging input is INVALID_INPUT (400), never a 500', () => {
    const lists = {
      'concerts.list': (input: object) => client(suite.api.url).concerts.list.query(input as never),
      'reservations.mine': (input: object) => client(suite.api.url, { userId: fanId }).reservations.mine.query(input as never),
      'admin.holds.list': (input: object) => admin(suite.api.url).admin.holds.list.query(input as never),
    };
    type Name = keyof typeof lists;
    /** A genuine nextCursor of each list, to tamper with. */
    const realCursor = async (name: Name) => (await lists[name]({ limit: 1 }) as Paged<unknown>).nextCursor!;

    beforeAll(async () => {
      // Two of each, so each list has a second page.
      const c = client(suite.api.url);
      if ((await c.concerts.list.query({ limit: 1 })).nextCursor === null) throw new Error('expected concerts');
      await insertReservations(fanId, sale.scheduleId, 2, { newest: new Date(clock.now().getTime() - 1), status: 'EXPIRED' });
      await insertReservations(fanId, sale.scheduleId, 2, { newest: new Date(clock.now().getTime()), status: 'HELD', holdExpiresAt: () => `to_timestamp(${(clock.now().getTime() + 60_000) / 1000})` });
    });

    it.each(Object.keys(lists))('%s: limit must be an integer from 1 to 100', async (name) => {
      const list = lists[name as Name];
      for (const limit of [0, -1, 101, 1.5, '10', null]) {
        const err = await expectAppError(list({ limit }), 'INVALID_INPUT');
        expect(err.data?.httpStatus).toBe(400);
        expect(err.data?.issues?.[0]?.path).toEqual(['limit']);
      }
      expect(((await list({ limit: 1 })) as Paged<unknown>).items).toHaveLength(1);
      expect(((await list({ limit: 100 })) as Paged<unknown>).items.length).toBeLessThanOrEqual(100);
    });

    it.each(Object.keys(lists))('%s: a cursor it did not give out is refused with INVALID_INPUT', async (name) => {
      const list = lists[name as Name];
      const real = await realCursor(name as Name);
      const foreign = await realCursor(name === 'concerts.list' ? 'reservations.mine' : 'concerts.list');
      const tampered = [
        'not a cursor!',
        '',
        'x'.repeat(201),
        real.slice(0, -4),
        `${real}AAAA`,
        Buffer.from('{"json":true}').toString('base64url'),
        Buffer.from('\u0000\u0001garbage').toString('base64url'),
        foreign,
        reencode(real, (v) => v.slice(0, 1)),
        reencode(real, (v) => [...v, 'extra']),
        reencode(real, (v) => v.map((x, i) => (i === 1 ? (typeof x === 'number' ? -x : '2026-13-45T25:61:00.000000Z') : x))),
        reencode(real, (v) => v.map((x, i) => (i === 1 ? (typeof x === 'number' ? 1e300 : 'yesterday') : x))),
        reencode(real, (v) => [...v.slice(0, -1), "'; DROP TABLE reservations; --"]),
      ];
      for (const cursor of tampered) {
        const err = await expectAppError(list({ cursor }), 'INVALID_INPUT');
        expect(err.data?.httpStatus, cursor).toBe(400);
        expect(`${err.message} ${JSON.stringify(err.data?.issues ?? [])}`).toMatch(/cursor/);
      }
      // The genuine one still works.
      expect(((await list({ cursor: real })) as Paged<unknown>).items.length).toBeGreaterThan(0);
    });

    it('REST answers a bad limit or cursor as a problem with appCode INVALID_INPUT', async () => {
      for (const path of ['/v1/concerts', '/v1/reservations']) {
        for (const q of ['limit=0', 'limit=101', 'limit=ten', 'cursor=%E2%9C%93', `cursor=${'A'.repeat(40)}`, 'cursor=']) {
          const res = await rest(suite.api.url, 'GET', `${path}?${q}`, { user: fanId });
          expect({ q, path, status: res.status, appCode: res.body.appCode }).toEqual({ q, path, status: 400, appCode: 'INVALID_INPUT' });
          expect(res.type).toMatch(/application\/problem\+json/);
        }
      }
    });
  });
});
