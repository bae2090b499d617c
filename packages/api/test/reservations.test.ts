import { FakeClock } from '@concert/core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { admin, client, expectAppError, key, outcome, seedSale, tally, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('reservations (seat holds)', () => {
  const clock = new FakeClock();
  const suite = useApi(BOOKING_ENV, { clock });
  const book = booking(() => suite.api.url);
  let ttlMs: number;

  beforeAll(async () => {
    ttlMs = suite.api.core.config.holdTtlSeconds * 1000;
  });

  const fan = (userId: number) => client(suite.api.url, { userId });
  const hold = async (userId: number, scheduleId: number, seatNumbers: number[]) =>
    (await book.forSchedule(userId, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers, idempotencyKey: key() });
  const statuses = async (userId: number, scheduleId: number) =>
    (await (await book.forSchedule(userId, scheduleId)).concerts.seats.query({ scheduleId })).seats.map((s) => s.status);

  /** A concert whose one schedule opens and starts relative to the fake clock. */
  async function showAt(opensInMs: number, startsInMs: number, seatCount = 10) {
    const now = clock.now().getTime();
    const c = await admin(suite.api.url).admin.concerts.create.mutate({
      title: `Timed ${key()}`,
      schedules: [{ startsAt: new Date(now + startsInMs), bookingOpensAt: new Date(now + opensInMs), seatCount }],
    });
    return c.schedules[0]!.scheduleId;
  }

  it('hold returns the Reservation, seats sorted, priced, held for HOLD_TTL_SECONDS', async () => {
    const a = admin(suite.api.url);
    const c = await a.admin.concerts.create.mutate({
      title: 'Hold shape',
      venue: 'Hall',
      schedules: [
        {
          startsAt: new Date(clock.now().getTime() + 7 * DAY),
          bookingOpensAt: new Date(clock.now().getTime() - HOUR),
          seatCount: 10,
          tiers: [
            { grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 5 },
            { grade: 'A', price: 60_000, fromSeat: 6, toSeat: 10 },
          ],
        },
      ],
    });
    const scheduleId = c.schedules[0]!.scheduleId;
    const { userId } = await a.admin.users.create.mutate({ name: 'shape', initialBalance: 0 });
    const r = await (await book.forSchedule(userId, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [7, 2], idempotencyKey: key() });
    expect(r.reservationId).toMatch(UUID);
    expect(r).toEqual({
      reservationId: r.reservationId,
      concertId: c.concertId,
      concertTitle: 'Hold shape',
      scheduleId,
      startsAt: c.schedules[0]!.startsAt,
      seats: [
        { seatNumber: 2, grade: 'VIP', price: 150_000 },
        { seatNumber: 7, grade: 'A', price: 60_000 },
      ],
      totalPrice: 210_000,
      status: 'HELD',
      source: 'QUEUE',
      holdExpiresAt: new Date(clock.now().getTime() + ttlMs),
      createdAt: clock.now(),
      paidAt: null,
      refundedAt: null,
    });
    // A hold needs no money: paying is a separate step.
    expect((await fan(userId).balance.get.query({})).balance).toBe(0);
    expect(await fan(userId).reservations.get.query({ reservationId: r.reservationId })).toEqual(r);
  });

  it('takes all requested seats or none (SEAT_UNAVAILABLE)', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 10 });
    const [u1, u2] = userIds as [number, number];
    await hold(u1, scheduleId, [2]);
    const err = await expectAppError(hold(u2, scheduleId, [1, 2, 3]), 'SEAT_UNAVAILABLE');
    expect(err.data?.httpStatus).toBe(409);
    expect(await statuses(u2, scheduleId)).toEqual(['AVAILABLE', 'HELD', ...Array(8).fill('AVAILABLE')]);
    expect((await fan(u2).reservations.mine.query({})).items).toEqual([]);
    // Holding your own held seat again is no exception.
    await expectAppError(hold(u1, scheduleId, [2]), 'SEAT_UNAVAILABLE');
    // Seats 1 and 3 were not kept by the failed attempt.
    expect((await hold(u2, scheduleId, [1, 3])).status).toBe('HELD');
  });

  it('a sold seat cannot be held', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 5 });
    const r = await hold(userIds[0]!, scheduleId, [5]);
    await (await book.forReservation(userIds[0]!, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    await expectAppError(hold(userIds[1]!, scheduleId, [5]), 'SEAT_UNAVAILABLE');
    // Not even after its hold time has passed.
    clock.advance(ttlMs + 1000);
    await expectAppError(hold(userIds[1]!, scheduleId, [4, 5]), 'SEAT_UNAVAILABLE');
  });

  it('sells a seat to exactly one of many racing users', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 12, seatCount: 4 });
    const results = await Promise.all(userIds.map((u) => outcome(hold(u, scheduleId, [3, 4]))));
    expect(tally(results)).toEqual({ OK: 1, SEAT_UNAVAILABLE: 11 });
    const holds = (await admin(suite.api.url).admin.holds.list.query({ scheduleId })).items;
    expect(holds).toHaveLength(1);
    expect(holds[0]!.seatNumbers).toEqual([3, 4]);
  });

  it('limits a user to 4 seats per schedule, counting holds and purchases (TICKET_LIMIT_EXCEEDED)', async () => {
    const { concertId, scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 20 });
    const u = userIds[0]!;
    const bought = await hold(u, scheduleId, [1, 2]);
    await (await book.forReservation(u, bought.reservationId)).payments.pay.mutate({ reservationId: bought.reservationId, idempotencyKey: key() });
    await hold(u, scheduleId, [3]);
    const err = await expectAppError(hold(u, scheduleId, [4, 5]), 'TICKET_LIMIT_EXCEEDED');
    expect(err.data?.httpStatus).toBe(403);
    expect(err.data?.code).toBe('FORBIDDEN');
    // The fourth seat is fine; a fifth is not.
    const fourth = await hold(u, scheduleId, [4]);
    await expectAppError(hold(u, scheduleId, [5]), 'TICKET_LIMIT_EXCEEDED');
    // A cancelled hold gives its seats back to the allowance.
    await fan(u).reservations.cancel.mutate({ reservationId: fourth.reservationId });
    const again = await hold(u, scheduleId, [6]);
    await expectAppError(hold(u, scheduleId, [7]), 'TICKET_LIMIT_EXCEEDED');
    // So does a lapsed one (seats 3 and 6 lapse; seats 1 and 2 stay bought).
    clock.advance(ttlMs);
    expect((await fan(u).reservations.get.query({ reservationId: again.reservationId })).status).toBe('EXPIRED');
    expect((await hold(u, scheduleId, [7, 8])).seats).toHaveLength(2);
    await expectAppError(hold(u, scheduleId, [9]), 'TICKET_LIMIT_EXCEEDED');
    // The limit is per schedule: another schedule of the same concert has its own four.
    const other = await admin(suite.api.url).admin.concerts.create.mutate({
      title: 'Other',
      schedules: [{ startsAt: new Date(clock.now().getTime() + 5 * DAY), seatCount: 10 }],
    });
    expect(other.concertId).not.toBe(concertId);
    expect((await hold(u, other.schedules[0]!.scheduleId, [1, 2, 3, 4])).seats).toHaveLength(4);
  });

  it('the ticket limit holds under racing holds by one user', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 20 });
    const u = userIds[0]!;
    const results = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((n) => outcome(hold(u, scheduleId, [n]))));
    expect(tally(results)).toEqual({ OK: 4, TICKET_LIMIT_EXCEEDED: 4 });
    expect((await fan(u).reservations.mine.query({ status: 'HELD' })).items).toHaveLength(4);
  });

  it('holding opens at bookingOpensAt (BOOKING_NOT_OPEN before)', async () => {
    const { userIds } = await seedSale(suite.api.url, { users: 1 });
    // A second show on sale now: the line admits nobody to a concert with no seat on sale.
    const now = clock.now().getTime();
    const c = await admin(suite.api.url).admin.concerts.create.mutate({
      title: `Timed ${key()}`,
      schedules: [
        { startsAt: new Date(now + 3 * DAY), bookingOpensAt: new Date(now + HOUR), seatCount: 10 },
        { startsAt: new Date(now + 4 * DAY), bookingOpensAt: new Date(now - HOUR), seatCount: 10 },
      ],
    });
    const scheduleId = c.schedules[0]!.scheduleId;
    const err = await expectAppError(hold(userIds[0]!, scheduleId, [1]), 'BOOKING_NOT_OPEN');
    expect(err.data?.httpStatus).toBe(412);
    expect(err.data?.code).toBe('PRECONDITION_FAILED');
    clock.advance(HOUR - 1);
    await expectAppError(hold(userIds[0]!, scheduleId, [1]), 'BOOKING_NOT_OPEN');
    clock.advance(1);
    expect((await hold(userIds[0]!, scheduleId, [1])).status).toBe('HELD');
  });

  it('holding closes at startsAt (BOOKING_CLOSED from then on)', async () => {
    const { userIds } = await seedSale(suite.api.url, { users: 1 });
    const scheduleId = await showAt(-HOUR, HOUR);
    clock.advance(HOUR - 1);
    expect((await hold(userIds[0]!, scheduleId, [1])).status).toBe('HELD');
    const anon = client(suite.api.url);
    expect((await anon.concerts.schedule.query({ scheduleId })).availableSeats).toBe(9);
    clock.advance(1);
    const err = await expectAppError(hold(userIds[0]!, scheduleId, [2]), 'BOOKING_CLOSED');
    expect(err.data?.httpStatus).toBe(412);
    // The catalog agrees: nothing of a started show can be bought, so none of its seats is
    // available, and the default listing leaves it out as it leaves out a sold-out show (it said
    // 9 available, and a frontend offered to book them).
    const started = await anon.concerts.schedule.query({ scheduleId });
    expect(started.availableSeats).toBe(0);
    const concertId = started.concertId;
    expect((await anon.concerts.schedules.query({ concertId })).schedules).toEqual([]);
    expect((await anon.concerts.schedules.query({ concertId, includeSoldOut: true })).schedules).toEqual([started]);
    expect((await anon.concerts.get.query({ concertId })).schedules).toEqual([started]);
  });

  it('answers SEAT_NOT_FOUND for a seat beyond the schedule and SCHEDULE_NOT_FOUND for no schedule', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 10 });
    const err = await expectAppError(hold(userIds[0]!, scheduleId, [10, 11]), 'SEAT_NOT_FOUND');
    expect(err.data?.httpStatus).toBe(404);
    // Nothing was held by the failed call.
    expect(await statuses(userIds[0]!, scheduleId)).not.toContain('HELD');
    await expectAppError(hold(userIds[0]!, 987_654, [1]), 'SCHEDULE_NOT_FOUND');
  });

  it('needs an identity, and a user that exists', async () => {
    const { scheduleId } = await seedSale(suite.api.url, { users: 0 });
    await expectAppError(client(suite.api.url).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() }), 'IDENTITY_REQUIRED');
    await expectAppError(hold(987_654, scheduleId, [1]), 'USER_NOT_FOUND');
    expect(await statuses(1, scheduleId)).not.toContain('HELD');
  });

  it('an unpaid hold reads EXPIRED at its expiry and its seats are free, without a sweep', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 3 });
    const [u1, u2] = userIds as [number, number];
    const r = await hold(u1, scheduleId, [1, 2]);
    clock.advance(ttlMs - 1);
    expect((await fan(u1).reservations.get.query({ reservationId: r.reservationId })).status).toBe('HELD');
    await expectAppError(hold(u2, scheduleId, [1]), 'SEAT_UNAVAILABLE');
    clock.advance(1);
    expect((await fan(u1).reservations.get.query({ reservationId: r.reservationId })).status).toBe('EXPIRED');
    expect(await statuses(u2, scheduleId)).toEqual(['AVAILABLE', 'AVAILABLE', 'AVAILABLE']);
    expect((await admin(suite.api.url).admin.holds.list.query({ scheduleId })).items).toEqual([]);
    // Someone else may take the seats now; the first reservation stays EXPIRED.
    const r2 = await hold(u2, scheduleId, [1, 2]);
    expect(r2.status).toBe('HELD');
    expect((await fan(u1).reservations.get.query({ reservationId: r.reservationId })).status).toBe('EXPIRED');
    // The sweep (the background one or this call) writes down what reads already said, and touches nothing live.
    // This call skips (SKIP LOCKED) a row the background sweep holds at that moment: the row is
    // written down by whichever sweep has it, so wait for that.
    await vi.waitFor(async () => {
      await suite.api.core.reservations.sweepExpired();
      const row = await suite.api.core.db.selectFrom('reservations').select('status').where('id', '=', r.reservationId).executeTakeFirstOrThrow();
      expect(row.status).toBe('EXPIRED');
    }, { timeout: 10_000, interval: 50 });
    expect((await fan(u1).reservations.get.query({ reservationId: r.reservationId })).status).toBe('EXPIRED');
    expect((await fan(u2).reservations.get.query({ reservationId: r2.reservationId })).status).toBe('HELD');
    expect(await statuses(u2, scheduleId)).toEqual(['HELD', 'HELD', 'AVAILABLE']);
  });

  it('get shows only your own reservations (RESERVATION_NOT_FOUND otherwise)', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2 });
    const r = await hold(userIds[0]!, scheduleId, [1]);
    const err = await expectAppError(fan(userIds[1]!).reservations.get.query({ reservationId: r.reservationId }), 'RESERVATION_NOT_FOUND');
    expect(err.data?.httpStatus).toBe(404);
    // Exactly as for an id that does not exist.
    const missing = await expectAppError(
      fan(userIds[1]!).reservations.get.query({ reservationId: '00000000-0000-4000-8000-000000000000' }),
      'RESERVATION_NOT_FOUND',
    );
    expect(missing.message).toBe(err.message);
    await expectAppError(client(suite.api.url).reservations.get.query({ reservationId: r.reservationId }), 'IDENTITY_REQUIRED');
  });

  it('mine lists your reservations, newest first, filtered by status', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 20 });
    const [u, other] = userIds as [number, number];
    await hold(other, scheduleId, [20]);
    const expiring = await hold(u, scheduleId, [1]);
    clock.advance(ttlMs);
    clock.advance(1000);
    const paid = await hold(u, scheduleId, [2]);
    await (await book.forReservation(u, paid.reservationId)).payments.pay.mutate({ reservationId: paid.reservationId, idempotencyKey: key() });
    clock.advance(1000);
    const cancelled = await hold(u, scheduleId, [3]);
    await fan(u).reservations.cancel.mutate({ reservationId: cancelled.reservationId });
    clock.advance(1000);
    const held = await hold(u, scheduleId, [4]);

    const all = (await fan(u).reservations.mine.query({})).items;
    expect(all.map((r) => [r.reservationId, r.status])).toEqual([
      [held.reservationId, 'HELD'],
      [cancelled.reservationId, 'CANCELLED'],
      [paid.reservationId, 'PAID'],
      [expiring.reservationId, 'EXPIRED'],
    ]);
    expect((await fan(u).reservations.mine.query()).items).toEqual(all);
    for (const [status, id] of [
      ['HELD', held.reservationId],
      ['CANCELLED', cancelled.reservationId],
      ['PAID', paid.reservationId],
      ['EXPIRED', expiring.reservationId],
    ] as const) {
      expect((await fan(u).reservations.mine.query({ status })).items.map((r) => r.reservationId)).toEqual([id]);
    }
    const p = all.find((r) => r.status === 'PAID')!;
    expect(p.paidAt).toBeInstanceOf(Date);
    expect(all.filter((r) => r.status !== 'PAID').every((r) => r.paidAt === null)).toBe(true);
    // A user with none gets an empty list.
    const { userId: nobody } = await admin(suite.api.url).admin.users.create.mutate({ name: 'nobody' });
    expect((await fan(nobody).reservations.mine.query({})).items).toEqual([]);
  });

  it('cancel frees the seats at once and returns the CANCELLED reservation', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 3 });
    const [u1, u2] = userIds as [number, number];
    const r = await hold(u1, scheduleId, [1, 2]);
    const c = await fan(u1).reservations.cancel.mutate({ reservationId: r.reservationId });
    expect(c).toEqual({ ...r, status: 'CANCELLED' });
    expect(await statuses(u2, scheduleId)).toEqual(['AVAILABLE', 'AVAILABLE', 'AVAILABLE']);
    // Cancelling again is harmless and answers the same.
    expect(await fan(u1).reservations.cancel.mutate({ reservationId: r.reservationId })).toEqual(c);
    expect((await hold(u2, scheduleId, [1, 2])).status).toBe('HELD');
    // Paying a cancelled reservation is refused.
    await expectAppError((await book.forReservation(u1, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'RESERVATION_CANCELLED');
  });

  it("cancel answers RESERVATION_NOT_FOUND for someone else's, ALREADY_PAID for a paid one and HOLD_EXPIRED for a lapsed one", async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 10 });
    const [u1, u2] = userIds as [number, number];
    const r = await hold(u1, scheduleId, [1]);
    await expectAppError(fan(u2).reservations.cancel.mutate({ reservationId: r.reservationId }), 'RESERVATION_NOT_FOUND');
    expect((await fan(u1).reservations.get.query({ reservationId: r.reservationId })).status).toBe('HELD');
    await expectAppError(fan(u1).reservations.cancel.mutate({ reservationId: '00000000-0000-4000-8000-000000000001' }), 'RESERVATION_NOT_FOUND');

    await (await book.forReservation(u1, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    const paidErr = await expectAppError(fan(u1).reservations.cancel.mutate({ reservationId: r.reservationId }), 'ALREADY_PAID');
    expect(paidErr.data?.httpStatus).toBe(409);
    expect((await fan(u1).reservations.get.query({ reservationId: r.reservationId })).status).toBe('PAID');

    const lapsing = await hold(u1, scheduleId, [2]);
    clock.advance(ttlMs);
    const expErr = await expectAppError(fan(u1).reservations.cancel.mutate({ reservationId: lapsing.reservationId }), 'HOLD_EXPIRED');
    expect(expErr.data?.httpStatus).toBe(412);
    expect((await fan(u1).reservations.get.query({ reservationId: lapsing.reservationId })).status).toBe('EXPIRED');
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await admin(suite.api.url).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
    expect(audit.ok).toBe(true);
  });
});
