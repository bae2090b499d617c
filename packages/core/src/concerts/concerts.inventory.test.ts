import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, testEnv } from '../../../../test/harness.ts';
import { loadConfig } from '../config.ts';
import { type Core, createCore } from '../index.ts';
import { findSeatCounts, findShowAvailability } from './concerts.repository.ts';
import { SEAT_COUNT_CAP, seatCountCap } from '../queue/queue.store.ts';

/**
 * The waiting room's read of a concert's seats after every change (findShowAvailability) is one
 * index probe per show, and a count of the AVAILABLE seats bounded by a cap; here both are held to
 * the full count (findSeatCounts) over random seat states.
 */
describe('the line’s read of the seats', () => {
  let db: TestDatabase;
  let core: Core;
  beforeAll(async () => {
    db = await createTestDatabase();
    core = await createCore(loadConfig(testEnv(db.url)));
  });
  afterAll(async () => {
    await core?.close();
    await db?.drop();
  });

  const SHOWS = 3;
  const SEATS = 12;
  const concert = async () => {
    const startsAt = new Date(Date.now() + 86_400_000);
    const c = await core.concerts.create({
      title: 'Inventory',
      venue: '',
      schedules: Array.from({ length: SHOWS }, (_, i) => ({ startsAt: new Date(startsAt.getTime() + i * 60_000), bookingOpensAt: new Date(Date.now() - 1000), seatCount: SEATS })),
    });
    return { concertId: c.concertId, scheduleIds: c.schedules.map((s) => s.scheduleId) };
  };

  // A seat is free, held (lapsing in `ms`, negative: lapsed) or sold. Shows without a free seat
  // (their answer depends on the holds alone) are drawn as often as shows with any seat.
  const held = fc.record({ kind: fc.constant('held' as const), ms: fc.integer({ min: -600_000, max: 600_000 }) });
  const sold = fc.constant({ kind: 'sold' as const });
  const anySeat = fc.oneof(fc.constant({ kind: 'free' as const }), held, sold);
  const show = fc
    .constantFrom([anySeat], [held, sold], [held])
    .chain((kinds) => fc.array(fc.oneof(...kinds), { minLength: SEATS, maxLength: SEATS }));

  it('agrees with the full count on every show: AVAILABLE, all HELD (and the first lapse), sold out', async () => {
    const { concertId, scheduleIds } = await concert();
    const user = (await core.admin.createUser({ name: 'fan', initialBalance: 0 })).userId;
    // A reservation per seat, for its claim to point at (the claim's foreign key wants one).
    const rid = (show: number, seatNumber: number) => `00000000-0000-4000-8000-${String(concertId).padStart(6, '0')}${String(show * 100 + seatNumber).padStart(6, '0')}`;
    for (const [i, scheduleId] of scheduleIds.entries()) {
      for (let n = 1; n <= SEATS; n++) {
        await sql`INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at)
          VALUES (${rid(i, n)}, ${user}, ${scheduleId}, 'HELD', 0, 1, now(), now())`.execute(core.db);
        await sql`INSERT INTO reservation_seats (reservation_id, schedule_id, seat_number, grade, price)
          VALUES (${rid(i, n)}, ${scheduleId}, ${n}, 'R', 0)`.execute(core.db);
      }
    }
    await fc.assert(
      fc.asyncProperty(fc.array(show, { minLength: SHOWS, maxLength: SHOWS }), async (shows) => {
        const now = new Date();
        for (const [i, seats] of shows.entries()) {
          for (const [j, s] of seats.entries()) {
            const set =
              s.kind === 'free'
                ? sql`reservation_id = NULL, held_until = NULL, sold_at = NULL`
                : s.kind === 'held'
                  ? sql`reservation_id = ${rid(i, j + 1)}, held_until = ${new Date(now.getTime() + s.ms)}, sold_at = NULL`
                  : sql`reservation_id = ${rid(i, j + 1)}, held_until = NULL, sold_at = ${now}`;
            await sql`UPDATE seats SET ${set} WHERE schedule_id = ${scheduleIds[i]} AND seat_number = ${j + 1}`.execute(core.db);
          }
        }
        const counts = await findSeatCounts(core.db, concertId, now);
        const probe = await findShowAvailability(core.db, concertId, now);
        expect(probe.map((p) => p.scheduleId)).toEqual(expect.arrayContaining(counts.map((c) => c.scheduleId)));
        expect(probe).toHaveLength(counts.length);
        for (const c of counts) {
          const p = probe.find((x) => x.scheduleId === c.scheduleId)!;
          expect(p.available).toBe(c.available > 0);
          expect(p.nextLapse?.getTime() ?? null).toBe(c.available === 0 && c.held > 0 ? c.nextLapse!.getTime() : null);
        }
        // The AVAILABLE seats of the concert, counted up to the cap (every show here is open for booking).
        const total = counts.reduce((n, c) => n + c.available, 0);
        for (const cap of [1000, 5]) {
          const capped = await findShowAvailability(core.db, concertId, now, cap);
          for (const p of capped) expect(p.freeSeats).toBe(Math.min(total, cap));
          // Holders are counted only under the cap (every hold here is this test's one user's).
          const live = shows.some((seats) => seats.some((x) => x.kind === 'held' && x.ms > 0));
          for (const p of capped) expect(p.holders?.length ?? null).toBe(total < cap ? (live ? 1 : 0) : null);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('reads one seat per show, whatever the number of seats (the plan probes seats_unsold_idx)', async () => {
    const startsAt = new Date(Date.now() + 86_400_000);
    const big = await core.concerts.create({
      title: 'Big',
      venue: '',
      schedules: [0, 1, 2, 3].map((i) => ({ startsAt: new Date(startsAt.getTime() + i), bookingOpensAt: new Date(Date.now() - 1000), seatCount: 1_000 })),
    });
    await sql`ANALYZE seats`.execute(core.db);
    const { rows } = await sql<{ 'QUERY PLAN': unknown }>`EXPLAIN (ANALYZE, FORMAT JSON)
      SELECT sc.id, f.held_until FROM schedules sc
      LEFT JOIN LATERAL (SELECT s.held_until FROM seats s WHERE s.schedule_id = sc.id AND s.sold_at IS NULL ORDER BY s.held_until NULLS FIRST LIMIT 1) f ON true
      WHERE sc.concert_id = ${big.concertId} AND sc.starts_at > now() AND sc.cancelled_at IS NULL`.execute(core.db);
    const plan = JSON.stringify(rows[0]!['QUERY PLAN']);
    expect(plan).toContain('seats_unsold_idx');
    // Every scan of seats in the plan returned at most one row per loop.
    const scans = [...plan.matchAll(/"Relation Name":"seats"[^}]*?"Actual Rows":(\d+)/g)].map((m) => Number(m[1]));
    expect(scans.length).toBeGreaterThan(0);
    for (const rowsPerLoop of scans) expect(rowsPerLoop).toBeLessThanOrEqual(1);
    // 4,000 free seats: past the cap, so counted as the cap (at least that many; it was null, no
    // limit, and a line that raised its maxActive past the cap then admitted more fans than seats).
    expect(await core.concerts.inventory(big.concertId)).toEqual({ available: 4, held: 0, nextLapse: null, nextStart: startsAt.getTime(), seats: SEAT_COUNT_CAP, holders: [] });
  });

  it('a show not yet open for booking has no seat AVAILABLE: its seats come at the opening, so the line neither admits to it nor sells out', async () => {
    const startsAt = new Date(Date.now() + 86_400_000);
    const opensAt = new Date(Date.now() + 5 * 86_400_000 - 3_600_000);
    const c = await core.concerts.create({
      title: 'Later show',
      venue: '',
      schedules: [
        { startsAt, bookingOpensAt: new Date(Date.now() - 1000), seatCount: 2 },
        { startsAt: new Date(startsAt.getTime() + 5 * 86_400_000), bookingOpensAt: opensAt, seatCount: 2 },
      ],
    });
    const open = c.schedules[0]!.scheduleId;
    // The open show has a seat: AVAILABLE; the later one counts as seats to come, from its opening.
    expect(await core.concerts.inventory(c.concertId)).toEqual({ available: 1, held: 1, nextLapse: opensAt.getTime(), nextStart: startsAt.getTime(), seats: 2, holders: [] });
    // The open show sold out: nothing AVAILABLE, but not sold out (the later show's seats are to come).
    const user = (await core.admin.createUser({ name: 'buyer', initialBalance: 0 })).userId;
    // A claim per seat points at a reservation (its foreign key wants one); the probe reads the seats.
    const rid = `00000000-0000-4000-8000-${String(c.concertId).padStart(12, '0')}`;
    await sql`INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at)
      VALUES (${rid}, ${user}, ${open}, 'HELD', 0, 2, now(), now())`.execute(core.db);
    await sql`INSERT INTO reservation_seats (reservation_id, schedule_id, seat_number, grade, price) VALUES (${rid}, ${open}, 1, 'R', 0), (${rid}, ${open}, 2, 'R', 0)`.execute(core.db);
    await sql`UPDATE seats SET reservation_id = ${rid}, sold_at = now() WHERE schedule_id = ${open}`.execute(core.db);
    expect(await core.concerts.inventory(c.concertId)).toEqual({ available: 0, held: 1, nextLapse: opensAt.getTime(), nextStart: startsAt.getTime() + 5 * 86_400_000, seats: 0, holders: [] });
    // Once its booking has opened, its seats are AVAILABLE.
    expect(await core.concerts.inventory(c.concertId, new Date(opensAt.getTime() + 1))).toEqual({
      available: 1,
      held: 0,
      nextLapse: null,
      nextStart: startsAt.getTime() + 5 * 86_400_000,
      seats: 2,
      holders: [],
    });
  });

  it('counts the users holding seats now: one per user whatever their holds, not a lapsed hold, not a paid one', async () => {
    const { concertId, scheduleIds } = await concert();
    const users = [];
    for (let i = 0; i < 4; i++) users.push((await core.admin.createUser({ name: `holder ${i}`, initialBalance: 0 })).userId);
    // user 0 holds two seats on two shows, user 1 one; user 2's hold lapsed; user 3's is paid.
    const claims: Array<[user: number, show: number, seat: number, kind: 'live' | 'lapsed' | 'paid']> = [
      [users[0]!, 0, 1, 'live'],
      [users[0]!, 1, 1, 'live'],
      [users[1]!, 0, 2, 'live'],
      [users[2]!, 0, 3, 'lapsed'],
      [users[3]!, 2, 1, 'paid'],
    ];
    for (const [i, [user, show, seat, kind]] of claims.entries()) {
      const rid = `00000000-0000-4000-9000-${String(concertId).padStart(6, '0')}${String(i).padStart(6, '0')}`;
      const until = kind === 'lapsed' ? sql`now() - interval '1 second'` : sql`now() + interval '5 minutes'`;
      await sql`INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at, paid_at)
        VALUES (${rid}, ${user}, ${scheduleIds[show]}, ${kind === 'paid' ? 'PAID' : 'HELD'}, 0, 1, ${until}, now(), ${kind === 'paid' ? sql`now()` : null})`.execute(core.db);
      await sql`INSERT INTO reservation_seats (reservation_id, schedule_id, seat_number, grade, price) VALUES (${rid}, ${scheduleIds[show]}, ${seat}, 'R', 0)`.execute(core.db);
      await sql`UPDATE seats SET reservation_id = ${rid}, held_until = ${kind === 'paid' ? null : until}, sold_at = ${kind === 'paid' ? sql`now()` : null}
        WHERE schedule_id = ${scheduleIds[show]} AND seat_number = ${seat}`.execute(core.db);
    }
    // 36 seats less three held and one sold (the lapsed hold's seat is AVAILABLE).
    expect(await core.concerts.inventory(concertId)).toMatchObject({ available: SHOWS, seats: SHOWS * SEATS - 4 });
    expect((await core.concerts.inventory(concertId)).holders?.toSorted((a, b) => a - b)).toEqual([users[0], users[1]].toSorted((a, b) => a! - b!));
    // Counted up to the read's cap: past it, the cap (at least that many; the line admits against it
    // until a read with a higher cap). The cap is the line's maxActive, at least 500, at most 10,000.
    expect(await core.concerts.inventory(concertId, undefined, 10)).toMatchObject({ seats: 10 });
    expect([seatCountCap(undefined), seatCountCap(100), seatCountCap(2_000), seatCountCap(1_000_000)]).toEqual([500, 500, 2_000, 10_000]);
    // A line that admits by slots does not ask for the count.
    const uncounted = await core.concerts.inventory(concertId, undefined, 0);
    expect(uncounted).toMatchObject({ available: SHOWS });
    expect(uncounted).not.toHaveProperty('seats');
    expect(uncounted).not.toHaveProperty('holders');
  });

  it('an unsold seat has a hold deadline exactly when it has a claim (the probe reads a NULL deadline as free)', async () => {
    const { scheduleIds } = await concert();
    await expect(sql`UPDATE seats SET held_until = now() WHERE schedule_id = ${scheduleIds[0]} AND seat_number = 1`.execute(core.db)).rejects.toThrow(/seats_claim_state/);
  });
});
