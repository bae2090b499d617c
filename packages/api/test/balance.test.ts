import { FakeClock } from '@concert/core';
import { describe, expect, it } from 'vitest';
import { admin, client, expectAppError, key, seedSale, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

describe('balance (prepaid wallet)', () => {
  const clock = new FakeClock();
  const suite = useApi(BOOKING_ENV, { clock });
  const book = booking(() => suite.api.url);


  const fan = (userId: number) => client(suite.api.url, { userId });
  const newUser = async (initialBalance = 0) => (await admin(suite.api.url).admin.users.create.mutate({ name: 'wallet', initialBalance })).userId;
  const charge = (userId: number, amount: number) => fan(userId).balance.charge.mutate({ amount, idempotencyKey: key() });

  /** Every ledger entry of the user, newest first, by following the cursor. */
  async function fullHistory(userId: number, limit: number) {
    const entries = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const h = await fan(userId).balance.history.query(cursor === undefined ? { limit } : { limit, cursor });
      expect(h.entries.length).toBeLessThanOrEqual(limit);
      entries.push(...h.entries);
      if (h.nextCursor === null) return entries;
      cursor = h.nextCursor;
    }
    throw new Error('history did not end');
  }

  it('get returns the balance of the caller', async () => {
    const u = await newUser(12_345);
    const b = await fan(u).balance.get.query({});
    expect(b).toEqual({ userId: u, balance: 12_345, updatedAt: expect.any(Date) });
    expect(await fan(u).balance.get.query()).toEqual(b);
  });

  it('get answers USER_NOT_FOUND for an identity without a user, and IDENTITY_REQUIRED without one', async () => {
    const err = await expectAppError(fan(987_654).balance.get.query({}), 'USER_NOT_FOUND');
    expect(err.data?.httpStatus).toBe(404);
    const anon = await expectAppError(client(suite.api.url).balance.get.query({}), 'IDENTITY_REQUIRED');
    expect(anon.data?.httpStatus).toBe(401);
  });

  it('charge adds the amount and says so', async () => {
    const u = await newUser(1000);
    const r = await charge(u, 50_000);
    expect(r).toEqual({ userId: u, charged: 50_000, balance: 51_000, chargedAt: clock.now() });
    const b = await fan(u).balance.get.query({});
    expect(b.balance).toBe(51_000);
    expect(b.updatedAt).toEqual(clock.now());
    // Exactly the per-transaction maximum is allowed.
    expect((await charge(u, 1_000_000)).balance).toBe(1_051_000);
  });

  it('charge refuses amounts that are not a positive whole number (INVALID_AMOUNT)', async () => {
    const u = await newUser(500);
    for (const amount of [0, -1, -1_000_000, 0.5, 1000.25, Number.MAX_SAFE_INTEGER + 2]) {
      const err = await expectAppError(charge(u, amount), 'INVALID_AMOUNT');
      expect(err.data?.httpStatus).toBe(400);
      expect(err.data?.code).toBe('BAD_REQUEST');
    }
    expect((await fan(u).balance.get.query({})).balance).toBe(500);
    expect(await fullHistory(u, 100)).toHaveLength(1);
  });

  it('charge refuses more than CHARGE_MAX_PER_TX in one go (CHARGE_LIMIT_EXCEEDED)', async () => {
    const u = await newUser();
    const err = await expectAppError(charge(u, 1_000_001), 'CHARGE_LIMIT_EXCEEDED');
    expect(err.data?.httpStatus).toBe(400);
    expect((await fan(u).balance.get.query({})).balance).toBe(0);
  });

  it('charge answers USER_NOT_FOUND for an identity without a user', async () => {
    await expectAppError(charge(987_654, 100), 'USER_NOT_FOUND');
  });

  it('history pages newest first with its cursor; entries are signed and carry balanceAfter', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 200_000 });
    const u = userIds[0]!;
    for (const amount of [1_000, 2_000, 3_000]) {
      clock.advance(1000);
      await charge(u, amount);
    }
    clock.advance(1000);
    const r = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    clock.advance(1000);
    await charge(u, 4_000);

    const entries = await fullHistory(u, 2);
    expect(entries.map((e) => [e.kind, e.amount, e.balanceAfter])).toEqual([
      ['CHARGE', 4_000, 110_000],
      ['PAYMENT', -100_000, 106_000],
      ['CHARGE', 3_000, 206_000],
      ['CHARGE', 2_000, 203_000],
      ['CHARGE', 1_000, 201_000],
      ['CHARGE', 200_000, 200_000],
    ]);
    expect(entries[1]!.reservationId).toBe(r.reservationId);
    expect(entries.filter((e) => e.kind === 'CHARGE').every((e) => e.reservationId === null)).toBe(true);
    for (const e of entries) {
      expect(e.createdAt).toBeInstanceOf(Date);
      expect(Number.isInteger(e.entryId)).toBe(true);
    }
    expect(new Set(entries.map((e) => e.entryId)).size).toBe(entries.length);
    // Each entry moves the balance by its amount, and the balance is their sum.
    const oldestFirst = [...entries].reverse();
    let running = 0;
    for (const e of oldestFirst) {
      running += e.amount;
      expect(e.balanceAfter).toBe(running);
    }
    expect((await fan(u).balance.get.query({})).balance).toBe(running);

    // Any page size reads the same entries; the default page is 20.
    expect(await fullHistory(u, 4)).toEqual(entries);
    expect(await fullHistory(u, 100)).toEqual(entries);
    const first = await fan(u).balance.history.query({});
    expect(first).toEqual({ entries, nextCursor: null });
    expect(await fan(u).balance.history.query()).toEqual(first);
    // An exact fit gives no further page.
    const exact = await fan(u).balance.history.query({ limit: 6 });
    expect(exact.entries).toHaveLength(6);
    expect(exact.nextCursor).toBeNull();
  });

  it('history is the caller\'s own and starts empty', async () => {
    const u = await newUser();
    expect(await fan(u).balance.history.query({})).toEqual({ entries: [], nextCursor: null });
    const other = await newUser(5_000);
    const h = await fan(other).balance.history.query({ limit: 1 });
    expect(h.entries.map((e) => e.balanceAfter)).toEqual([5_000]);
    // A cursor handed to one user reads nothing of another's.
    await charge(other, 1);
    await charge(other, 2);
    const page = await fan(other).balance.history.query({ limit: 1 });
    expect(page.nextCursor).not.toBeNull();
    expect(await fan(u).balance.history.query({ limit: 5, cursor: page.nextCursor! })).toEqual({ entries: [], nextCursor: null });
  });

  it('history refuses a cursor it did not give out and a limit out of 1..100 (INVALID_INPUT)', async () => {
    const u = await newUser(1);
    for (const cursor of ['garbage', '', Buffer.from('e:-5').toString('base64url'), Buffer.from('e:12345678901234567').toString('base64url')]) {
      const err = await expectAppError(fan(u).balance.history.query({ cursor }), 'INVALID_INPUT');
      expect(err.data?.httpStatus).toBe(400);
    }
    for (const limit of [0, 101, 1.5, -1]) await expectAppError(fan(u).balance.history.query({ limit }), 'INVALID_INPUT');
    await expectAppError(client(suite.api.url).balance.history.query({}), 'IDENTITY_REQUIRED');
  });

  it('operator grants do not count toward the monthly cap; user charges do', async () => {
    const u = await newUser(1_000_000);
    for (let i = 0; i < 5; i++) await charge(u, 1_000_000);
    expect((await fan(u).balance.get.query({})).balance).toBe(6_000_000);
    await expectAppError(charge(u, 1), 'CHARGE_LIMIT_EXCEEDED');
    // The cap is per user.
    const other = await newUser();
    expect((await charge(other, 1_000_000)).balance).toBe(1_000_000);
  });

  it('the monthly cap resets at the start of the next calendar month in UTC', async () => {
    // 23:00 UTC on 31 January is already 1 February in Seoul: the month is UTC's.
    clock.set(Date.UTC(2031, 0, 31, 23, 0, 0));
    const u = await newUser();
    await charge(u, 1_000_000);
    clock.set(Date.UTC(2031, 0, 1, 0, 0, 0));
    for (let i = 0; i < 3; i++) await charge(u, 1_000_000);
    clock.set(Date.UTC(2031, 0, 31, 23, 59, 59, 999));
    await charge(u, 999_999);
    // 4,999,999 charged in January: one more won fits, two do not.
    const err = await expectAppError(charge(u, 2), 'CHARGE_LIMIT_EXCEEDED');
    expect(err.data?.httpStatus).toBe(400);
    await charge(u, 1);
    await expectAppError(charge(u, 1), 'CHARGE_LIMIT_EXCEEDED');
    expect((await fan(u).balance.get.query({})).balance).toBe(5_000_000);

    clock.set(Date.UTC(2031, 1, 1, 0, 0, 0));
    for (let i = 0; i < 5; i++) await charge(u, 1_000_000);
    await expectAppError(charge(u, 1), 'CHARGE_LIMIT_EXCEEDED');
    expect((await fan(u).balance.get.query({})).balance).toBe(10_000_000);
    // The year rolls over too.
    clock.set(Date.UTC(2031, 11, 31, 12));
    await charge(u, 1_000_000);
    clock.set(Date.UTC(2032, 0, 1));
    expect((await charge(u, 1_000_000)).balance).toBe(12_000_000);
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await admin(suite.api.url).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
    expect(audit.ok).toBe(true);
  });
});
