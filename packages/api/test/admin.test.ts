import { FakeClock } from '@concert/core';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, admin, client, everyPage, expectAppError, key, seedSale, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const AUDIT_CHECKS = [
  'no seat sold twice',
  'every balance equals its ledger',
  'no negative balance',
  'every PAID reservation has one payment of its total',
  'no seat held by a reservation that is not HELD',
  'every REFUNDED reservation has one refund of its amount and no live ticket',
  'every event of a committed change is in the outbox',
];

describe('admin (operators)', () => {
  const clock = new FakeClock();
  const suite = useApi(BOOKING_ENV, { clock });
  const book = booking(() => suite.api.url);
  let ttlMs: number;

  beforeAll(async () => {
    ttlMs = suite.api.core.config.holdTtlSeconds * 1000;
  });

  const ops = () => admin(suite.api.url);
  const fan = (userId: number) => client(suite.api.url, { userId });
  const hold = async (userId: number, scheduleId: number, seatNumbers: number[]) =>
    (await book.forSchedule(userId, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers, idempotencyKey: key() });
  const future = (days: number) => new Date(clock.now().getTime() + days * DAY);

  describe('the admin key', () => {
    const callers = {
      none: () => client(suite.api.url),
      wrong: () => client(suite.api.url, { adminKey: 'not-the-admin-key-at-all' }),
      'a prefix of the right one': () => client(suite.api.url, { adminKey: ADMIN_KEY.slice(0, -1) }),
      'a user identity': () => client(suite.api.url, { userId: 1 }),
    };
    it.each(Object.keys(callers))('every admin procedure refuses %s with ADMIN_KEY_INVALID', async (who) => {
      const c = callers[who as keyof typeof callers]();
      const calls: Array<() => Promise<unknown>> = [
        () => c.admin.users.create.mutate({ name: 'x' }),
        () => c.admin.concerts.create.mutate({ title: 'x', schedules: [{ startsAt: future(1) }] }),
        () => c.admin.seedDemo.mutate({}),
        () => c.admin.holds.list.query({}),
        () => c.admin.holds.release.mutate({ reservationId: '00000000-0000-4000-8000-000000000000' }),
        () => c.admin.audit.query({}),
      ];
      for (const call of calls) {
        const err = await expectAppError(call(), 'ADMIN_KEY_INVALID');
        expect(err.data?.httpStatus).toBe(401);
        expect(err.data?.code).toBe('UNAUTHORIZED');
      }
      // Nothing was created by the refused calls.
      expect((await ops().concerts.list.query({})).items).toEqual([]);
    });
  });

  it('users.create makes a user with an opening balance recorded in the ledger', async () => {
    const u = await ops().admin.users.create.mutate({ name: '  Kim Minji  ', initialBalance: 250_000 });
    expect(u).toEqual({ userId: expect.any(Number), name: 'Kim Minji', balance: 250_000 });
    expect(u.userId).toBeGreaterThan(0);
    const h = await fan(u.userId).balance.history.query({});
    expect(h.entries.map((e) => [e.kind, e.amount, e.balanceAfter])).toEqual([['CHARGE', 250_000, 250_000]]);
    const zero = await ops().admin.users.create.mutate({ name: 'Zero' });
    expect(zero).toEqual({ userId: expect.any(Number), name: 'Zero', balance: 0 });
    expect(zero.userId).not.toBe(u.userId);
    expect((await fan(zero.userId).balance.history.query({})).entries).toEqual([]);
  });

  it('users.create refuses a bad name or balance (INVALID_INPUT)', async () => {
    const bad = [
      { name: '' },
      { name: '   ' },
      { name: 'x'.repeat(101) },
      { name: 'ok', initialBalance: -1 },
      { name: 'ok', initialBalance: 1.5 },
      { name: 'ok', initialBalance: 1_000_000_001 },
      { name: 'nul \u0000 byte' },
    ];
    for (const input of bad) {
      const err = await expectAppError(ops().admin.users.create.mutate(input), 'INVALID_INPUT');
      expect(err.data?.httpStatus).toBe(400);
    }
  });

  it('webhooks.create says what is wrong with a url: too long is not “not http(s)”', async () => {
    const create = (url: string) => ops().admin.webhooks.create.mutate({ url, events: ['reservation.held'] });
    const long = await expectAppError(create(`http://127.0.0.1:9/${'a'.repeat(2000)}`), 'INVALID_INPUT');
    expect(long.data?.issues?.map((i) => i.message)).toEqual(['must be at most 2000 characters']);
    const ftp = await expectAppError(create('ftp://127.0.0.1/h'), 'INVALID_INPUT');
    expect(ftp.data?.issues?.map((i) => i.message)).toEqual(['must be an http:// or https:// URL']);
  });

  it('concerts.create makes schedules of R seats at 100,000 by default, bookable at once', async () => {
    const startsAt = future(3);
    const c = await ops().admin.concerts.create.mutate({ title: 'Defaults', schedules: [{ startsAt }, { startsAt: future(4), seatCount: 1 }] });
    expect(c).toEqual({
      concertId: expect.any(Number),
      schedules: [
        { scheduleId: expect.any(Number), startsAt, seatCount: 50 },
        { scheduleId: expect.any(Number), startsAt: future(4), seatCount: 1 },
      ],
    });
    const detail = await fan(1).concerts.get.query({ concertId: c.concertId });
    expect(detail.venue).toBe('');
    expect(detail.schedules[0]!.bookingOpensAt.getTime()).toBeLessThanOrEqual(clock.now().getTime());
    const { userId } = await ops().admin.users.create.mutate({ name: 'booker' });
    const seats = (await (await book.forSchedule(userId, c.schedules[0]!.scheduleId)).concerts.seats.query({ scheduleId: c.schedules[0]!.scheduleId })).seats;
    expect(seats).toHaveLength(50);
    expect(seats.every((s) => s.grade === 'R' && s.price === 100_000 && s.status === 'AVAILABLE')).toBe(true);
    expect((await hold(userId, c.schedules[1]!.scheduleId, [1])).totalPrice).toBe(100_000);
  });

  // concerts.create takes a date-time as a superjson Date or an ISO 8601 string with its offset (a
  // client without superjson sends strings); queue.configure's opensAt took only the Date, and the
  // same string was "expected date" (found from outside, 2026-12-03).
  it('queue.configure takes opensAt as an ISO string with its offset, as concerts.create takes startsAt', async () => {
    const c = await ops().admin.concerts.create.mutate({ title: 'Strings', schedules: [{ startsAt: future(5).toISOString() as unknown as Date }] });
    const opensAt = new Date(clock.now().getTime() + HOUR);
    const configured = await ops().admin.queue.configure.mutate({ concertId: c.concertId, opensAt: opensAt.toISOString().replace('Z', '+00:00') as unknown as Date });
    expect([configured.state, configured.opensAt?.getTime()]).toEqual(['PRE_QUEUE', opensAt.getTime()]);
    const err = await expectAppError(ops().admin.queue.configure.mutate({ concertId: c.concertId, opensAt: '2027-01-01T10:00:00' as unknown as Date }), 'INVALID_INPUT');
    expect(JSON.stringify(err.data)).toContain('opensAt');
    const cleared = await ops().admin.queue.configure.mutate({ concertId: c.concertId, opensAt: null });
    expect(cleared.opensAt).toBeNull();
  });

  it('concerts.create prices seats by tier and honours bookingOpensAt', async () => {
    const opens = future(1);
    const c = await ops().admin.concerts.create.mutate({
      title: 'Tiered',
      venue: 'Arena',
      schedules: [
        {
          startsAt: future(10),
          bookingOpensAt: opens,
          seatCount: 5,
          tiers: [
            { grade: 'S', price: 70_000, fromSeat: 4, toSeat: 5 },
            { grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 3 },
          ],
        },
        // On sale now: the line admits nobody to a concert with no seat on sale.
        { startsAt: future(11), seatCount: 1 },
      ],
    });
    const scheduleId = c.schedules[0]!.scheduleId;
    expect((await fan(1).concerts.schedule.query({ scheduleId })).bookingOpensAt).toEqual(opens);
    const { userId } = await ops().admin.users.create.mutate({ name: 'early bird' });
    const seats = (await (await book.forSchedule(userId, scheduleId)).concerts.seats.query({ scheduleId })).seats;
    expect(seats.map((s) => `${s.seatNumber}${s.grade}${s.price}`)).toEqual(['1VIP150000', '2VIP150000', '3VIP150000', '4S70000', '5S70000']);
    await expectAppError(hold(userId, scheduleId, [1]), 'BOOKING_NOT_OPEN');
  });

  it('concerts.create refuses tiers that do not cover every seat exactly once, and other bad shapes (INVALID_INPUT)', async () => {
    const spec = (extra: object) => ({ title: 'Bad', schedules: [{ startsAt: future(5), seatCount: 10, ...extra }] });
    const tier = (fromSeat: number, toSeat: number) => ({ grade: 'R', price: 1000, fromSeat, toSeat });
    const bad = [
      spec({ tiers: [tier(1, 5)] }), // seats 6..10 in no tier
      spec({ tiers: [tier(1, 6), tier(6, 10)] }), // seat 6 twice
      spec({ tiers: [tier(1, 11)] }), // beyond seatCount
      spec({ tiers: [tier(5, 1), tier(6, 10)] }), // backwards
      spec({ tiers: [] }),
      spec({ tiers: [{ ...tier(1, 10), price: -1 }] }),
      spec({ tiers: [{ ...tier(1, 10), grade: '' }] }),
      spec({ seatCount: 0 }),
      spec({ seatCount: 1001 }),
      spec({ bookingOpensAt: future(6) }), // opens after the show starts
      { title: '', schedules: [{ startsAt: future(5) }] },
      { title: 'x'.repeat(201), schedules: [{ startsAt: future(5) }] },
      { title: 'No venue', venue: 'v'.repeat(201), schedules: [{ startsAt: future(5) }] },
      { title: 'No schedules', schedules: [] },
      { title: 'Too early', schedules: [{ startsAt: future(5), bookingOpensAt: new Date(-8.64e15) }] },
      { title: 'Too late', schedules: [{ startsAt: new Date(8.64e15) }] },
      { title: 'NUL \u0000 in the title', schedules: [{ startsAt: future(5) }] },
      { title: 'NUL in the venue', venue: 'a\u0000b', schedules: [{ startsAt: future(5) }] },
      spec({ tiers: [{ ...tier(1, 10), grade: 'R\u0000' }] }),
    ];
    const before = (await everyPage((p) => ops().concerts.list.query(p))).length;
    for (const input of bad) {
      const err = await expectAppError(ops().admin.concerts.create.mutate(input), 'INVALID_INPUT');
      expect(err.data?.httpStatus).toBe(400);
    }
    // All or nothing: no half-made concert is left behind.
    expect(await everyPage((p) => ops().concerts.list.query(p))).toHaveLength(before);
  });

  it('concerts.create refuses a show that has already started or starts now', async () => {
    for (const startsAt of [future(-1), clock.now()]) {
      const err = await expectAppError(ops().admin.concerts.create.mutate({ title: 'Last night', schedules: [{ startsAt: future(3) }, { startsAt, seatCount: 2 }] }), 'INVALID_INPUT');
      expect(err.message).toContain('schedules[1].startsAt must be in the future');
    }
    expect((await everyPage((p) => ops().concerts.list.query(p))).filter((c) => c.title === 'Last night')).toEqual([]);
  });

  it('concerts.create names an operator’s tier mistake once, correctly: overlaps, repeated grades', async () => {
    const issuesOf = async (tiers: object[]) => {
      const err = await expectAppError(ops().admin.concerts.create.mutate({ title: 'Tiers', schedules: [{ startsAt: future(5), seatCount: 20, tiers }] } as never), 'INVALID_INPUT');
      return ((err.data as { issues?: Array<{ path: unknown[]; message: string }> }).issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    // Seats 14 and 15 in both tiers: one error, and no false "seat 16 is in no tier".
    expect(await issuesOf([{ grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 15 }, { grade: 'R', price: 100_000, fromSeat: 14, toSeat: 20 }])).toEqual([
      'schedules.0.tiers.1: seat 14 is already in tiers[0]',
    ]);
    // One grade, two prices: the seat map's legend could not say which.
    expect(await issuesOf([{ grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 10 }, { grade: 'vip', price: 90_000, fromSeat: 11, toSeat: 20 }])).toEqual([
      'schedules.0.tiers.1.grade: grade vip is already tiers[0]: each grade once, with one price',
    ]);
    expect(await issuesOf([{ grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 10 }, { grade: 'R', price: 100_000, fromSeat: 11, toSeat: 25 }])).toEqual([
      'schedules.0.tiers.1.toSeat: seat 25 is beyond seatCount 20',
    ]);
    expect(await issuesOf([{ grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 10 }, { grade: 'R', price: 100_000, fromSeat: 12, toSeat: 20 }])).toEqual([
      'schedules.0.tiers: seat 11 is in no tier',
    ]);
  });

  it('seedDemo creates bookable demo data once, however often it is called', async () => {
    const results = await Promise.all([ops().admin.seedDemo.mutate({}), ops().admin.seedDemo.mutate({}), ops().admin.seedDemo.mutate()]);
    const first = results[0];
    expect(results).toEqual([first, first, first]);
    expect(first.concertIds.length).toBeGreaterThan(0);
    expect(first.userIds.length).toBeGreaterThan(0);
    expect(await ops().admin.seedDemo.mutate({})).toEqual(first);

    const all = await everyPage((p) => ops().concerts.list.query(p));
    expect(all.filter((c) => first.concertIds.includes(c.concertId))).toHaveLength(first.concertIds.length);
    const now = clock.now().getTime();
    for (const concertId of first.concertIds) {
      const c = await fan(1).concerts.get.query({ concertId });
      expect(c.schedules.length).toBeGreaterThan(0);
      for (const s of c.schedules) {
        expect(s.bookingOpensAt.getTime()).toBeLessThanOrEqual(now);
        expect(s.startsAt.getTime()).toBeGreaterThan(now);
        expect(s.availableSeats).toBe(s.totalSeats);
      }
    }
    for (const userId of first.userIds) expect((await fan(userId).balance.get.query({})).balance).toBeGreaterThan(0);

    // A demo user books a demo seat, start to finish.
    const u = first.userIds[0]!;
    const scheduleId = (await fan(u).concerts.schedules.query({ concertId: first.concertIds[0]! })).schedules[0]!.scheduleId;
    const seat = (await (await book.forSchedule(u, scheduleId)).concerts.seats.query({ scheduleId })).seats.find((s) => s.status === 'AVAILABLE')!;
    const r = await hold(u, scheduleId, [seat.seatNumber]);
    const before = (await fan(u).balance.get.query({})).balance;
    expect(before).toBeGreaterThanOrEqual(r.totalPrice);
    const p = await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    expect(p.balanceAfter).toBe(before - seat.price);
  });

  it('holds.list shows live holds only, filtered by concert or schedule', async () => {
    const sale = await seedSale(suite.api.url, { users: 2, balance: 1_000_000, seatCount: 20 });
    const other = await seedSale(suite.api.url, { users: 0, seatCount: 5 });
    const [u1, u2] = sale.userIds as [number, number];
    const live = await hold(u1, sale.scheduleId, [3, 1]);
    const elsewhere = await hold(u2, other.scheduleId, [2]);
    const paid = await hold(u2, sale.scheduleId, [5]);
    await (await book.forReservation(u2, paid.reservationId)).payments.pay.mutate({ reservationId: paid.reservationId, idempotencyKey: key() });
    const cancelled = await hold(u2, sale.scheduleId, [6]);
    await fan(u2).reservations.cancel.mutate({ reservationId: cancelled.reservationId });

    const bySchedule = (await ops().admin.holds.list.query({ scheduleId: sale.scheduleId })).items;
    expect(bySchedule).toEqual([
      { reservationId: live.reservationId, userId: u1, scheduleId: sale.scheduleId, seatNumbers: [1, 3], totalPrice: 200_000, holdExpiresAt: live.holdExpiresAt, source: 'QUEUE' },
    ]);
    expect((await ops().admin.holds.list.query({ concertId: sale.concertId })).items).toEqual(bySchedule);
    expect((await ops().admin.holds.list.query({ concertId: other.concertId })).items.map((h) => h.reservationId)).toEqual([elsewhere.reservationId]);
    expect((await ops().admin.holds.list.query({ concertId: sale.concertId, scheduleId: other.scheduleId })).items).toEqual([]);
    const everything = (await ops().admin.holds.list.query({})).items.map((h) => h.reservationId);
    expect(everything).toEqual(expect.arrayContaining([live.reservationId, elsewhere.reservationId]));
    expect(everything).not.toContain(paid.reservationId);
    expect(everything).not.toContain(cancelled.reservationId);
    expect((await ops().admin.holds.list.query()).items).toHaveLength(everything.length);
    // A filter naming nothing is NOT_FOUND (it read as an empty list: an operator's typo looked like
    // "no holds", an outside review); a real show or concert with no hold is an empty page.
    await expectAppError(ops().admin.holds.list.query({ concertId: 987_654 }), 'CONCERT_NOT_FOUND');
    await expectAppError(ops().admin.holds.list.query({ scheduleId: 987_654 }), 'SCHEDULE_NOT_FOUND');
    await expectAppError(ops().admin.holds.list.query({ concertId: sale.concertId, scheduleId: 987_654 }), 'SCHEDULE_NOT_FOUND');

    // A lapsed hold leaves the list at once.
    clock.advance(ttlMs);
    expect((await ops().admin.holds.list.query({ scheduleId: sale.scheduleId })).items).toEqual([]);
  });

  it('holds.release cancels a hold and frees its seats at once', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 4 });
    const [u1, u2] = userIds as [number, number];
    const r = await hold(u1, scheduleId, [1, 2]);
    const released = await ops().admin.holds.release.mutate({ reservationId: r.reservationId });
    expect(released).toEqual({ ...r, status: 'CANCELLED' });
    expect((await fan(u1).reservations.get.query({ reservationId: r.reservationId })).status).toBe('CANCELLED');
    expect((await ops().admin.holds.list.query({ scheduleId })).items).toEqual([]);
    expect((await hold(u2, scheduleId, [1, 2])).status).toBe('HELD');
    // Releasing again answers the cancelled reservation.
    expect(await ops().admin.holds.release.mutate({ reservationId: r.reservationId })).toEqual(released);
  });

  it('holds.release answers RESERVATION_NOT_FOUND, ALREADY_PAID and HOLD_EXPIRED', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 4 });
    const u = userIds[0]!;
    const err = await expectAppError(ops().admin.holds.release.mutate({ reservationId: '00000000-0000-4000-8000-000000000000' }), 'RESERVATION_NOT_FOUND');
    expect(err.data?.httpStatus).toBe(404);
    const paid = await hold(u, scheduleId, [1]);
    await (await book.forReservation(u, paid.reservationId)).payments.pay.mutate({ reservationId: paid.reservationId, idempotencyKey: key() });
    await expectAppError(ops().admin.holds.release.mutate({ reservationId: paid.reservationId }), 'ALREADY_PAID');
    expect((await (await book.forSchedule(u, scheduleId)).concerts.seats.query({ scheduleId })).seats[0]!.status).toBe('SOLD');
    const lapsed = await hold(u, scheduleId, [2]);
    clock.advance(ttlMs);
    await expectAppError(ops().admin.holds.release.mutate({ reservationId: lapsed.reservationId }), 'HOLD_EXPIRED');
    expect((await fan(u).reservations.get.query({ reservationId: lapsed.reservationId })).status).toBe('EXPIRED');
  });

  it('audit reports each invariant, and notices when one is broken', async () => {
    const clean = await ops().admin.audit.query({});
    expect(clean.ok).toBe(true);
    expect(clean.checks.map((c) => c.name)).toEqual(AUDIT_CHECKS);
    for (const c of clean.checks) {
      expect(c.ok).toBe(true);
      expect(c.detail.length).toBeGreaterThan(0);
    }
    expect(await ops().admin.audit.query()).toEqual(clean);

    // Break the ledger behind the code's back, then put it right.
    const { userId } = await ops().admin.users.create.mutate({ name: 'tampered', initialBalance: 1000 });
    const sqlc = new pg.Client({ connectionString: suite.db.url });
    await sqlc.connect();
    try {
      await sqlc.query('UPDATE users SET balance = balance + 1 WHERE id = $1', [userId]);
      const broken = await ops().admin.audit.query({});
      expect(broken.ok).toBe(false);
      expect(broken.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['every balance equals its ledger']);
      await sqlc.query('UPDATE users SET balance = balance - 1 WHERE id = $1', [userId]);
    } finally {
      await sqlc.end();
    }
    expect((await ops().admin.audit.query({})).ok).toBe(true);
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await ops().admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
    expect(audit.ok).toBe(true);
  });
});
