/**
 * Real-concurrency races on the booking core, shared by races.test.ts (one API in this process)
 * and races.multiprocess.test.ts (two API processes on one database).
 *
 * Every call is its own HTTP request (`batch: false`); a race fires all its requests at once with
 * Promise.all and then checks the outcomes, `admin.audit`, and the rows themselves.
 * Requests are spread round-robin over `urls`, so with two URLs the racers talk to two processes.
 */
import { expect } from 'vitest';
import pg from 'pg';
import { ADMIN_KEY, client, key, outcome, tally } from '../../../test/harness.ts';

type Client = ReturnType<typeof client>;
export type SqlClient = InstanceType<typeof pg.Client>;

export interface RaceEnv {
  /** The API processes; request i goes to urls[i % urls.length]. */
  urls: string[];
  /** A direct connection to the suite's database, for checking rows. */
  sql: SqlClient;
  /** Measured wall time of each race, and outcome counts worth reporting. */
  timings: Record<string, number>;
  notes: string[];
}

/** Environment every racing API gets: admission wide enough for every racer. */
export const RACE_ENV = { QUEUE_MAX_ACTIVE: '100000', DB_POOL_SIZE: '10' };

export const urlFor = (env: RaceEnv, i: number) => env.urls[i % env.urls.length]!;
const adminOf = (url: string) => client(url, { adminKey: ADMIN_KEY }, { batch: false });

export async function connectSql(url: string): Promise<SqlClient> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

async function rows<T>(env: RaceEnv, text: string, params: unknown[] = []): Promise<T[]> {
  return (await env.sql.query(text, params)).rows as T[];
}

/** Fires every thunk at once and waits for all of them; returns the wall time in ms. */
async function race(env: RaceEnv, name: string, calls: Array<() => Promise<string>>): Promise<string[]> {
  const t0 = performance.now();
  const outcomes = await Promise.all(calls.map((call) => call()));
  const ms = Math.round(performance.now() - t0);
  env.timings[name] = ms;
  return outcomes;
}

export async function expectAuditOk(env: RaceEnv): Promise<void> {
  const audit = await adminOf(env.urls[0]!).admin.audit.query({});
  expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
  expect(audit.ok).toBe(true);
}

/** Deterministic random numbers, so a failing window layout can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An ACTIVE waiting-room token for the user and concert (admission is wide open in RACE_ENV). */
async function queueToken(url: string, userId: number, concertId: number): Promise<string> {
  let ticket = await client(url, { userId }, { batch: false }).queue.enter.mutate({ concertId });
  const deadline = Date.now() + 10_000;
  while (ticket.status === 'WAITING' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(ticket.pollAfterMs, 250)));
    ticket = await client(url, { userId, queueToken: ticket.token }, { batch: false }).queue.status.query({});
  }
  if (ticket.status !== 'ACTIVE') throw new Error(`user ${userId} was not admitted for concert ${concertId}: ${ticket.status}`);
  return ticket.token;
}

export interface Fan {
  userId: number;
  url: string;
  api: Client;
  /** The ACTIVE waiting-room token the fan's client sends (a successful payment expires it). */
  token: string;
}

/** Users made concurrently (in chunks), each with an admitted client on its own API process. */
async function makeFans(env: RaceEnv, concertId: number, n: number, balance: number, offset = 0): Promise<Fan[]> {
  const fans: Fan[] = [];
  for (let from = 0; from < n; from += 25) {
    const chunk = Array.from({ length: Math.min(25, n - from) }, (_, j) => from + j);
    fans.push(
      ...(await Promise.all(
        chunk.map(async (i) => {
          const url = urlFor(env, i + offset);
          const { userId } = await adminOf(url).admin.users.create.mutate({ name: `racer ${i}`, initialBalance: balance });
          const token = await queueToken(url, userId, concertId);
          return { userId, url, api: client(url, { userId, queueToken: token }, { batch: false }), token };
        }),
      )),
    );
  }
  return fans;
}

async function makeSchedule(env: RaceEnv, seatCount: number): Promise<{ concertId: number; scheduleId: number }> {
  const now = Date.now();
  const c = await adminOf(env.urls[0]!).admin.concerts.create.mutate({
    title: `Race ${key()}`,
    schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount }],
  });
  return { concertId: c.concertId, scheduleId: c.schedules[0]!.scheduleId };
}

// ---------------------------------------------------------------------------------------------
// 1. Many users, one seat.

export async function raceOneSeat(env: RaceEnv, users = 200): Promise<void> {
  const { concertId, scheduleId } = await makeSchedule(env, 10);
  const s0 = performance.now();
  const fans = await makeFans(env, concertId, users, 0);
  env.timings[`seeding ${users} users`] = Math.round(performance.now() - s0);
  const winners: string[] = [];
  const outcomes = await race(
    env,
    `${users} holds of one seat`,
    fans.map((f) => () => outcome(f.api.reservations.hold.mutate({ scheduleId, seatNumbers: [7], idempotencyKey: key('h1') }).then((r) => winners.push(r.reservationId)))),
  );
  expect(tally(outcomes)).toEqual({ OK: 1, SEAT_UNAVAILABLE: users - 1 });
  const a0 = performance.now();
  await expectAuditOk(env);
  env.timings['audit'] = Math.round(performance.now() - a0);

  const [winner] = winners;
  const seats = await rows<{ seat_number: number; reservation_id: string | null; sold_at: Date | null }>(
    env,
    'SELECT seat_number, reservation_id, sold_at FROM seats WHERE schedule_id = $1 AND reservation_id IS NOT NULL',
    [scheduleId],
  );
  expect(seats).toEqual([{ seat_number: 7, reservation_id: winner, sold_at: null }]);
  const res = await rows<{ id: string; status: string; seat_count: number }>(env, 'SELECT id, status, seat_count FROM reservations WHERE schedule_id = $1', [scheduleId]);
  expect(res).toEqual([{ id: winner, status: 'HELD', seat_count: 1 }]);
  expect(await rows(env, 'SELECT seat_number FROM reservation_seats WHERE schedule_id = $1', [scheduleId])).toEqual([{ seat_number: 7 }]);
  // Every loser's key was released; the winner's is DONE.
  const keys = await rows<{ state: string; n: number }>(
    env,
    `SELECT state, count(*)::int AS n FROM idempotency_keys WHERE procedure = 'reservations.hold' AND user_id = ANY($1::bigint[]) GROUP BY state`,
    [fans.map((f) => f.userId)],
  );
  expect(keys).toEqual([{ state: 'DONE', n: 1 }]);
}

// ---------------------------------------------------------------------------------------------
// 2. Overlapping multi-seat windows: all or nothing.

export async function raceSeatWindows(env: RaceEnv, users = 60, seatCount = 20, seed = Date.now() & 0xffff): Promise<void> {
  const rand = prng(seed);
  const { concertId, scheduleId } = await makeSchedule(env, seatCount);
  const fans = await makeFans(env, concertId, users, 0);
  const windows = fans.map(() => {
    const size = 2 + Math.floor(rand() * 3);
    const first = 1 + Math.floor(rand() * (seatCount - size + 1));
    return Array.from({ length: size }, (_, k) => first + k);
  });
  const got = new Map<number, { reservationId: string; seats: number[] }>();
  const outcomes = await race(
    env,
    `${users} overlapping 2-4 seat holds`,
    fans.map((f, i) => () =>
      outcome(
        f.api.reservations.hold.mutate({ scheduleId, seatNumbers: windows[i]!, idempotencyKey: key('h2') }).then((r) => {
          got.set(i, { reservationId: r.reservationId, seats: r.seats.map((s) => s.seatNumber) });
        }),
      ),
    ),
  );
  const counts = tally(outcomes);
  const context = `seed ${seed}, windows ${JSON.stringify(windows)}, outcomes ${JSON.stringify(outcomes)}`;
  expect(Object.keys(counts).filter((o) => o !== 'OK' && o !== 'SEAT_UNAVAILABLE'), context).toEqual([]);
  expect(counts.OK ?? 0, context).toBeGreaterThanOrEqual(1);

  // Every success got exactly the seats it asked for, and no seat went to two of them.
  const owner = new Map<number, string>();
  for (const [i, r] of got) {
    expect(r.seats, context).toEqual(windows[i]);
    for (const s of r.seats) {
      expect(owner.has(s), `seat ${s} in two reservations; ${context}`).toBe(false);
      owner.set(s, r.reservationId);
    }
  }
  // Every failure really met a taken seat (holds are never released here).
  outcomes.forEach((o, i) => {
    if (o === 'SEAT_UNAVAILABLE') expect(windows[i]!.some((s) => owner.has(s)), `user ${i} refused a free window; ${context}`).toBe(true);
  });
  await expectAuditOk(env);

  // The rows say the same: the seats claimed are exactly those of the successes, each by its reservation.
  const seatRows = await rows<{ seat_number: number; reservation_id: string }>(
    env,
    'SELECT seat_number, reservation_id FROM seats WHERE schedule_id = $1 AND reservation_id IS NOT NULL ORDER BY seat_number',
    [scheduleId],
  );
  expect(new Map(seatRows.map((r) => [r.seat_number, r.reservation_id]))).toEqual(owner);
  const resRows = await rows<{ id: string; status: string; seat_count: number; asked: number; claimed: number }>(
    env,
    `SELECT r.id, r.status, r.seat_count,
            (SELECT count(*)::int FROM reservation_seats rs WHERE rs.reservation_id = r.id) AS asked,
            (SELECT count(*)::int FROM seats s WHERE s.reservation_id = r.id) AS claimed
       FROM reservations r WHERE r.schedule_id = $1`,
    [scheduleId],
  );
  expect(resRows.length).toBe(got.size);
  for (const r of resRows) {
    expect(r.status).toBe('HELD');
    expect(r.asked).toBe(r.seat_count);
    expect(r.claimed).toBe(r.seat_count);
  }
  const doubled = await rows(
    env,
    `SELECT rs.seat_number FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
      WHERE rs.schedule_id = $1 AND r.status IN ('HELD', 'PAID') GROUP BY rs.seat_number HAVING count(*) > 1`,
    [scheduleId],
  );
  expect(doubled).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// 3. One reservation, many payments with different keys.

export async function racePayments(env: RaceEnv, payments = 20): Promise<void> {
  const { concertId, scheduleId } = await makeSchedule(env, 10);
  const [fan] = await makeFans(env, concertId, 1, 1_000_000);
  const { userId } = fan!;
  const held = await fan!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [2, 3], idempotencyKey: key('h3') });
  expect(held.totalPrice).toBe(200_000);
  // The same user on every process: each request its own HTTP call.
  const payers = Array.from({ length: payments }, (_, i) => client(urlFor(env, i), { userId, queueToken: fan!.token }, { batch: false }));
  const paid: Array<{ paymentId: string; balanceAfter: number }> = [];
  const outcomes = await race(
    env,
    `${payments} payments of one reservation`,
    payers.map((p) => () => outcome(p.payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: key('p3') }).then((r) => paid.push(r)))),
  );
  const counts = tally(outcomes);
  expect(counts.OK).toBe(1);
  // Keys differ, so no idempotency code may appear. The winning payment expires the payer's
  // queue token at once, so a loser that reaches the gate after that is refused there instead.
  const allowed = ['OK', 'ALREADY_PAID', 'TOKEN_EXPIRED'];
  expect(Object.keys(counts).filter((o) => !allowed.includes(o)), JSON.stringify(counts)).toEqual([]);
  env.notes.push(`${payments} payments of one reservation: ${JSON.stringify(counts)}`);
  expect(paid[0]!.balanceAfter).toBe(800_000);
  await expectAuditOk(env);

  const pay = await rows<{ id: string; amount: number }>(env, 'SELECT id, amount::int FROM payments WHERE reservation_id = $1', [held.reservationId]);
  expect(pay).toEqual([{ id: paid[0]!.paymentId, amount: 200_000 }]);
  const ledger = await rows<{ kind: string; amount: number; balance_after: number }>(
    env,
    'SELECT kind, amount::int, balance_after::int FROM ledger_entries WHERE user_id = $1 ORDER BY id',
    [userId],
  );
  expect(ledger).toEqual([
    { kind: 'CHARGE', amount: 1_000_000, balance_after: 1_000_000 },
    { kind: 'PAYMENT', amount: -200_000, balance_after: 800_000 },
  ]);
  expect(await rows(env, 'SELECT balance::int FROM users WHERE id = $1', [userId])).toEqual([{ balance: 800_000 }]);
  expect(await rows(env, 'SELECT status FROM reservations WHERE id = $1', [held.reservationId])).toEqual([{ status: 'PAID' }]);
  const tickets = await rows(env, 'SELECT seat_number, user_id::int, payment_id FROM tickets WHERE reservation_id = $1 ORDER BY seat_number', [held.reservationId]);
  expect(tickets).toEqual([2, 3].map((s) => ({ seat_number: s, user_id: userId, payment_id: paid[0]!.paymentId })));
  const seats = await rows(env, 'SELECT seat_number, reservation_id, (sold_at IS NOT NULL) AS sold FROM seats WHERE schedule_id = $1 AND reservation_id IS NOT NULL ORDER BY seat_number', [scheduleId]);
  expect(seats).toEqual([2, 3].map((s) => ({ seat_number: s, reservation_id: held.reservationId, sold: true })));
  expect((await fan!.api.balance.get.query({})).balance).toBe(800_000);
}

// ---------------------------------------------------------------------------------------------
// 4. Many charges: different keys all land; one key lands once.

export async function raceCharges(env: RaceEnv, distinct = 50, sameKey = 30): Promise<void> {
  const { concertId } = await makeSchedule(env, 1);
  const [fan] = await makeFans(env, concertId, 1, 10_000);
  const { userId } = fan!;
  const callers = Array.from({ length: Math.max(distinct, sameKey) }, (_, i) => client(urlFor(env, i), { userId }, { batch: false }));

  const amounts = Array.from({ length: distinct }, (_, i) => 1_000 + i * 7);
  const sum = amounts.reduce((a, b) => a + b, 0);
  const outcomes = await race(
    env,
    `${distinct} charges, distinct keys`,
    amounts.map((amount, i) => () => outcome(callers[i]!.balance.charge.mutate({ amount, idempotencyKey: key('c4') }))),
  );
  expect(tally(outcomes)).toEqual({ OK: distinct });
  expect((await fan!.api.balance.get.query({})).balance).toBe(10_000 + sum);
  // The ledger is one chain: each entry's balance is the one before plus its amount.
  const ledger = await rows<{ amount: number; balance_after: number }>(env, 'SELECT amount::int, balance_after::int FROM ledger_entries WHERE user_id = $1 ORDER BY id', [userId]);
  expect(ledger.length).toBe(1 + distinct);
  let running = 0;
  for (const e of ledger) {
    running += e.amount;
    expect(e.balance_after).toBe(running);
  }
  expect(ledger.slice(1).map((e) => e.amount).sort((a, b) => a - b)).toEqual(amounts);
  await expectAuditOk(env);

  const shared = key('c4-shared');
  const results: Array<{ balance: number; chargedAt: Date }> = [];
  const sameOutcomes = await race(
    env,
    `${sameKey} charges, one key`,
    callers.slice(0, sameKey).map((c) => () => outcome(c.balance.charge.mutate({ amount: 4_321, idempotencyKey: shared }).then((r) => results.push(r)))),
  );
  const counts = tally(sameOutcomes);
  expect(Object.keys(counts).filter((o) => o !== 'OK' && o !== 'IDEMPOTENCY_IN_PROGRESS'), JSON.stringify(counts)).toEqual([]);
  expect(counts.OK).toBeGreaterThanOrEqual(1);
  env.notes.push(`${sameKey} charges, one key: OK (first + replays) ${counts.OK ?? 0}, IDEMPOTENCY_IN_PROGRESS ${counts.IDEMPOTENCY_IN_PROGRESS ?? 0}`);
  // Every success is the one charge, replayed.
  const first = results[0]!;
  for (const r of results) expect(r).toEqual(first);
  expect(first.balance).toBe(10_000 + sum + 4_321);
  const after = await rows<{ n: number; total: number }>(env, 'SELECT count(*)::int AS n, sum(amount)::int AS total FROM ledger_entries WHERE user_id = $1', [userId]);
  expect(after).toEqual([{ n: 2 + distinct, total: 10_000 + sum + 4_321 }]);
  expect(await rows(env, 'SELECT balance::int FROM users WHERE id = $1', [userId])).toEqual([{ balance: 10_000 + sum + 4_321 }]);
  expect(await rows(env, `SELECT state FROM idempotency_keys WHERE user_id = $1 AND procedure = 'balance.charge' AND key = $2`, [userId, shared])).toEqual([{ state: 'DONE' }]);
  // A retry after the dust settles replays too.
  expect(await callers[0]!.balance.charge.mutate({ amount: 4_321, idempotencyKey: shared })).toEqual(first);
  await expectAuditOk(env);
}

// ---------------------------------------------------------------------------------------------
// Limits and cross-operation races: the per-user seat limit, the monthly charge cap, an
// overdraft, one hold key and one payment key fired many times (with charges landing meanwhile),
// and a payment racing a cancel.

export async function raceLimits(env: RaceEnv): Promise<void> {
  const { concertId, scheduleId } = await makeSchedule(env, 30);
  const [limited, capped, poor, keyed, canceller, releaser, ...grabbers] = await makeFans(env, concertId, 16, 250_000);
  const as = (fan: Fan, i: number) => client(urlFor(env, i), { userId: fan.userId, queueToken: fan.token }, { batch: false });

  // One user, six single-seat holds at once: the 4-seat limit holds under the race.
  const limitOutcomes = await race(
    env,
    '6 holds by one user (seat limit 4)',
    [1, 2, 3, 4, 5, 6].map((seat, i) => () => outcome(as(limited!, i).reservations.hold.mutate({ scheduleId, seatNumbers: [seat], idempotencyKey: key('l') }))),
  );
  expect(tally(limitOutcomes)).toEqual({ OK: 4, TICKET_LIMIT_EXCEEDED: 2 });
  expect(await rows(env, 'SELECT count(*)::int AS n FROM seats s JOIN reservations r ON r.id = s.reservation_id WHERE r.user_id = $1', [limited!.userId])).toEqual([{ n: 4 }]);

  // Eight top-ups of the per-transaction maximum at once: the 5,000,000 monthly cap lets five in.
  const capOutcomes = await race(
    env,
    '8 charges of 1,000,000 (monthly cap 5,000,000)',
    Array.from({ length: 8 }, (_, i) => () => outcome(as(capped!, i).balance.charge.mutate({ amount: 1_000_000, idempotencyKey: key('cap') }))),
  );
  expect(tally(capOutcomes)).toEqual({ OK: 5, CHARGE_LIMIT_EXCEEDED: 3 });
  expect(await rows(env, 'SELECT balance::int FROM users WHERE id = $1', [capped!.userId])).toEqual([{ balance: 5_250_000 }]);

  // 250,000 won pays for one of two 200,000 holds, never both, whichever is first.
  const twoHolds = await Promise.all([[11, 12], [13, 14]].map((seatNumbers) => poor!.api.reservations.hold.mutate({ scheduleId, seatNumbers, idempotencyKey: key('o') })));
  const payOutcomes = await race(
    env,
    '2 payments, balance for one',
    twoHolds.map((h, i) => () => outcome(as(poor!, i).payments.pay.mutate({ reservationId: h.reservationId, idempotencyKey: key('o') }))),
  );
  const poorCounts = tally(payOutcomes);
  expect(poorCounts.OK, JSON.stringify(poorCounts)).toBe(1);
  // The loser is refused for the money, or at the gate if the winner already expired the token.
  expect(payOutcomes.filter((o) => o !== 'OK').every((o) => o === 'INSUFFICIENT_BALANCE' || o === 'TOKEN_EXPIRED')).toBe(true);
  expect(await rows(env, 'SELECT balance::int FROM users WHERE id = $1', [poor!.userId])).toEqual([{ balance: 50_000 }]);
  expect(await rows(env, 'SELECT count(*)::int AS n FROM payments WHERE user_id = $1', [poor!.userId])).toEqual([{ n: 1 }]);

  // One hold key fired 20 times at once: one reservation; the rest replay it or are told it runs.
  const holdKey = key('same-hold');
  const replayed: string[] = [];
  const keyOutcomes = await race(
    env,
    '20 holds with one key',
    Array.from({ length: 20 }, (_, i) => () =>
      outcome(as(keyed!, i).reservations.hold.mutate({ scheduleId, seatNumbers: [21, 22], idempotencyKey: holdKey }).then((r) => replayed.push(r.reservationId))),
    ),
  );
  const keyCounts = tally(keyOutcomes);
  expect(Object.keys(keyCounts).filter((o) => o !== 'OK' && o !== 'IDEMPOTENCY_IN_PROGRESS'), JSON.stringify(keyCounts)).toEqual([]);
  expect(new Set(replayed).size).toBe(1);
  const keyedRes = await rows<{ id: string }>(env, 'SELECT id FROM reservations WHERE user_id = $1', [keyed!.userId]);
  expect(keyedRes).toEqual([{ id: replayed[0] }]);
  env.notes.push(`20 holds with one key: ${JSON.stringify(keyCounts)}`);

  // That hold paid by one key fired 20 times, while 10 top-ups land on the same wallet.
  const payKey = key('same-pay');
  const payments: string[] = [];
  const topUps = Array.from({ length: 10 }, (_, i) => 500 + i);
  const mixed = await race(env, '20 payments with one key + 10 charges, one user', [
    ...Array.from({ length: 20 }, (_, i) => () =>
      outcome(as(keyed!, i).payments.pay.mutate({ reservationId: replayed[0]!, idempotencyKey: payKey }).then((p) => payments.push(p.paymentId))).then((o) => `pay:${o}`),
    ),
    ...topUps.map((amount, i) => () => outcome(as(keyed!, i).balance.charge.mutate({ amount, idempotencyKey: key('mix') })).then((o) => `charge:${o}`)),
  ]);
  const mixedCounts = tally(mixed);
  env.notes.push(`20 payments with one key + 10 charges: ${JSON.stringify(mixedCounts)}`);
  expect(Object.keys(mixedCounts).filter((o) => !['pay:OK', 'pay:IDEMPOTENCY_IN_PROGRESS', 'charge:OK'].includes(o)), JSON.stringify(mixedCounts)).toEqual([]);
  expect(mixedCounts['charge:OK']).toBe(10);
  expect(new Set(payments).size).toBe(1);
  expect(await rows(env, 'SELECT id FROM payments WHERE reservation_id = $1', [replayed[0]])).toEqual([{ id: payments[0] }]);
  const keyedLedger = await rows<{ kind: string; amount: number; balance_after: number }>(
    env,
    'SELECT kind, amount::int, balance_after::int FROM ledger_entries WHERE user_id = $1 ORDER BY id',
    [keyed!.userId],
  );
  expect(keyedLedger.map((e) => e.kind).sort()).toEqual(['CHARGE', ...topUps.map(() => 'CHARGE'), 'PAYMENT']);
  keyedLedger.reduce((before, e) => {
    expect(e.balance_after).toBe(before + e.amount);
    return e.balance_after;
  }, 0);
  const keyedBalance = 250_000 - 200_000 + topUps.reduce((a, b) => a + b, 0);
  expect(keyedLedger.at(-1)!.balance_after).toBe(keyedBalance);
  expect(await rows(env, 'SELECT balance::int FROM users WHERE id = $1', [keyed!.userId])).toEqual([{ balance: keyedBalance }]);

  // Five payments and five cancels of one hold at once: it ends paid or cancelled, never both.
  const target = await canceller!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [25], idempotencyKey: key('pc') });
  const pcOutcomes = await race(env, '5 payments vs 5 cancels of one hold', [
    ...Array.from({ length: 5 }, (_, i) => () => outcome(as(canceller!, i).payments.pay.mutate({ reservationId: target.reservationId, idempotencyKey: key('pc') })).then((o) => `pay:${o}`)),
    ...Array.from({ length: 5 }, (_, i) => () => outcome(as(canceller!, i + 1).reservations.cancel.mutate({ reservationId: target.reservationId })).then((o) => `cancel:${o}`)),
  ]);
  const pc = tally(pcOutcomes);
  env.notes.push(`5 payments vs 5 cancels: ${JSON.stringify(pc)}`);
  const [final] = await rows<{ status: string }>(env, 'SELECT status FROM reservations WHERE id = $1', [target.reservationId]);
  const [seat] = await rows<{ reservation_id: string | null; sold: boolean }>(env, 'SELECT reservation_id, (sold_at IS NOT NULL) AS sold FROM seats WHERE schedule_id = $1 AND seat_number = 25', [scheduleId]);
  const [{ n: paidCount }] = (await rows<{ n: number }>(env, 'SELECT count(*)::int AS n FROM payments WHERE reservation_id = $1', [target.reservationId])) as [{ n: number }];
  const [{ balance }] = (await rows<{ balance: number }>(env, 'SELECT balance::int FROM users WHERE id = $1', [canceller!.userId])) as [{ balance: number }];
  if (final!.status === 'PAID') {
    expect(pc['pay:OK'], JSON.stringify(pc)).toBe(1);
    expect(Object.keys(pc).filter((o) => !['pay:OK', 'pay:ALREADY_PAID', 'cancel:ALREADY_PAID', 'pay:TOKEN_EXPIRED'].includes(o)), JSON.stringify(pc)).toEqual([]);
    expect(seat).toEqual({ reservation_id: target.reservationId, sold: true });
    expect([paidCount, balance]).toEqual([1, 150_000]);
  } else {
    expect(final!.status).toBe('CANCELLED');
    expect(pc['cancel:OK'], JSON.stringify(pc)).toBe(5);
    expect(Object.keys(pc).filter((o) => !['cancel:OK', 'pay:RESERVATION_CANCELLED'].includes(o)), JSON.stringify(pc)).toEqual([]);
    expect(seat).toEqual({ reservation_id: null, sold: false });
    expect([paidCount, balance]).toEqual([0, 250_000]);
  }

  // A cancel racing ten other users' holds of the seats it frees: at most one of them gets both.
  const freed = await releaser!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [27, 28], idempotencyKey: key('rc') });
  const grabbedBy: string[] = [];
  const rcOutcomes = await race(env, 'a cancel vs 10 holds of its seats', [
    () => outcome(as(releaser!, 0).reservations.cancel.mutate({ reservationId: freed.reservationId })).then((o) => `cancel:${o}`),
    ...grabbers.map((g, i) => () =>
      outcome(as(g, i + 1).reservations.hold.mutate({ scheduleId, seatNumbers: [27, 28], idempotencyKey: key('rc') }).then((r) => grabbedBy.push(r.reservationId))).then(
        (o) => `hold:${o}`,
      ),
    ),
  ]);
  const rc = tally(rcOutcomes);
  env.notes.push(`a cancel vs 10 holds of its seats: ${JSON.stringify(rc)}`);
  expect(rc['cancel:OK']).toBe(1);
  expect(Object.keys(rc).filter((o) => !['cancel:OK', 'hold:OK', 'hold:SEAT_UNAVAILABLE'].includes(o)), JSON.stringify(rc)).toEqual([]);
  expect(grabbedBy.length).toBeLessThanOrEqual(1);
  const freedSeats = await rows(env, 'SELECT seat_number, reservation_id FROM seats WHERE schedule_id = $1 AND seat_number IN (27, 28) ORDER BY seat_number', [scheduleId]);
  expect(freedSeats).toEqual([27, 28].map((n) => ({ seat_number: n, reservation_id: grabbedBy[0] ?? null })));
  await expectAuditOk(env);
}

// ---------------------------------------------------------------------------------------------
// 5. A payment racing its hold's expiry, against other users grabbing the seats as it lapses.

export async function raceExpiry(
  env: RaceEnv,
  opts: { waves: number; roundsPerWave: number; challengers: number; /** The background sweep, fired at each expiry too. */ sweep?: () => Promise<unknown> },
): Promise<void> {
  const { waves, roundsPerWave, challengers, sweep } = opts;
  const rounds = waves * roundsPerWave;
  const { concertId, scheduleId } = await makeSchedule(env, rounds * 2);
  const perRound = 1 + challengers;
  const fans = await makeFans(env, concertId, rounds * perRound, 1_000_000);
  const summary: Record<string, number> = {};
  const t0 = performance.now();
  for (let w = 0; w < waves; w++) {
    const idx = Array.from({ length: roundsPerWave }, (_, j) => w * roundsPerWave + j);
    // The payers hold at once, so their holds lapse together.
    const holds = await Promise.all(
      idx.map((r) => fans[r * perRound]!.api.reservations.hold.mutate({ scheduleId, seatNumbers: [2 * r + 1, 2 * r + 2], idempotencyKey: key('h5') })),
    );
    const ttl = holds[0]!.holdExpiresAt.getTime() - holds[0]!.createdAt.getTime();
    expect(ttl).toBeLessThanOrEqual(1_000);
    const at = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms - Date.now())));
    const results = await Promise.all(
      idx.map(async (r, j) => {
        const hold = holds[j]!;
        const expiry = hold.holdExpiresAt.getTime();
        const payer = fans[r * perRound]!;
        // Payments land from 60 ms before to 20 ms after the expiry instant; the challengers ask
        // just after it (so the seats are theirs unless the payment sold them first).
        const payAt = expiry - 60 + Math.round((80 * j) / Math.max(1, roundsPerWave - 1));
        let payment: { paymentId: string } | undefined;
        const pay = at(payAt).then(() =>
          outcome(payer.api.payments.pay.mutate({ reservationId: hold.reservationId, idempotencyKey: key('p5') }).then((p) => (payment = p))),
        );
        const grabs = Array.from({ length: challengers }, async (_, k) => {
          const c = fans[r * perRound + 1 + k]!;
          await at(expiry + 2 + k);
          let won: string | undefined;
          const o = await outcome(
            c.api.reservations.hold.mutate({ scheduleId, seatNumbers: [2 * r + 1, 2 * r + 2], idempotencyKey: key('h5c') }).then((x) => (won = x.reservationId)),
          );
          return { o, won, userId: c.userId };
        });
        const sweeping = sweep ? at(expiry + 1).then(sweep) : undefined;
        const [payOutcome, ...grabbed] = await Promise.all([pay, ...grabs]);
        await sweeping;
        return { r, hold, payer, payOutcome: payOutcome as string, payment, grabbed: grabbed as Array<{ o: string; won: string | undefined; userId: number }> };
      }),
    );

    for (const { r, hold, payer, payOutcome, payment, grabbed } of results) {
      const tag = `round ${r}: pay ${payOutcome}, grabs ${grabbed.map((g) => g.o).join(',')}`;
      summary[`pay ${payOutcome}`] = (summary[`pay ${payOutcome}`] ?? 0) + 1;
      const winners = grabbed.filter((g) => g.o === 'OK');
      expect(grabbed.every((g) => g.o === 'OK' || g.o === 'SEAT_UNAVAILABLE'), tag).toBe(true);
      const seats = await rows<{ seat_number: number; reservation_id: string | null; sold: boolean }>(
        env,
        'SELECT seat_number, reservation_id, (sold_at IS NOT NULL) AS sold FROM seats WHERE schedule_id = $1 AND seat_number = ANY($2::int[]) ORDER BY seat_number',
        [scheduleId, [2 * r + 1, 2 * r + 2]],
      );
      const pays = await rows<{ id: string }>(env, 'SELECT id FROM payments WHERE reservation_id = $1', [hold.reservationId]);
      const tickets = await rows<{ seat_number: number; user_id: number }>(env, 'SELECT seat_number, user_id::int FROM tickets WHERE reservation_id = $1 ORDER BY seat_number', [hold.reservationId]);
      if (payOutcome === 'OK') {
        // Sold to the payer: nobody else got the seats.
        expect(winners, tag).toEqual([]);
        expect(seats.map((s) => ({ ...s })), tag).toEqual([2 * r + 1, 2 * r + 2].map((n) => ({ seat_number: n, reservation_id: hold.reservationId, sold: true })));
        expect(pays, tag).toEqual([{ id: payment!.paymentId }]);
        expect(tickets, tag).toEqual([2 * r + 1, 2 * r + 2].map((n) => ({ seat_number: n, user_id: payer.userId })));
        expect((await payer.api.reservations.get.query({ reservationId: hold.reservationId })).status, tag).toBe('PAID');
      } else {
        // The hold lapsed first: exactly one challenger holds both seats, and no money moved.
        expect(payOutcome, tag).toBe('HOLD_EXPIRED');
        expect(winners.length, tag).toBe(1);
        // The winner's own (one-second) hold may have lapsed and been swept since (the sweep runs
        // every second so that lapsed seats reach the waitlist within two): then they are free.
        // (One statement, so the seats and the winner's status are read at one instant.)
        const now = await rows<{ seat_number: number; reservation_id: string | null; sold: boolean; won: string }>(
          env,
          `SELECT seat_number, reservation_id, (sold_at IS NOT NULL) AS sold, (SELECT status FROM reservations WHERE id = $3) AS won
             FROM seats WHERE schedule_id = $1 AND seat_number = ANY($2::int[]) ORDER BY seat_number`,
          [scheduleId, [2 * r + 1, 2 * r + 2], winners[0]!.won],
        );
        const holder = now[0]?.won === 'EXPIRED' ? null : winners[0]!.won;
        expect(
          now.map(({ won: _won, ...seat }) => seat),
          tag,
        ).toEqual([2 * r + 1, 2 * r + 2].map((n) => ({ seat_number: n, reservation_id: holder, sold: false })));
        expect(pays, tag).toEqual([]);
        expect(tickets, tag).toEqual([]);
        expect((await payer.api.balance.get.query({})).balance, tag).toBe(1_000_000);
        expect((await payer.api.reservations.get.query({ reservationId: hold.reservationId })).status, tag).toBe('EXPIRED');
      }
    }
  }
  env.timings[`${rounds} pay-vs-expiry rounds (${waves} waves)`] = Math.round(performance.now() - t0);
  env.notes.push(`pay-vs-expiry: ${JSON.stringify(summary)}`);
  expect(Object.values(summary).reduce((a, b) => a + b, 0)).toBe(rounds);

  // Never a payment without its seats, anywhere in the database.
  const orphan = await rows(
    env,
    `SELECT p.id FROM payments p JOIN reservations r ON r.id = p.reservation_id
      WHERE r.status <> 'PAID' OR (SELECT count(*) FROM tickets t WHERE t.payment_id = p.id) <> r.seat_count
         OR (SELECT count(*) FROM seats s WHERE s.reservation_id = r.id AND s.sold_at IS NOT NULL) <> r.seat_count`,
  );
  expect(orphan).toEqual([]);
  await expectAuditOk(env);
}

export function printTimings(title: string, env: RaceEnv): void {
  const lines = [...Object.entries(env.timings).map(([k, v]) => `${k}: ${v} ms`), ...env.notes];
  console.log(`[${title}]\n  ${lines.join('\n  ')}`);
}
