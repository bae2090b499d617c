import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCore, loadConfig } from '@concert/core';
import { client, createTestDatabase, key, outcome, type SpawnedApi, spawnApi, tally, testEnv } from '../../../test/harness.ts';
import { admitted, makeShow } from './aftersale.shared.ts';
import { recomputeBooks } from './money.books.ts';
import { moneyRig } from './money.shared.ts';
import { raceExpiry } from './races.shared.ts';

/**
 * Money races the other suites do not combine, over API processes behind PgBouncer (transaction
 * pooling): a process killed inside a payment's transaction and the retry on another; one key
 * sent to two processes at once with different bodies; refunds racing payment replays, operator
 * refunds and the show's cancellation. After each: admin.audit and the books from the rows.
 */
describe('money races: API processes through PgBouncer', () => {
  const rig = moneyRig('moneyraces');
  const { url, adminAt } = rig;
  let sql: InstanceType<typeof pg.Client>;
  let env: Record<string, string>;
  const rows = async <T,>(text: string, params: unknown[] = []) => (await sql.query(text, params)).rows as T[];
  const until = async (what: string, cond: () => Promise<boolean>, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const booksBalance = async () => {
    const audit = await adminAt(0).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
    expect(await recomputeBooks(sql)).toEqual([]);
  };

  /**
   * Whether some statement waits on the lock `blocker` holds. (It read any row-lock wait of the
   * cluster from pg_locks: a wait in another suite's database, run beside this one, passed for the
   * payment's, the process was killed before its payment had claimed its key, and the retry then
   * ran and waited on the test's lock until the statement timeout: INTERNAL.)
   */
  const waitsOn = async (blocker: InstanceType<typeof pg.Client>) => {
    const pid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    return async () => (await rows<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))`, [pid]))[0]!.n > 0;
  };

  beforeAll(() => {
    ({ sql, env } = rig);
  });

  it('a process SIGKILLed inside a payment’s transaction: the retry on another process pays once, after the lease', { timeout: 120_000 }, async () => {
    const victim = await spawnApi(env);
    try {
      const { concertId, scheduleId, userIds } = await makeShow(url(0), 4, 1, 300_000);
      const u = userIds[0]!;
      const onVictim = await admitted(victim.url, u, concertId);
      const r = await onVictim.reservations.hold.mutate({ scheduleId, seatNumbers: [1, 2], idempotencyKey: key() });
      const payKey = key('pk');
      // The payer's row locked from outside: the payment takes its reservation's lock, then waits here.
      const blocker = new pg.Client({ connectionString: rig.db.url });
      await blocker.connect();
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [u]);
      const first = outcome(onVictim.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey }));
      await until('the payment to wait on the payer’s lock', await waitsOn(blocker));
      victim.child.kill('SIGKILL');
      await victim.stop();
      expect(await first).not.toBe('OK');
      // The retry on a survivor while the dead call's lease runs: told it is in progress.
      const again = await admitted(url(1), u, concertId);
      expect(await outcome(again.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey }))).toBe('IDEMPOTENCY_IN_PROGRESS');
      await blocker.query('ROLLBACK');
      await blocker.end();
      // After the lease, the retry runs and pays once; replays on both processes answer the same payment.
      let paid: string | undefined;
      await until(
        'the lease to lapse and the retry to pay',
        async () => {
          const o = await outcome(again.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey }).then((p) => (paid = p.paymentId)));
          if (o !== 'OK' && o !== 'IDEMPOTENCY_IN_PROGRESS') throw new Error(`retry answered ${o}`);
          return o === 'OK';
        },
        40_000,
      );
      const replays = await Promise.all([0, 1].map((i) => client(url(i), { userId: u }, { batch: false }).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey })));
      expect(replays.map((p) => p.paymentId)).toEqual([paid, paid]);
      expect(await rows(`SELECT id FROM payments WHERE reservation_id = $1`, [r.reservationId])).toEqual([{ id: paid }]);
      expect(await rows(`SELECT balance::int FROM users WHERE id = $1`, [u])).toEqual([{ balance: 100_000 }]);
      await booksBalance();
    } finally {
      await victim.stop('SIGKILL');
    }
  });

  // A statement cancelled by the database's statement timeout (10 s) answered INTERNAL, a 500 for
  // what is the database being too busy: it is SERVICE_UNAVAILABLE (retry), and the retry pays.
  it('a payment waiting on a lock past the statement timeout is SERVICE_UNAVAILABLE, and its retry pays once', { timeout: 120_000 }, async () => {
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 4, 1, 300_000);
    const u = userIds[0]!;
    const fan = await admitted(url(0), u, concertId);
    const r = await fan.reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    const payKey = key('pk');
    const blocker = new pg.Client({ connectionString: rig.db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [u]);
      const first = outcome(fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey }));
      await until('the payment to wait on the payer’s lock', await waitsOn(blocker));
      expect(await first).toBe('SERVICE_UNAVAILABLE');
      await blocker.query('ROLLBACK');
    } finally {
      await blocker.end();
    }
    const paid = await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: payKey });
    expect(await rows(`SELECT id FROM payments WHERE reservation_id = $1`, [r.reservationId])).toEqual([{ id: paid.paymentId }]);
    await booksBalance();
  });

  it('one key sent to two processes at once with different bodies: at most one of them runs', { timeout: 120_000 }, async () => {
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 40, 10, 1_000_000);
    const counts: string[] = [];
    for (const u of userIds) {
      const fans = await Promise.all([0, 1].map((p) => admitted(url(u + p), u, concertId)));
      const holds = await Promise.all([[1], [2]].map((seats, i) => fans[i]!.reservations.hold.mutate({ scheduleId, seatNumbers: [(u % 10) * 4 + seats[0]!], idempotencyKey: key() })));
      // Pay: one key, two reservations.
      const pk = key('pk');
      const pays = await Promise.all(holds.map((h, i) => outcome(fans[i]!.payments.pay.mutate({ reservationId: h.reservationId, idempotencyKey: pk }))));
      counts.push(...pays.map((o) => `pay:${o}`));
      expect(pays.filter((o) => o === 'OK').length, JSON.stringify(pays)).toBeLessThanOrEqual(1);
      expect(pays.every((o) => ['OK', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_IN_PROGRESS'].includes(o)), JSON.stringify(pays)).toBe(true);
      // Charge: one key, two amounts.
      const ck = key('ck');
      const charges = await Promise.all([1_000, 2_000].map((amount, i) => outcome(fans[i]!.balance.charge.mutate({ amount, idempotencyKey: ck }))));
      counts.push(...charges.map((o) => `charge:${o}`));
      expect(charges.filter((o) => o === 'OK').length, JSON.stringify(charges)).toBeLessThanOrEqual(1);
      // Refund: one key, two reservations (paying the second first, with its own key).
      const unpaid = holds.find((_, i) => pays[i] !== 'OK')!;
      const fresh = await admitted(url(u), u, concertId);
      await fresh.payments.pay.mutate({ reservationId: unpaid.reservationId, idempotencyKey: key() }).catch(() => {});
      const rk = key('rk');
      const refunds = await Promise.all(holds.map((h, i) => outcome(client(url(u + i), { userId: u }, { batch: false }).reservations.refund.mutate({ reservationId: h.reservationId, idempotencyKey: rk }))));
      counts.push(...refunds.map((o) => `refund:${o}`));
      expect(refunds.filter((o) => o === 'OK').length, JSON.stringify(refunds)).toBeLessThanOrEqual(1);
    }
    console.log(`[one key, two bodies] ${JSON.stringify(tally(counts))}`);
    await booksBalance();
  });

  it('a refund racing its payment’s replays, an operator refund, a second buyer refund and the show’s cancellation', { timeout: 120_000 }, async () => {
    const counts: string[] = [];
    for (let round = 0; round < 6; round++) {
      const { concertId, scheduleId, userIds } = await makeShow(url(round), 8, 3, 500_000);
      const paid: Array<{ u: number; reservationId: string; payKey: string }> = [];
      for (const [i, u] of userIds.entries()) {
        const fan = await admitted(url(i), u, concertId);
        const h = await fan.reservations.hold.mutate({ scheduleId, seatNumbers: [2 * i + 1, 2 * i + 2], idempotencyKey: key() });
        const payKey = key('pk');
        await fan.payments.pay.mutate({ reservationId: h.reservationId, idempotencyKey: payKey });
        paid.push({ u, reservationId: h.reservationId, payKey });
      }
      const calls: Array<Promise<string>> = [];
      for (const [i, p] of paid.entries()) {
        const rk = key('rk');
        for (const proc of [0, 1]) {
          const who = client(url(i + proc), { userId: p.u }, { batch: false });
          calls.push(outcome(who.reservations.refund.mutate({ reservationId: p.reservationId, idempotencyKey: rk })).then((o) => `refund:${o}`));
          calls.push(outcome(who.payments.pay.mutate({ reservationId: p.reservationId, idempotencyKey: p.payKey })).then((o) => `replay:${o}`));
        }
        calls.push(outcome(adminAt(i).admin.reservations.refund.mutate({ reservationId: p.reservationId })).then((o) => `adminrefund:${o}`));
      }
      calls.push(...[0, 1].map((proc) => outcome(adminAt(round + proc).admin.schedules.cancel.mutate({ scheduleId })).then((o) => `showcancel:${o}`)));
      const got = await Promise.all(calls);
      counts.push(...got);
      expect(got.filter((o) => /INTERNAL|HTTP_5/.test(o))).toEqual([]);
      for (const p of paid) {
        expect(await rows(`SELECT status FROM reservations WHERE id = $1`, [p.reservationId])).toEqual([{ status: 'REFUNDED' }]);
        expect(await rows(`SELECT balance::int FROM users WHERE id = $1`, [p.u])).toEqual([{ balance: 500_000 }]);
      }
      await booksBalance();
    }
    console.log(`[refund races] ${JSON.stringify(tally(counts))}`);
  });

  it('payments racing their one-second holds’ lapse, on two processes whose clocks are 10 s apart, through PgBouncer', { timeout: 240_000 }, async () => {
    // A database of its own: raceExpiry's last check reads every payment, and the other cases here refund some.
    const fresh = await createTestDatabase();
    await (await createCore(loadConfig(testEnv(fresh.url)))).close();
    const freshSql = new pg.Client({ connectionString: fresh.url });
    await freshSql.connect();
    const skewed: SpawnedApi[] = [];
    try {
      const freshEnv = testEnv(rig.bouncer.via(fresh.url), { ...env, DATABASE_URL: rig.bouncer.via(fresh.url), HOLD_TTL_SECONDS: '1' });
      for (const offset of ['5000', '-5000']) skewed.push(await spawnApi({ ...freshEnv, CLOCK_OFFSET_MS: offset }));
      await raceExpiry({ urls: skewed.map((a) => a.url), sql: freshSql, timings: {}, notes: [] }, { waves: 2, roundsPerWave: 8, challengers: 2 });
      expect(await recomputeBooks(freshSql)).toEqual([]);
    } finally {
      await Promise.all(skewed.map((a) => a.stop()));
      await freshSql.end();
      await fresh.drop();
    }
  });

  it('paying a refunded reservation again, with a new key, within its hold time: ALREADY_PAID, whatever the balance', async () => {
    // Seen: HOLD_EXPIRED for the one who could afford it, INSUFFICIENT_BALANCE (top up to pay for
    // what you were refunded) for the one who could not; only the seats' state stopped the sale.
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 4, 2, 100_000);
    const outcomes: string[] = [];
    for (const [i, u] of userIds.entries()) {
      const fan = await admitted(url(i), u, concertId);
      const r = await fan.reservations.hold.mutate({ scheduleId, seatNumbers: [2 * i + 1], idempotencyKey: key() });
      await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
      await client(url(i + 1), { userId: u }, { batch: false }).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
      if (i === 1) {
        // The second spends the refund on another seat first: too poor to pay the first one twice.
        const other = await admitted(url(i), u, concertId);
        const h = await other.reservations.hold.mutate({ scheduleId, seatNumbers: [2 * i + 2], idempotencyKey: key() });
        await other.payments.pay.mutate({ reservationId: h.reservationId, idempotencyKey: key() });
      }
      const again = await admitted(url(i), u, concertId);
      outcomes.push(await outcome(again.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() })));
    }
    expect(outcomes).toEqual(['ALREADY_PAID', 'ALREADY_PAID']);
    await booksBalance();
  });

  it('cancelling or releasing a refunded reservation is ALREADY_PAID, as for a paid one', async () => {
    // Seen: 200 with the reservation still REFUNDED, an answer that says "cancelled" to a client.
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 2, 1, 200_000);
    const u = userIds[0]!;
    const fan = await admitted(url(0), u, concertId);
    const r = await fan.reservations.hold.mutate({ scheduleId, seatNumbers: [1], idempotencyKey: key() });
    await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    await client(url(1), { userId: u }, { batch: false }).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    const outcomes = await Promise.all([
      outcome(client(url(0), { userId: u }, { batch: false }).reservations.cancel.mutate({ reservationId: r.reservationId })),
      outcome(adminAt(1).admin.holds.release.mutate({ reservationId: r.reservationId })),
    ]);
    expect(outcomes).toEqual(['ALREADY_PAID', 'ALREADY_PAID']);
    expect(await rows(`SELECT status FROM reservations WHERE id = $1`, [r.reservationId])).toEqual([{ status: 'REFUNDED' }]);
    await booksBalance();
  });

  it('a show cancelled while a cancel on another process offers the freed seats to the waitlist: nothing stays held, the books balance', async () => {
    const lockWaits = async () => (await rows<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))[0]!.n;
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 3, 3, 500_000);
    const [h, p, w] = userIds as [number, number, number];
    const held = await (await admitted(url(0), h, concertId)).reservations.hold.mutate({ scheduleId, seatNumbers: [1, 2], idempotencyKey: key() });
    const buyer = await admitted(url(1), p, concertId);
    const bought = await buyer.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key() });
    await buyer.payments.pay.mutate({ reservationId: bought.reservationId, idempotencyKey: key() });
    expect((await client(url(0), { userId: w }, { batch: false }).waitlist.join.mutate({ scheduleId, seatCount: 2 })).status).toBe('WAITING');

    const blocker = new pg.Client({ connectionString: rig.db.url });
    await blocker.connect();
    let cancel: Promise<string> | undefined;
    let showCancel: Promise<unknown> | undefined;
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE', [held.reservationId]);
      // H's cancel queues first for the hold's row; the show's cancellation, on the other process, behind it.
      cancel = outcome(client(url(0), { userId: h }, { batch: false }).reservations.cancel.mutate({ reservationId: held.reservationId }));
      await until('the cancel to wait', async () => (await lockWaits()) === 1);
      showCancel = adminAt(1).admin.schedules.cancel.mutate({ scheduleId });
      showCancel.catch(() => {});
      await until('the show’s cancellation to wait', async () => (await lockWaits()) === 2);
      await blocker.query('COMMIT');
    } finally {
      await blocker.end();
    }
    expect(await cancel).toBe('OK');
    const result = (await showCancel) as { refunded: number; released: number };
    expect(result.refunded).toBe(1);
    expect(await rows(`SELECT seat_number FROM seats WHERE schedule_id = $1 AND reservation_id IS NOT NULL`, [scheduleId])).toEqual([]);
    expect(await rows(`SELECT id FROM reservations WHERE schedule_id = $1 AND status IN ('HELD', 'PAID')`, [scheduleId])).toEqual([]);
    expect(await rows(`SELECT status FROM waitlist_entries WHERE schedule_id = $1`, [scheduleId])).toEqual([{ status: 'LAPSED' }]);
    expect(await rows(`SELECT balance::int FROM users WHERE id = ANY($1::bigint[]) ORDER BY id`, [[h, p, w]])).toEqual([{ balance: 500_000 }, { balance: 500_000 }, { balance: 500_000 }]);
    const offered = await rows<{ n: number }>(`SELECT count(*)::int AS n FROM outbox_events WHERE schedule_id = $1 AND type = 'waitlist.offered'`, [scheduleId]);
    console.log(`[cancel vs show cancel] show cancel ${JSON.stringify(result)}, waitlist offers made ${offered[0]!.n}`);
    await booksBalance();
  });

  it('the 4-seat limit: one user’s holds on two processes racing the waitlist offers that cancels elsewhere make to them', { timeout: 120_000 }, async () => {
    const counts: string[] = [];
    for (let round = 0; round < 5; round++) {
      const { concertId, scheduleId, userIds } = await makeShow(url(round), 8, 4, 1_000_000);
      const [u, ...others] = userIds as [number, number, number, number];
      const uApi = await admitted(url(0), u, concertId);
      const own = await uApi.reservations.hold.mutate({ scheduleId, seatNumbers: [1, 2], idempotencyKey: key() });
      await uApi.payments.pay.mutate({ reservationId: own.reservationId, idempotencyKey: key() });
      // U's new token, taken while seats are on sale (nobody is admitted while every seat is held).
      const uOn = await Promise.all([0, 1].map((p) => admitted(url(p), u, concertId)));
      // The other six seats held by three others: sold out but for holds, so U may join for 2 more.
      const holds = await Promise.all(others.map(async (o, i) => (await admitted(url(i), o, concertId)).reservations.hold.mutate({ scheduleId, seatNumbers: [3 + 2 * i, 4 + 2 * i], idempotencyKey: key() })));
      expect((await client(url(1), { userId: u }, { batch: false }).waitlist.join.mutate({ scheduleId, seatCount: 2 })).status).toBe('WAITING');
      const got = await Promise.all([
        ...holds.map((h, i) => outcome(client(url(i + 1), { userId: others[i]! }, { batch: false }).reservations.cancel.mutate({ reservationId: h.reservationId })).then((o) => `cancel:${o}`)),
        ...[3, 4, 5, 6, 7, 8].map((seat, i) => outcome(uOn[i % 2]!.reservations.hold.mutate({ scheduleId, seatNumbers: [seat], idempotencyKey: key() })).then((o) => `hold:${o}`)),
      ]);
      counts.push(...got);
      const live = await rows<{ n: number }>(
        `SELECT coalesce(sum(seat_count), 0)::int AS n FROM reservations WHERE user_id = $1 AND schedule_id = $2 AND (status = 'PAID' OR (status = 'HELD' AND hold_expires_at > now()))`,
        [u, scheduleId],
      );
      expect(live[0]!.n, JSON.stringify(got)).toBeLessThanOrEqual(4);
      const offers = await rows<{ n: number }>(`SELECT count(*)::int AS n FROM outbox_events WHERE schedule_id = $1 AND type = 'waitlist.offered'`, [scheduleId]);
      counts.push(`offers:${offers[0]!.n}`, `live:${live[0]!.n}`);
      await booksBalance();
    }
    console.log(`[limit vs offers] ${JSON.stringify(tally(counts))}`);
  });
});
