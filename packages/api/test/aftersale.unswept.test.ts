import { FakeClock } from '@concert/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, expectAppError, key, seedSale, startApi, type TestApi, type TestDatabase, testEnv } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

/**
 * After the sale, between a hold's lapse and the sweep that settles it. The API runs without its
 * background work (no sweep of lapsed holds), and time comes from a fake clock, so a lapsed hold
 * or offer is still HELD in its row, as it is for up to a second (or longer behind a backlog) in
 * a sale: what fans and operators see must already say it lapsed.
 */
describe('after the sale, before the sweep', () => {
  const clock = new FakeClock();
  let db: TestDatabase;
  let api: TestApi;
  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(testEnv(db.url, { ...BOOKING_ENV, HOLD_TTL_SECONDS: '60' }), { clock, background: false });
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  it('a hold that had lapsed stays EXPIRED and is not counted as released; a live one is CANCELLED', async () => {
    const book = booking(() => api.url);
    const { scheduleId, userIds } = await seedSale(api.url, { users: 3, seatCount: 3 });
    const [lapsing, holding, buyer] = userIds as [number, number, number];
    const hold = async (u: number, seat: number) =>
      (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [seat], idempotencyKey: key() });
    const lapsed = await hold(lapsing, 1);
    clock.advance(61_000);
    const live = await hold(holding, 2);
    const paid = await hold(buyer, 3);
    await (await book.forSchedule(buyer, scheduleId)).payments.pay.mutate({ reservationId: paid.reservationId, idempotencyKey: key() });
    const read = (u: number, reservationId: string) => client(api.url, { userId: u }).reservations.get.query({ reservationId });
    expect((await read(lapsing, lapsed.reservationId)).status).toBe('EXPIRED');

    // Contract: every paid reservation refunded, every hold released. The lapsed one was no hold
    // any more: its fan had read it EXPIRED, and it used to turn CANCELLED and count as released.
    expect(await admin(api.url).admin.schedules.cancel.mutate({ scheduleId })).toEqual({ scheduleId, refunded: 1, released: 1 });
    expect((await read(lapsing, lapsed.reservationId)).status).toBe('EXPIRED');
    expect((await read(holding, live.reservationId)).status).toBe('CANCELLED');
    expect((await read(buyer, paid.reservationId)).status).toBe('REFUNDED');
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      const events = (await sql.query(`SELECT type FROM outbox_events WHERE reservation_id = $1 ORDER BY seq`, [lapsed.reservationId])).rows.map((r: { type: string }) => r.type);
      expect(events).toEqual(['reservation.held', 'reservation.expired']);
    } finally {
      await sql.end();
    }
    const audit = await admin(api.url).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('a waitlist offer past its expiry reads LAPSED in waitlist.mine, as its reservation reads EXPIRED', async () => {
    const book = booking(() => api.url);
    const { scheduleId, userIds } = await seedSale(api.url, { users: 3, seatCount: 1 });
    const [holder, first, second] = userIds as [number, number, number];
    const held = await (await book.forSchedule(holder, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    const fan = (u: number) => client(api.url, { userId: u });
    const entry = await fan(first).waitlist.join.mutate({ scheduleId, seatCount: 1 });
    await fan(second).waitlist.join.mutate({ scheduleId, seatCount: 1 });
    await fan(holder).reservations.cancel.mutate({ reservationId: held.reservationId });
    const offered = (await fan(first).waitlist.mine.query({})).items[0]!;
    expect(offered).toMatchObject({ entryId: entry.entryId, status: 'OFFERED', offer: { seatNumbers: [1] } });

    clock.set(new Date(offered.offer!.expiresAt.getTime() + 1000));
    expect((await fan(first).reservations.get.query({ reservationId: offered.offer!.reservationId })).status).toBe('EXPIRED');
    // It read OFFERED, with an offer whose expiresAt had passed, until a sweep ran.
    expect((await fan(first).waitlist.mine.query({})).items[0]).toMatchObject({ entryId: entry.entryId, status: 'LAPSED', position: null, offer: null });
    await expectAppError(fan(first).payments.pay.mutate({ reservationId: offered.offer!.reservationId, idempotencyKey: key() }), 'HOLD_EXPIRED');
    // It has ended: leaving it changes nothing (it turned LEFT, from its row's OFFERED).
    expect(await fan(first).waitlist.leave.mutate({ entryId: entry.entryId })).toMatchObject({ entryId: entry.entryId, status: 'LAPSED', offer: null });
    // The next in line is offered the seat once the sweep runs.
    expect(await api.core.reservations.sweepExpired()).toBe(1);
    expect((await fan(second).waitlist.mine.query({})).items[0]).toMatchObject({ status: 'OFFERED', offer: { seatNumbers: [1] } });
    const audit = await admin(api.url).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('a waitlist entry still WAITING when its show starts reads LAPSED: nothing can be offered any more', async () => {
    const book = booking(() => api.url);
    const { scheduleId, userIds } = await seedSale(api.url, { users: 2, seatCount: 1 });
    const [buyer, waiting] = userIds as [number, number];
    const startsAt = (await client(api.url).concerts.schedule.query({ scheduleId })).startsAt;
    const held = await (await book.forSchedule(buyer, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    await (await book.forSchedule(buyer, scheduleId)).payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: key() });
    const fan = client(api.url, { userId: waiting });
    const entry = await fan.waitlist.join.mutate({ scheduleId, seatCount: 1 });
    expect(entry).toMatchObject({ status: 'WAITING', position: 1 });
    clock.set(new Date(startsAt.getTime() + 1000));
    // It read WAITING, first in line, for good: a seat freed now is not offered (the show has
    // started), and a cancelled show's entries turn LAPSED.
    expect((await fan.waitlist.mine.query({})).items[0]).toMatchObject({ entryId: entry.entryId, status: 'LAPSED', position: null, offer: null });
    // Joining again is joining a started show, and leaving an ended entry changes nothing (they
    // answered that LAPSED entry, and turned it LEFT, from its row's WAITING).
    await expectAppError(fan.waitlist.join.mutate({ scheduleId, seatCount: 1 }), 'BOOKING_CLOSED');
    expect(await fan.waitlist.leave.mutate({ entryId: entry.entryId })).toMatchObject({ entryId: entry.entryId, status: 'LAPSED', position: null });
    await admin(api.url).admin.reservations.refund.mutate({ reservationId: held.reservationId });
    expect((await fan.waitlist.mine.query({})).items[0]).toMatchObject({ entryId: entry.entryId, status: 'LAPSED' });
  });

  // Two seats of a one-seat show were a WAITING entry for good (an outside review).
  it('a waitlist entry for more seats than the show has is refused, naming seatCount', async () => {
    clock.set(new Date());
    const book = booking(() => api.url);
    const { scheduleId, userIds } = await seedSale(api.url, { users: 2, seatCount: 1 });
    const [holder, waiting] = userIds as [number, number];
    await (await book.forSchedule(holder, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    const fan = client(api.url, { userId: waiting });
    await expect(fan.waitlist.join.mutate({ scheduleId, seatCount: 2 })).rejects.toMatchObject({
      message: 'This show has 1 seat(s); a waitlist entry cannot ask for 2',
      data: { appCode: 'INVALID_INPUT', issues: [{ path: ['seatCount'] }] },
    });
    expect(await fan.waitlist.join.mutate({ scheduleId, seatCount: 1 })).toMatchObject({ status: 'WAITING', position: 1 });
  });

  // An offer lasted WAITLIST_OFFER_SECONDS (600) whatever the show's start: made 5 minutes before
  // it, it was payable 5 minutes into it, and then not refundable (an outside review).
  it('a waitlist offer made just before the show lasts until it starts, and cannot be paid after', async () => {
    clock.set(new Date()); // the test before left the clock past its show's start
    const book = booking(() => api.url);
    const { scheduleId, userIds } = await seedSale(api.url, { users: 2, seatCount: 1 });
    const [holder, waiting] = userIds as [number, number];
    const startsAt = (await client(api.url).concerts.schedule.query({ scheduleId })).startsAt;
    clock.set(new Date(startsAt.getTime() - 5 * 60_000));
    const held = await (await book.forSchedule(holder, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    const fan = client(api.url, { userId: waiting });
    await fan.waitlist.join.mutate({ scheduleId, seatCount: 1 });
    await client(api.url, { userId: holder }).reservations.cancel.mutate({ reservationId: held.reservationId });
    const offered = (await fan.waitlist.mine.query({})).items[0]!;
    expect(offered.status).toBe('OFFERED');
    expect(offered.offer!.expiresAt).toEqual(startsAt);
    clock.set(new Date(startsAt.getTime() + 1000));
    await expect(fan.payments.pay.mutate({ reservationId: offered.offer!.reservationId, idempotencyKey: key() })).rejects.toMatchObject({
      data: { appCode: 'HOLD_EXPIRED' },
      message: expect.stringContaining('the show started'),
    });
  });
});
