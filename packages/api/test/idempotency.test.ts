import { FakeClock } from '@concert/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { admin, client, expectAppError, key, outcome, seedSale, useApi } from '../../../test/harness.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

const HOUR = 3600_000;
type SqlClient = InstanceType<typeof pg.Client>;

describe('idempotency keys', () => {
  const clock = new FakeClock();
  const suite = useApi(BOOKING_ENV, { clock });
  const book = booking(() => suite.api.url);


  // A fresh client per call, so that calls made together are separate HTTP requests.
  const fan = (userId: number) => client(suite.api.url, { userId });
  const newUser = async (initialBalance = 0) => (await admin(suite.api.url).admin.users.create.mutate({ name: 'idem', initialBalance })).userId;
  const balanceOf = async (userId: number) => (await fan(userId).balance.get.query({})).balance;
  const ledger = async (userId: number) => (await fan(userId).balance.history.query({ limit: 100 })).entries;

  async function withSql<T>(fn: (sql: SqlClient) => Promise<T>): Promise<T> {
    const sql = new pg.Client({ connectionString: suite.db.url });
    await sql.connect();
    try {
      return await fn(sql);
    } finally {
      await sql.end();
    }
  }

  async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const keyRow = async (sql: SqlClient, userId: number, k: string) =>
    (await sql.query<{ state: string; owner: string }>('SELECT state, owner FROM idempotency_keys WHERE user_id = $1 AND key = $2', [userId, k])).rows[0];

  describe('balance.charge', () => {
    it('the same key and input replays the first result and charges once', async () => {
      const u = await newUser(1000);
      const k = key('charge');
      const first = await fan(u).balance.charge.mutate({ amount: 5000, idempotencyKey: k });
      expect(first.balance).toBe(6000);
      clock.advance(60_000);
      const again = await fan(u).balance.charge.mutate({ amount: 5000, idempotencyKey: k });
      expect(again).toEqual(first);
      expect(await balanceOf(u)).toBe(6000);
      expect(await ledger(u)).toHaveLength(2);
      // Still the first result after the balance moved on.
      await fan(u).balance.charge.mutate({ amount: 1, idempotencyKey: key() });
      expect(await fan(u).balance.charge.mutate({ amount: 5000, idempotencyKey: k })).toEqual(first);
      expect(await balanceOf(u)).toBe(6001);
    });

    it('the same key with a different amount answers IDEMPOTENCY_KEY_REUSED and charges nothing', async () => {
      const u = await newUser();
      const k = key('charge');
      await fan(u).balance.charge.mutate({ amount: 100, idempotencyKey: k });
      const err = await expectAppError(fan(u).balance.charge.mutate({ amount: 200, idempotencyKey: k }), 'IDEMPOTENCY_KEY_REUSED');
      expect(err.data?.httpStatus).toBe(422);
      expect(err.data?.code).toBe('UNPROCESSABLE_CONTENT');
      expect(await balanceOf(u)).toBe(100);
    });

    it('a call that failed releases its key: the retry runs again, with any input', async () => {
      const u = await newUser();
      const k = key('charge');
      await expectAppError(fan(u).balance.charge.mutate({ amount: 0, idempotencyKey: k }), 'INVALID_AMOUNT');
      await expectAppError(fan(u).balance.charge.mutate({ amount: 2_000_000, idempotencyKey: k }), 'CHARGE_LIMIT_EXCEEDED');
      expect((await fan(u).balance.charge.mutate({ amount: 700, idempotencyKey: k })).balance).toBe(700);
      expect(await balanceOf(u)).toBe(700);
    });

    it('a charge refused by the monthly cap runs again with its key next month', async () => {
      clock.set(Date.UTC(2032, 4, 31, 12));
      const u = await newUser();
      for (let i = 0; i < 5; i++) await fan(u).balance.charge.mutate({ amount: 1_000_000, idempotencyKey: key() });
      const k = key('charge');
      await expectAppError(fan(u).balance.charge.mutate({ amount: 10, idempotencyKey: k }), 'CHARGE_LIMIT_EXCEEDED');
      await expectAppError(fan(u).balance.charge.mutate({ amount: 10, idempotencyKey: k }), 'CHARGE_LIMIT_EXCEEDED');
      clock.set(Date.UTC(2032, 5, 1));
      expect((await fan(u).balance.charge.mutate({ amount: 10, idempotencyKey: k })).balance).toBe(5_000_010);
      expect(await fan(u).balance.charge.mutate({ amount: 10, idempotencyKey: k })).toMatchObject({ balance: 5_000_010 });
      expect(await balanceOf(u)).toBe(5_000_010);
      clock.set(Date.now());
    });

    it('keys are scoped per user', async () => {
      const [a, b] = [await newUser(), await newUser()];
      const k = key('shared');
      expect((await fan(a).balance.charge.mutate({ amount: 300, idempotencyKey: k })).userId).toBe(a);
      const rb = await fan(b).balance.charge.mutate({ amount: 400, idempotencyKey: k });
      expect(rb).toMatchObject({ userId: b, charged: 400, balance: 400 });
      expect([await balanceOf(a), await balanceOf(b)]).toEqual([300, 400]);
    });

    it('racing calls with one key charge once', async () => {
      const u = await newUser();
      const k = key('race');
      const calls = Array.from({ length: 10 }, () => fan(u).balance.charge.mutate({ amount: 1234, idempotencyKey: k }));
      const results = await Promise.allSettled(calls);
      const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(new Set(ok.map((r) => r.chargedAt.getTime())).size).toBe(1);
      const failed = await Promise.all(results.filter((r) => r.status === 'rejected').map((r) => outcome(Promise.reject(r.reason))));
      expect(failed.every((o) => o === 'IDEMPOTENCY_IN_PROGRESS')).toBe(true);
      expect(await balanceOf(u)).toBe(1234);
      expect(await ledger(u)).toHaveLength(1);
    });

    it('answers IDEMPOTENCY_IN_PROGRESS while the first call is still running', async () => {
      const u = await newUser();
      const k = key('slow');
      await withSql(async (sql) => {
        // Hold the user's row lock, so the first charge claims its key and then waits.
        await sql.query('BEGIN');
        await sql.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [u]);
        const first = fan(u).balance.charge.mutate({ amount: 900, idempotencyKey: k });
        first.catch(() => {});
        await waitFor('the first call to claim its key', async () => (await keyRow(sql, u, k))?.state === 'IN_PROGRESS');
        const err = await expectAppError(fan(u).balance.charge.mutate({ amount: 900, idempotencyKey: k }), 'IDEMPOTENCY_IN_PROGRESS');
        expect(err.data?.httpStatus).toBe(409);
        expect(err.data?.code).toBe('CONFLICT');
        // A different input is still told the key is taken.
        await expectAppError(fan(u).balance.charge.mutate({ amount: 901, idempotencyKey: k }), 'IDEMPOTENCY_KEY_REUSED');
        await sql.query('COMMIT');
        const done = await first;
        expect(done.balance).toBe(900);
        expect(await fan(u).balance.charge.mutate({ amount: 900, idempotencyKey: k })).toEqual(done);
      });
      expect(await balanceOf(u)).toBe(900);
    });

    it('a call whose lease lapsed is taken over, and only one of the two succeeds', async () => {
      const u = await newUser();
      const k = key('lease');
      const results = await withSql(async (sql) => {
        await sql.query('BEGIN');
        await sql.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [u]);
        const first = outcome(fan(u).balance.charge.mutate({ amount: 500, idempotencyKey: k }));
        await waitFor('the first call to claim its key', async () => (await keyRow(sql, u, k))?.state === 'IN_PROGRESS');
        const owner = (await keyRow(sql, u, k))!.owner;
        // The first call looks dead once its lease has run out.
        clock.advance(60_000);
        const second = outcome(fan(u).balance.charge.mutate({ amount: 500, idempotencyKey: k }));
        await waitFor('the retry to take the key over', async () => (await keyRow(sql, u, k))?.owner !== owner);
        await sql.query('COMMIT');
        return Promise.all([first, second]);
      });
      // Once the lock is gone the two race for the user's row. Whichever commits, the other fails
      // to complete a key it no longer owns and rolls back; if the retry has finished by then, the
      // superseded call answers with the key's answer (a replay), else IDEMPOTENCY_IN_PROGRESS.
      // Which of the two is timing (a busy CI machine gave the replay); either way, one charge.
      expect([['IDEMPOTENCY_IN_PROGRESS', 'OK'], ['OK', 'OK']]).toContainEqual([...results].sort());
      expect(await balanceOf(u)).toBe(500);
      expect(await ledger(u)).toHaveLength(1);
      expect((await fan(u).balance.charge.mutate({ amount: 500, idempotencyKey: k })).balance).toBe(500);
    });

    it('keys are kept at least 24 hours, sweeps included', async () => {
      const u = await newUser();
      const k = key('old');
      const first = await fan(u).balance.charge.mutate({ amount: 42, idempotencyKey: k });
      clock.advance(25 * HOUR);
      await suite.api.core.idempotency.sweep();
      expect(await fan(u).balance.charge.mutate({ amount: 42, idempotencyKey: k })).toEqual(first);
      expect(await balanceOf(u)).toBe(42);
    });

    it('a key is 8 to 100 characters of A-Za-z0-9_-:. (INVALID_INPUT otherwise)', async () => {
      const u = await newUser();
      for (const bad of ['', 'short7c', 'x'.repeat(101), 'has space', 'slash/slash', 'ünïcödé-key', 'semi;colon-key']) {
        const err = await expectAppError(fan(u).balance.charge.mutate({ amount: 1, idempotencyKey: bad }), 'INVALID_INPUT');
        expect(err.data?.httpStatus).toBe(400);
      }
      await fan(u).balance.charge.mutate({ amount: 1, idempotencyKey: 'aZ09_-:.' });
      await fan(u).balance.charge.mutate({ amount: 1, idempotencyKey: 'k'.repeat(100) });
      expect(await balanceOf(u)).toBe(2);
    });
  });

  describe('reservations.hold', () => {
    it('the same key and seats (in any order) replays the same reservation', async () => {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 10 });
      const u = userIds[0]!;
      const k = key('hold');
      const first = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [2, 1], idempotencyKey: k });
      const again = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1, 2], idempotencyKey: k });
      expect(again).toEqual(first);
      expect((await fan(u).reservations.mine.query({})).items).toHaveLength(1);
      await expectAppError((await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1, 3], idempotencyKey: k }), 'IDEMPOTENCY_KEY_REUSED');
      const other = await seedSale(suite.api.url, { users: 0 });
      await expectAppError((await book.forSchedule(u, other.scheduleId)).reservations.hold.mutate({ scheduleId: other.scheduleId, seatNumbers: [1, 2], idempotencyKey: k }), 'IDEMPOTENCY_KEY_REUSED');
      expect((await fan(u).reservations.mine.query({})).items).toHaveLength(1);
    });

    it('a hold refused for a taken seat runs again with its key once the seat is free', async () => {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 2, seatCount: 10 });
      const [u1, u2] = userIds as [number, number];
      const blocker = await (await book.forSchedule(u2, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [5], idempotencyKey: key() });
      const k = key('hold');
      await expectAppError((await book.forSchedule(u1, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [5], idempotencyKey: k }), 'SEAT_UNAVAILABLE');
      await fan(u2).reservations.cancel.mutate({ reservationId: blocker.reservationId });
      const r = await (await book.forSchedule(u1, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [5], idempotencyKey: k });
      expect(r.status).toBe('HELD');
      expect(await (await book.forSchedule(u1, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [5], idempotencyKey: k })).toEqual(r);
    });

    it('racing holds with one key make one reservation', async () => {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, seatCount: 10 });
      const u = userIds[0]!;
      const k = key('hold-race');
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, async () => (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [7], idempotencyKey: k })),
      );
      const ids = new Set(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.reservationId] : [])));
      expect(ids.size).toBe(1);
      expect((await fan(u).reservations.mine.query({})).items).toHaveLength(1);
    });
  });

  describe('payments.pay', () => {
    it('the same key replays the payment and takes the money once', async () => {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
      const u = userIds[0]!;
      const r = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
      const k = key('pay');
      const first = await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k });
      const { queueTokenExpired: _a, ...firstPayment } = first;
      clock.advance(1000);
      const again = await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k });
      const { queueTokenExpired: _b, ...againPayment } = again;
      expect(againPayment).toEqual(firstPayment);
      expect(typeof again.queueTokenExpired).toBe('boolean');
      expect(await balanceOf(u)).toBe(400_000);
      expect((await ledger(u)).filter((e) => e.kind === 'PAYMENT')).toHaveLength(1);
      // A new key is a new attempt, and this one is refused.
      await expectAppError((await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() }), 'ALREADY_PAID');
      // The key belongs to that reservation.
      const r2 = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [2], idempotencyKey: key() });
      await expectAppError((await book.forReservation(u, r2.reservationId)).payments.pay.mutate({ reservationId: r2.reservationId, idempotencyKey: k }), 'IDEMPOTENCY_KEY_REUSED');
      expect(await balanceOf(u)).toBe(400_000);
    });

    it('a replay is answered even after the payment expired the queue token it was made with', async () => {
      const { concertId, scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
      const u = userIds[0]!;
      const ticket = await fan(u).queue.enter.mutate({ concertId });
      const withToken = client(suite.api.url, { userId: u, queueToken: ticket.token });
      const r = await withToken.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key() });
      const k = key('pay');
      const first = await withToken.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k });
      expect((await withToken.queue.status.query({})).status).toBe('EXPIRED');
      const again = await withToken.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k });
      expect(again.paymentId).toBe(first.paymentId);
      expect(again.balanceAfter).toBe(400_000);
      expect(await balanceOf(u)).toBe(400_000);
    });

    it('a payment refused for want of money runs again with its key after a top-up', async () => {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 10_000 });
      const u = userIds[0]!;
      const r = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
      const k = key('pay');
      await expectAppError((await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k }), 'INSUFFICIENT_BALANCE');
      await fan(u).balance.charge.mutate({ amount: 90_000, idempotencyKey: key() });
      const p = await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k });
      expect([p.balanceBefore, p.balanceAfter]).toEqual([100_000, 0]);
    });

    it('the reservation id in other letter case is the same payment: it replays', async () => {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
      const u = userIds[0]!;
      const r = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [4], idempotencyKey: key() });
      const upper = r.reservationId.toUpperCase();
      expect(upper).not.toBe(r.reservationId);
      const k = key('pay');
      const paid = await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: upper, idempotencyKey: k });
      expect(paid.reservationId).toBe(r.reservationId);
      const again = await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k });
      expect(again.paymentId).toBe(paid.paymentId);
      expect(await balanceOf(u)).toBe(400_000);
    });

    it('the reservation id in other letter case is the same refund: it replays', async () => {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
      const u = userIds[0]!;
      const r = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [5], idempotencyKey: key() });
      await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
      const k = key('refund');
      const refunded = await fan(u).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: k });
      expect(await fan(u).reservations.refund.mutate({ reservationId: r.reservationId.toUpperCase(), idempotencyKey: k })).toEqual(refunded);
      expect(await balanceOf(u)).toBe(500_000);
    });

    it('racing payments with one key pay once', async () => {
      const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 500_000 });
      const u = userIds[0]!;
      const r = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1, 2], idempotencyKey: key() });
      const k = key('pay-race');
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, async () => (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k })),
      );
      const ids = new Set(results.flatMap((x) => (x.status === 'fulfilled' ? [x.value.paymentId] : [])));
      expect(ids.size).toBe(1);
      expect(await balanceOf(u)).toBe(300_000);
    });
  });

  it('keys are scoped per procedure', async () => {
    const { scheduleId, userIds } = await seedSale(suite.api.url, { users: 1, balance: 100_000 });
    const u = userIds[0]!;
    const k = key('everywhere');
    const r = await (await book.forSchedule(u, scheduleId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: k });
    const c = await fan(u).balance.charge.mutate({ amount: 1, idempotencyKey: k });
    expect(c.balance).toBe(100_001);
    const p = await (await book.forReservation(u, r.reservationId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k });
    expect(p.balanceAfter).toBe(1);
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await admin(suite.api.url).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
    expect(audit.ok).toBe(true);
  });
});
