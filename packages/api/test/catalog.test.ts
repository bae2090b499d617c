import { FakeClock } from '@concert/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, client, everyPage, expectAppError, key, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('concerts (catalog)', () => {
  const clock = new FakeClock();
  const suite = useApi(BOOKING_ENV, { clock });
  const book = booking(() => suite.api.url);
  let concertId: number;
  let bigScheduleId: number;
  let smallScheduleId: number;
  let title: string;
  const userIds: number[] = [];

  beforeAll(async () => {
    const a = admin(suite.api.url);
    title = `Catalog ${key()}`;
    const now = clock.now().getTime();
    const created = await a.admin.concerts.create.mutate({
      title,
      venue: 'Catalog Hall',
      schedules: [
        // Listed second although created first: schedules come in order of their start.
        {
          startsAt: new Date(now + 9 * DAY),
          bookingOpensAt: new Date(now - HOUR),
          seatCount: 6,
          tiers: [
            { grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 2 },
            { grade: 'S', price: 70_000, fromSeat: 3, toSeat: 6 },
          ],
        },
        { startsAt: new Date(now + 8 * DAY), bookingOpensAt: new Date(now - HOUR), seatCount: 2 },
      ],
    });
    bigScheduleId = created.schedules[0]!.scheduleId;
    smallScheduleId = created.schedules[1]!.scheduleId;
    concertId = created.concertId;
    for (const name of ['fan a', 'fan b']) userIds.push((await a.admin.users.create.mutate({ name, initialBalance: 1_000_000 })).userId);
  });

  const anon = () => client(suite.api.url);
  const fan = (i: number) => client(suite.api.url, { userId: userIds[i]! });

  it('concerts.list lists every concert with its schedule count, without identity', async () => {
    const other = await admin(suite.api.url).admin.concerts.create.mutate({
      title: 'Second show',
      schedules: [{ startsAt: new Date(clock.now().getTime() + 30 * DAY) }],
    });
    const list = await everyPage((p) => anon().concerts.list.query(p));
    expect(list).toEqual(
      expect.arrayContaining([
        { concertId, title, venue: 'Catalog Hall', scheduleCount: 2 },
        { concertId: other.concertId, title: 'Second show', venue: '', scheduleCount: 1 },
      ]),
    );
    // The input may also be left out.
    expect((await anon().concerts.list.query()).items).toEqual(list.slice(0, 20));
  });

  it('concerts.get gives the concert and all its schedules, with Dates and live counts', async () => {
    const c = await anon().concerts.get.query({ concertId });
    expect(c).toMatchObject({ concertId, title, venue: 'Catalog Hall' });
    expect(c.schedules.map((s) => s.scheduleId)).toEqual([smallScheduleId, bigScheduleId]);
    const big = c.schedules[1]!;
    expect(big).toEqual({
      scheduleId: bigScheduleId,
      concertId,
      startsAt: expect.any(Date),
      bookingOpensAt: expect.any(Date),
      totalSeats: 6,
      availableSeats: 6,
    });
    expect(big.startsAt.getTime()).toBeGreaterThan(clock.now().getTime());
    expect(big.bookingOpensAt.getTime()).toBeLessThan(clock.now().getTime());
  });

  it('concerts.get answers CONCERT_NOT_FOUND for an unknown concert', async () => {
    const err = await expectAppError(anon().concerts.get.query({ concertId: 987_654 }), 'CONCERT_NOT_FOUND');
    expect(err.data?.httpStatus).toBe(404);
    expect(err.data?.code).toBe('NOT_FOUND');
  });

  it('concerts.schedule gives one schedule, or SCHEDULE_NOT_FOUND', async () => {
    const s = await anon().concerts.schedule.query({ scheduleId: smallScheduleId });
    expect(s).toMatchObject({ scheduleId: smallScheduleId, concertId, totalSeats: 2, availableSeats: 2 });
    expect(s.startsAt).toBeInstanceOf(Date);
    const err = await expectAppError(anon().concerts.schedule.query({ scheduleId: 987_654 }), 'SCHEDULE_NOT_FOUND');
    expect(err.data?.httpStatus).toBe(404);
  });

  it('concerts.seats shows each seat with grade, price and status', async () => {
    const map = await (await book.forSchedule(userIds[0]!, bigScheduleId)).concerts.seats.query({ scheduleId: bigScheduleId });
    expect(map.concertId).toBe(concertId);
    expect(map.scheduleId).toBe(bigScheduleId);
    expect(map.startsAt).toBeInstanceOf(Date);
    expect(map.seats).toEqual([
      { seatNumber: 1, grade: 'VIP', price: 150_000, status: 'AVAILABLE' },
      { seatNumber: 2, grade: 'VIP', price: 150_000, status: 'AVAILABLE' },
      { seatNumber: 3, grade: 'S', price: 70_000, status: 'AVAILABLE' },
      { seatNumber: 4, grade: 'S', price: 70_000, status: 'AVAILABLE' },
      { seatNumber: 5, grade: 'S', price: 70_000, status: 'AVAILABLE' },
      { seatNumber: 6, grade: 'S', price: 70_000, status: 'AVAILABLE' },
    ]);
  });

  it('concerts.seats needs an identity and a real schedule', async () => {
    const err = await expectAppError(anon().concerts.seats.query({ scheduleId: bigScheduleId }), 'IDENTITY_REQUIRED');
    expect(err.data?.httpStatus).toBe(401);
    await expectAppError((await book.forSchedule(userIds[0]!, 987_654)).concerts.seats.query({ scheduleId: 987_654 }), 'SCHEDULE_NOT_FOUND');
  });

  it('seats read HELD and SOLD, and availableSeats follows', async () => {
    const held = await (await book.forSchedule(userIds[0]!, bigScheduleId)).reservations.hold.mutate({ scheduleId: bigScheduleId, seatNumbers: [1], idempotencyKey: key() });
    const sold = await (await book.forSchedule(userIds[0]!, bigScheduleId)).reservations.hold.mutate({ scheduleId: bigScheduleId, seatNumbers: [3], idempotencyKey: key() });
    await (await book.forReservation(userIds[0]!, sold.reservationId)).payments.pay.mutate({ reservationId: sold.reservationId, idempotencyKey: key() });
    // Another user sees the same map: holds are not private.
    const map = await (await book.forSchedule(userIds[1]!, bigScheduleId)).concerts.seats.query({ scheduleId: bigScheduleId });
    expect(map.seats.map((s) => s.status)).toEqual(['HELD', 'AVAILABLE', 'SOLD', 'AVAILABLE', 'AVAILABLE', 'AVAILABLE']);
    expect((await anon().concerts.schedule.query({ scheduleId: bigScheduleId })).availableSeats).toBe(4);
    await fan(0).reservations.cancel.mutate({ reservationId: held.reservationId });
    expect((await (await book.forSchedule(userIds[1]!, bigScheduleId)).concerts.seats.query({ scheduleId: bigScheduleId })).seats[0]!.status).toBe('AVAILABLE');
    expect((await anon().concerts.schedule.query({ scheduleId: bigScheduleId })).availableSeats).toBe(5);
  });

  it('concerts.schedules hides sold-out schedules unless includeSoldOut', async () => {
    const hold = await (await book.forSchedule(userIds[1]!, smallScheduleId)).reservations.hold.mutate({ scheduleId: smallScheduleId, seatNumbers: [1, 2], idempotencyKey: key() });
    const listed = await anon().concerts.schedules.query({ concertId });
    expect(listed.concertId).toBe(concertId);
    expect(listed.schedules.map((s) => s.scheduleId)).toEqual([bigScheduleId]);
    const all = await anon().concerts.schedules.query({ concertId, includeSoldOut: true });
    expect(all.schedules.map((s) => [s.scheduleId, s.availableSeats])).toEqual([
      [smallScheduleId, 0],
      [bigScheduleId, 5],
    ]);
    // includeSoldOut: false is the default spelled out.
    expect(await anon().concerts.schedules.query({ concertId, includeSoldOut: false })).toEqual(listed);
    // concerts.get lists every schedule, sold out or not.
    expect((await anon().concerts.get.query({ concertId })).schedules).toHaveLength(2);

    // Once the hold lapses, the seats are free at once: no sweep has run.
    clock.advance(suite.api.core.config.holdTtlSeconds * 1000);
    expect((await fan(1).reservations.get.query({ reservationId: hold.reservationId })).status).toBe('EXPIRED');
    expect((await (await book.forSchedule(userIds[0]!, smallScheduleId)).concerts.seats.query({ scheduleId: smallScheduleId })).seats.map((s) => s.status)).toEqual(['AVAILABLE', 'AVAILABLE']);
    const after = await anon().concerts.schedules.query({ concertId });
    expect(after.schedules.map((s) => [s.scheduleId, s.availableSeats])).toEqual([
      [smallScheduleId, 2],
      [bigScheduleId, 5],
    ]);
  });

  it('a sold seat stays SOLD after its hold time has passed', async () => {
    const map = await (await book.forSchedule(userIds[0]!, bigScheduleId)).concerts.seats.query({ scheduleId: bigScheduleId });
    expect(map.seats[2]!.status).toBe('SOLD');
  });

  it('concerts.schedules answers CONCERT_NOT_FOUND for an unknown concert', async () => {
    await expectAppError(anon().concerts.schedules.query({ concertId: 987_654 }), 'CONCERT_NOT_FOUND');
    await expectAppError(anon().concerts.schedules.query({ concertId: 987_654, includeSoldOut: true }), 'CONCERT_NOT_FOUND');
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await admin(suite.api.url).admin.audit.query({});
    expect(audit.ok).toBe(true);
  });
});
