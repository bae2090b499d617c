import { FakeClock } from '@concert/core';
import pg from 'pg';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { refundIn } from '../../core/src/refunds/refunds.service.ts';
import { admin, client, expectAppError, key, outcome, seedSale, tally, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('payments', () => {
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
  const pay = async (userId: number, reservationId: string) => (await book.forReservation(userId, reservationId)).payments.pay.mutate({ reservationId, idempotencyKey: key() });
  const balanceOf = async (userId: number) => (await fan(userId).balance.get.query({})).balance;
  const ledgerSize = async (userId: number) => (await fan(userId).balance.history.query({ limit: 100 })).entries.length;

  it('pay takes the money, sells the seats and marks the reservation PAID', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, balance: 500_000, seatCount: 10 });
    const [u, other] = userIds as [number, number];
    const r = await hold(u, scheduleId, [4, 5]);
    clock.advance(1000);
    const { concertId } = await fan(u).reservations.get.query({ reservationId: r.reservationId });
    const ticket = await fan(u).queue.enter.mutate({ concertId });
    const withToken = client(suite.api.url, { userId: u, queueToken: ticket.token });
    const p = await withToken.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    expect(p.paymentId).toMatch(UUID);
    expect(p).toEqual({
      paymentId: p.paymentId,
      reservationId: r.reservationId,
      amount: 200_000,
      status: 'COMPLETED',
      paidAt: clock.now(),
      balanceBefore: 500_000,
      balanceAfter: 300_000,
      queueTokenExpired: true,
    });
    // The payer's place in the waiting room is given up at once.
    expect((await withToken.queue.status.query({})).status).toBe('EXPIRED');
    expect(await balanceOf(u)).toBe(300_000);
    const after = await fan(u).reservations.get.query({ reservationId: r.reservationId });
    expect(after).toEqual({ ...r, status: 'PAID', paidAt: clock.now() });
    // The payment's event carries the reservation exactly as a read after the sale returns it.
    const events = await suite.api.core.db
      .selectFrom('outbox_events')
      .select('data')
      .where('reservation_id', '=', r.reservationId)
      .where('type', '=', 'payment.completed')
      .execute();
    expect(events).toHaveLength(1);
    expect((events[0]!.data as { reservation: unknown }).reservation).toEqual(JSON.parse(JSON.stringify({ ...after, userId: u })));
    const seats = (await (await book.forSchedule(other, scheduleId)).concerts.seats.query({ scheduleId })).seats;
    expect(seats.filter((s) => s.status === 'SOLD').map((s) => s.seatNumber)).toEqual([4, 5]);
    expect(seats.filter((s) => s.status !== 'SOLD').every((s) => s.status === 'AVAILABLE')).toBe(true);
    const [entry] = (await fan(u).balance.history.query({ limit: 1 })).entries;
    expect(entry).toMatchObject({ kind: 'PAYMENT', amount: -200_000, balanceAfter: 300_000, reservationId: r.reservationId, createdAt: clock.now() });
    // A paid reservation does not lapse.
    clock.advance(ttlMs * 2);
    expect((await fan(u).reservations.get.query({ reservationId: r.reservationId })).status).toBe('PAID');
    expect((await (await book.forSchedule(other, scheduleId)).concerts.seats.query({ scheduleId })).seats[3]!.status).toBe('SOLD');
    expect((await admin(suite.api.url).admin.holds.list.query({ scheduleId })).items).toEqual([]);
  });

  it('a second payment of the same reservation answers ALREADY_PAID and takes nothing', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
    const u = userIds[0]!;
    const r = await hold(u, scheduleId, [1]);
    await pay(u, r.reservationId);
    const err = await expectAppError(pay(u, r.reservationId), 'ALREADY_PAID');
    expect(err.data?.httpStatus).toBe(409);
    expect(err.data?.code).toBe('CONFLICT');
    expect(await balanceOf(u)).toBe(400_000);
  });

  it('racing payments of one reservation: one succeeds, the money moves once', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 1_000_000 });
    const u = userIds[0]!;
    const r = await hold(u, scheduleId, [1, 2, 3]);
    const payer = await book.forReservation(u, r.reservationId);
    const results = await Promise.all(Array.from({ length: 8 }, () => outcome(payer.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }))));
    // The losers find it paid, or (behind the waiting room) find their token spent by the winner.
    expect(results.filter((o) => o === 'OK')).toHaveLength(1);
    expect(results.filter((o) => o !== 'OK' && o !== 'ALREADY_PAID' && o !== 'TOKEN_EXPIRED')).toEqual([]);
    expect(await balanceOf(u)).toBe(700_000);
    expect(await ledgerSize(u)).toBe(2);
  });

  it('racing payments of different reservations never overdraw the balance (INSUFFICIENT_BALANCE)', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 250_000, seatCount: 10 });
    const u = userIds[0]!;
    const holds = await Promise.all([1, 2, 3, 4].map((n) => hold(u, scheduleId, [n])));
    const payer = await book.forReservation(u, holds[0]!.reservationId);
    const results = await Promise.all(holds.map((r) => outcome(payer.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }))));
    const paid = results.filter((o) => o === 'OK').length;
    expect(paid).toBeGreaterThanOrEqual(1);
    expect(paid).toBeLessThanOrEqual(2);
    expect(results.filter((o) => o !== 'OK' && o !== 'INSUFFICIENT_BALANCE' && o !== 'TOKEN_EXPIRED')).toEqual([]);
    expect(await balanceOf(u)).toBe(250_000 - paid * 100_000);
    // Whatever the race left unpaid, paid one by one: exactly two fit in the wallet.
    const rest = holds.filter((_, i) => results[i] !== 'OK');
    const after = [];
    for (const r of rest) after.push(await outcome(pay(u, r.reservationId)));
    expect(tally([...results.filter((o) => o === 'OK'), ...after])).toEqual({ OK: 2, INSUFFICIENT_BALANCE: 2 });
    expect(await balanceOf(u)).toBe(50_000);
  });

  // Each payment checks, inside its transaction, whether it sold the show's last seat. Payments
  // of the last seats racing each other each ran that check before the other had committed, so
  // each still saw the other's seat unsold, and the show sold out without a concert.sold_out event.
  it('payments racing for a show’s last seats: the show sold out emits concert.sold_out exactly once', { timeout: 120_000 }, async () => {
    const SHOWS = 8;
    const SEATS = 6;
    for (let show = 0; show < SHOWS; show++) {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: SEATS, balance: 500_000, seatCount: SEATS });
      const held = await Promise.all(userIds.map(async (u, i) => ({ u, r: await hold(u, scheduleId, [i + 1]) })));
      const clients = await Promise.all(held.map(({ u, r }) => book.forReservation(u, r.reservationId)));
      await Promise.all(clients.map((c, i) => c.payments.pay.mutate({ reservationId: held[i]!.r.reservationId, idempotencyKey: key() })));
      const events = await suite.api.core.db.selectFrom('outbox_events').select('type').where('schedule_id', '=', scheduleId).where('type', '=', 'concert.sold_out').execute();
      expect(events, `show ${show + 1} of ${SHOWS}`).toHaveLength(1);
    }
  });

  it('a show sold out again after a refund is announced again; the sweep announces a sell-out nobody did', async () => {
    const soldOutEvents = async (scheduleId: number) =>
      (await suite.api.core.db.selectFrom('outbox_events').select('data').where('schedule_id', '=', scheduleId).where('type', '=', 'concert.sold_out').execute()).map((e) => e.data);
    const { concertId, scheduleId, userIds } = await seedSale(suite.api.url, { users: 3, balance: 500_000, seatCount: 2 });
    const [a, b, c] = userIds as [number, number, number];
    const first = await hold(a, scheduleId, [1]);
    await pay(a, first.reservationId);
    expect(await soldOutEvents(scheduleId)).toEqual([]);
    await pay(b, (await hold(b, scheduleId, [2])).reservationId);
    expect(await soldOutEvents(scheduleId)).toMatchObject([{ concertId, scheduleId, totalSeats: 2 }]);
    // A refund returns seat 1; sold to someone else, the show sells out a second time.
    await fan(a).reservations.refund.mutate({ reservationId: first.reservationId, idempotencyKey: key() });
    await pay(c, (await hold(c, scheduleId, [1])).reservationId);
    expect(await soldOutEvents(scheduleId)).toHaveLength(2);

    // The process that sold the last seat died between the commit and its read of the seats:
    // the announcement is undone here to stand for that. Only the sweep sees it, once.
    const other = await seedSale(suite.api.url, { users: 1, balance: 500_000, seatCount: 1 });
    await pay(other.userIds[0]!, (await hold(other.userIds[0]!, other.scheduleId, [1])).reservationId);
    const announced = suite.api.core.db.selectFrom('outbox_events').select('id').where('schedule_id', '=', other.scheduleId).where('type', '=', 'concert.sold_out');
    await suite.api.core.db.deleteFrom('webhook_deliveries').where('event_id', 'in', announced).execute();
    await suite.api.core.db.deleteFrom('outbox_events').where('id', 'in', announced).execute();
    await suite.api.core.db.updateTable('schedules').set({ sold_out_at: null }).where('id', '=', other.scheduleId).execute();
    expect(await suite.api.core.concerts.announceSellOuts()).toBeGreaterThanOrEqual(1);
    expect(await suite.api.core.concerts.announceSellOuts()).toBe(0);
    expect(await soldOutEvents(other.scheduleId)).toMatchObject([{ concertId: other.concertId, scheduleId: other.scheduleId, totalSeats: 1 }]);
  });

  // A refund freeing a seat of a show sold out but not yet announced, racing the announcement:
  // the announcement must not mark the show (a seat is free again), or the show's next sell-out
  // would never be announced. The refund used to lock the show's row only to clear a mark already
  // committed, so the announcement went ahead unseen and the mark outlived the refund.
  it('a refund racing the sell-out’s announcement: no mark is left on a show with a free seat', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, balance: 500_000, seatCount: 2 });
    const [a, b] = userIds as [number, number];
    const first = await hold(a, scheduleId, [1]);
    await pay(a, first.reservationId);
    await pay(b, (await hold(b, scheduleId, [2])).reservationId);
    const { db } = suite.api.core;
    const mark = async () => (await db.selectFrom('schedules').select('sold_out_at').where('id', '=', scheduleId).executeTakeFirstOrThrow()).sold_out_at;
    expect(await mark()).not.toBeNull();
    // As if the sale's announcement had not run yet.
    await db.updateTable('schedules').set({ sold_out_at: null }).where('id', '=', scheduleId).execute();
    let announcing: Promise<number> | undefined;
    await db.transaction().execute(async (trx) => {
      await refundIn(trx, { reservationId: first.reservationId, userId: a, reason: 'USER', clock, policy: { cutoffHours: 0, waitlistOfferSeconds: 600 } });
      // The refund has freed seat 1 and not committed: the announcement starts now, and either
      // finishes (seeing the seat still sold) or waits for the refund's lock on the show.
      announcing = suite.api.core.concerts.announceSoldOut([scheduleId]);
      let settled = false;
      void announcing.then(() => (settled = true));
      const watcher = new pg.Client({ connectionString: suite.api.core.config.databaseUrl });
      await watcher.connect();
      try {
        await vi.waitFor(async () => {
          const { rows } = await watcher.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
          expect(settled || rows[0]!.n > 0).toBe(true);
        }, { timeout: 10_000, interval: 20 });
      } finally {
        await watcher.end();
      }
    });
    await announcing;
    expect(await mark()).toBeNull();
    // Nor does a later look: seat 1 is free.
    expect(await suite.api.core.concerts.announceSoldOut([scheduleId])).toBe(0);
    expect(await mark()).toBeNull();
  });

  it('pay answers INSUFFICIENT_BALANCE and changes nothing; after a top-up it goes through', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 150_000 });
    const u = userIds[0]!;
    const r = await hold(u, scheduleId, [1, 2]);
    const err = await expectAppError(pay(u, r.reservationId), 'INSUFFICIENT_BALANCE');
    expect(err.data?.httpStatus).toBe(402);
    expect(err.data?.code).toBe('PAYMENT_REQUIRED');
    expect(await balanceOf(u)).toBe(150_000);
    expect(await ledgerSize(u)).toBe(1);
    expect((await fan(u).reservations.get.query({ reservationId: r.reservationId })).status).toBe('HELD');
    await fan(u).balance.charge.mutate({ amount: 50_000, idempotencyKey: key() });
    const p = await pay(u, r.reservationId);
    expect([p.balanceBefore, p.balanceAfter]).toEqual([200_000, 0]);
    expect(await balanceOf(u)).toBe(0);
  });

  it('a seat priced at zero is paid with an empty wallet', async () => {
    const c = await admin(suite.api.url).admin.concerts.create.mutate({
      title: 'Free rehearsal',
      schedules: [{ startsAt: new Date(clock.now().getTime() + 86_400_000), seatCount: 2, tiers: [{ grade: 'FREE', price: 0, fromSeat: 1, toSeat: 2 }] }],
    });
    const { userId } = await admin(suite.api.url).admin.users.create.mutate({ name: 'broke' });
    const r = await hold(userId, c.schedules[0]!.scheduleId, [1]);
    expect(r.totalPrice).toBe(0);
    const p = await pay(userId, r.reservationId);
    expect([p.amount, p.balanceBefore, p.balanceAfter]).toEqual([0, 0, 0]);
  });

  it('pay after the hold expired answers HOLD_EXPIRED and takes nothing', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, balance: 500_000 });
    const [u, other] = userIds as [number, number];
    const r = await hold(u, scheduleId, [1]);
    clock.advance(ttlMs);
    const err = await expectAppError(pay(u, r.reservationId), 'HOLD_EXPIRED');
    expect(err.data?.httpStatus).toBe(412);
    expect(err.data?.code).toBe('PRECONDITION_FAILED');
    expect(await balanceOf(u)).toBe(500_000);
    expect((await fan(u).reservations.get.query({ reservationId: r.reservationId })).status).toBe('EXPIRED');
    // Also once the seat has gone to somebody else, and after a sweep.
    await hold(other, scheduleId, [1]);
    await suite.api.core.reservations.sweepExpired();
    await expectAppError(pay(u, r.reservationId), 'HOLD_EXPIRED');
    expect(await balanceOf(u)).toBe(500_000);
  });

  it('pay just before expiry goes through', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
    const u = userIds[0]!;
    const r = await hold(u, scheduleId, [1]);
    clock.advance(ttlMs - 1);
    const p = await pay(u, r.reservationId);
    expect(p.paidAt).toEqual(new Date(r.holdExpiresAt.getTime() - 1));
  });

  it('pay of a cancelled or operator-released reservation answers RESERVATION_CANCELLED', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
    const u = userIds[0]!;
    const cancelled = await hold(u, scheduleId, [1]);
    await fan(u).reservations.cancel.mutate({ reservationId: cancelled.reservationId });
    const err = await expectAppError(pay(u, cancelled.reservationId), 'RESERVATION_CANCELLED');
    expect(err.data?.httpStatus).toBe(412);
    const released = await hold(u, scheduleId, [2]);
    await admin(suite.api.url).admin.holds.release.mutate({ reservationId: released.reservationId });
    await expectAppError(pay(u, released.reservationId), 'RESERVATION_CANCELLED');
    expect(await balanceOf(u)).toBe(500_000);
  });

  it('pay of a hold its show’s cancellation released answers SCHEDULE_CANCELLED, not RESERVATION_CANCELLED', async () => {
    // The fan did not cancel it: the answer names why the hold is gone (found by an operator's
    // rehearsal, where the fan was told "This reservation was cancelled").
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
    const u = userIds[0]!;
    const r = await hold(u, scheduleId, [1]);
    const withToken = await book.forReservation(u, r.reservationId);
    expect(await admin(suite.api.url).admin.schedules.cancel.mutate({ scheduleId })).toMatchObject({ released: 1 });
    const err = await expectAppError(withToken.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'SCHEDULE_CANCELLED');
    expect(err.data?.httpStatus).toBe(412);
    expect(err.message).toContain('released');
    expect((await fan(u).reservations.get.query({ reservationId: r.reservationId })).status).toBe('CANCELLED');
    expect(await balanceOf(u)).toBe(500_000);
  });

  it("pay of someone else's reservation answers RESERVATION_NOT_FOUND, as for one that does not exist", async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, balance: 500_000 });
    const [owner, thief] = userIds as [number, number];
    const r = await hold(owner, scheduleId, [1]);
    const err = await expectAppError(pay(thief, r.reservationId), 'RESERVATION_NOT_FOUND');
    expect(err.data?.httpStatus).toBe(404);
    await expectAppError(pay(thief, '00000000-0000-4000-8000-000000000000'), 'RESERVATION_NOT_FOUND');
    expect(await balanceOf(thief)).toBe(500_000);
    expect(await balanceOf(owner)).toBe(500_000);
    expect((await fan(owner).reservations.get.query({ reservationId: r.reservationId })).status).toBe('HELD');
  });

  it('pay needs an identity', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1 });
    const r = await hold(userIds[0]!, scheduleId, [1]);
    const err = await expectAppError(client(suite.api.url).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'IDENTITY_REQUIRED');
    expect(err.data?.httpStatus).toBe(401);
    expect((await fan(userIds[0]!).reservations.get.query({ reservationId: r.reservationId })).status).toBe('HELD');
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await admin(suite.api.url).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
    expect(audit.ok).toBe(true);
  });
});
