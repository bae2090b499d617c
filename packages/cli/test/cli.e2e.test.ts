import { setMaxListeners } from 'node:events';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionPath } from '../src/session.ts';
import { admin as harnessAdmin } from '../../../test/harness.ts';
import { ADMIN_KEY, concert, concertLive, concertSlowReader, fakeTerminal, tempConfigDir, type CliSuite, startCliSuite } from './helpers.ts';

// The built `concert` binary, as scripts run it, against the API as its own process on the real
// PostgreSQL and Redis, with the waiting-room gate on.
let suite: CliSuite | undefined;
let api: CliSuite['api'];
let cfg: CliSuite['cfg'];
let env: CliSuite['env'];
const admin = (...args: string[]) => concert(['--admin-key', ADMIN_KEY, '--json', ...args], env);

/** Setup straight through the typed client (the operator commands have a test of their own). */
async function newSale(opts: { seats?: number; users?: number; balance?: number } = {}) {
  const a = harnessAdmin(api.url);
  const now = Date.now();
  const seats = opts.seats ?? 20;
  const c = await a.admin.concerts.create.mutate({
    title: 'Test Sale',
    venue: 'Hall',
    schedules: [
      {
        startsAt: new Date(now + 7 * 86_400_000),
        bookingOpensAt: new Date(now - 3_600_000),
        seatCount: seats,
        tiers: [
          { grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 4 },
          { grade: 'R', price: 100_000, fromSeat: 5, toSeat: seats },
        ],
      },
    ],
  });
  const userIds = await Promise.all(Array.from({ length: opts.users ?? 1 }, async (_, i) => (await a.admin.users.create.mutate({ name: `fan ${i}`, initialBalance: opts.balance ?? 0 })).userId));
  return { concertId: c.concertId, scheduleId: c.schedules[0]!.scheduleId, userIds };
}

beforeAll(async () => {
  suite = await startCliSuite();
  ({ api, cfg, env } = suite);
});

afterAll(() => suite?.stop());

describe('concert (built binary) against a real server', () => {
  it('a script books a seat with --json: join → seats → hold → charge → pay → reservation', async () => {
    const { concertId, scheduleId, userIds } = await newSale({ balance: 0 });
    const as = (...args: string[]) => concert(['--user', String(userIds[0]), '--json', ...args], env);

    const join = await as('queue', 'join', String(concertId), '--wait');
    expect(join.code, join.stderr).toBe(0);
    expect(join.stderr).toBe('');
    expect(join.json()).toMatchObject({ concertId, status: 'ACTIVE', position: null });

    const seats = await as('seats', String(scheduleId));
    expect(seats.code, seats.stderr).toBe(0);
    const map = seats.json<{ seats: Array<{ seatNumber: number; status: string; grade: string; price: number }> }>();
    expect(map.seats).toHaveLength(20);
    expect(map.seats[0]).toEqual({ seatNumber: 1, grade: 'VIP', price: 150_000, status: 'AVAILABLE' });

    const hold = await as('hold', String(scheduleId), '1', '5');
    expect(hold.code, hold.stderr).toBe(0);
    const reservation = hold.json<{ reservationId: string; totalPrice: number; status: string; holdExpiresAt: string }>();
    expect(reservation).toMatchObject({ status: 'HELD', totalPrice: 250_000 });
    expect(new Date(reservation.holdExpiresAt).getTime()).toBeGreaterThan(Date.now());

    const short = await as('pay', reservation.reservationId);
    expect(short.code).toBe(1);
    expect(short.stdout).toBe('');
    expect(short.error()).toMatchObject({ code: 'PAYMENT_REQUIRED', appCode: 'INSUFFICIENT_BALANCE' });

    const charge = await as('charge', '250,000');
    expect(charge.code, charge.stderr).toBe(0);
    expect(charge.json()).toMatchObject({ charged: 250_000, balance: 250_000 });

    const pay = await as('pay', reservation.reservationId, '--idempotency-key', 'script-pay-0001');
    expect(pay.code, pay.stderr).toBe(0);
    expect(pay.json()).toMatchObject({ reservationId: reservation.reservationId, amount: 250_000, status: 'COMPLETED', balanceAfter: 0, queueTokenExpired: true });
    // A retry with the same key returns the same payment, even though the queue token is spent.
    const again = await as('pay', reservation.reservationId, '--idempotency-key', 'script-pay-0001');
    expect(again.code, again.stderr).toBe(0);
    expect(again.json().paymentId).toBe(pay.json().paymentId);

    const got = await as('reservation', reservation.reservationId);
    expect(got.code).toBe(0);
    expect(got.json()).toMatchObject({ status: 'PAID', seats: [{ seatNumber: 1 }, { seatNumber: 5 }] });
    const history = await as('history');
    expect(history.json().entries.map((e: { kind: string }) => e.kind)).toEqual(['PAYMENT', 'CHARGE']);

    // Human output of the same things: tables, won, time left.
    const human = await concert(['--user', String(userIds[0]), 'reservations'], env);
    expect(human.stdout).toContain('₩250,000');
    expect(human.stdout).toMatch(/│ PAID\s+│ paid \d{4}-\d\d-\d\d/);
    expect(human.stdout).not.toContain('\x1b[');
  });

  it('the session file chains commands per API, user and concert, and is private', async () => {
    const { concertId, scheduleId, userIds } = await newSale({ users: 2, balance: 1_000_000 });
    const [a, b] = userIds.map(String) as [string, string];
    expect((await concert(['--user', a, 'queue', 'join', String(concertId)], env)).code).toBe(0);

    const file = sessionPath(env);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // User A's token is found without being passed; user B has none.
    expect((await concert(['--user', a, '--json', 'seats', String(scheduleId)], env)).code).toBe(0);
    const other = await concert(['--user', b, '--json', 'seats', String(scheduleId)], env);
    expect(other.code).toBe(1);
    expect(other.error().appCode).toBe('TOKEN_INVALID');
    const status = await concert(['--user', b, '--json', 'queue', 'status', String(concertId)], env);
    expect(status.code).toBe(2);
    expect(status.error().message).toContain(`No queue token saved for concert ${concertId}`);
    // Another config dir is another session: no token there.
    const elsewhere = tempConfigDir();
    const fresh = await concert(['--user', a, '--json', 'seats', String(scheduleId)], { ...env, CONCERT_CONFIG_DIR: elsewhere.dir });
    elsewhere.remove();
    expect(fresh.error().appCode).toBe('TOKEN_INVALID');

    const hold = await concert(['--user', a, '--json', 'hold', String(scheduleId), '2,3'], env);
    expect(hold.code, hold.stderr).toBe(0);
    const pay = await concert(['--user', a, '--json', 'pay', hold.json().reservationId], env);
    expect(pay.code, pay.stderr).toBe(0);
    // Paying spends the token, and the session forgets it.
    const after = await concert(['--user', a, '--json', 'queue', 'status', String(concertId)], env);
    expect(after.code).toBe(2);

    // Leaving frees the place and forgets the token too.
    expect((await concert(['--user', b, 'queue', 'join', String(concertId)], env)).code).toBe(0);
    const leave = await concert(['--user', b, '--json', 'queue', 'leave', String(concertId)], env);
    expect(leave.json()).toEqual({ left: true, concertId });
    expect((await concert(['--user', b, 'queue', 'status', String(concertId)], env)).code).toBe(2);
  });

  it('queue status twice in a row answers twice: the second waits out the line\'s pace instead of failing RATE_LIMITED', async () => {
    const { concertId, userIds } = await newSale({ users: 1 });
    const a = String(userIds[0]);
    // An ACTIVE ticket with 40 s left is told to look again in 20 s, and a look sooner than half
    // of that is turned away (RATE_LIMITED, about 10 s): what a script's second `status` ran into.
    // (10 s leaves room for a slow machine's CLI start between the two looks.)
    expect((await admin('admin', 'queue', 'config', String(concertId), '--active-ttl', '40')).code).toBe(0);
    const joined = await concert(['--user', a, '--json', 'queue', 'join', String(concertId)], env);
    expect(joined.json()).toMatchObject({ status: 'ACTIVE' });
    const first = await concert(['--user', a, '--json', 'queue', 'status', String(concertId)], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json().pollAfterMs).toBeGreaterThan(15_000);
    const human = await concert(['--user', a, 'queue', 'status', String(concertId)], env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/status\s+ACTIVE/);
    expect(human.stderr).toMatch(/The line's pace asks for a moment between looks; asking again in \d+ s…/);
    // With --json, the same wait, and nothing but the ticket.
    const json = await concert(['--user', a, '--json', 'queue', 'status', String(concertId)], env);
    expect(json.code, json.stderr).toBe(0);
    expect(json.json()).toMatchObject({ status: 'ACTIVE', token: joined.json().token });
    expect(json.stderr).toBe('');
    // Ctrl-C during the wait stops it as Ctrl-C stops anything: exit 130 (it was INTERNAL, exit 1).
    const third = concertLive(['--user', a, 'queue', 'status', String(concertId)], env);
    await third.waitForStderr(/asking again in \d+ s…/);
    third.kill('SIGINT');
    const stopped = await third.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).not.toContain('INTERNAL');
  });

  it('queue join --wait follows the line until ACTIVE', async () => {
    const { concertId, userIds } = await newSale({ users: 2 });
    const [a, b] = userIds.map(String) as [string, string];
    expect((await admin('admin', 'queue', 'config', String(concertId), '--max-active', '1')).code).toBe(0);
    expect((await concert(['--user', a, 'queue', 'join', String(concertId)], env)).code).toBe(0);
    const waiting = concert(['--user', b, 'queue', 'join', String(concertId), '--wait'], env);
    // b is in line once the waiting command has joined (however long a busy machine takes to start it).
    await expect
      .poll(async () => (await admin('admin', 'queue', 'stats', String(concertId))).json(), { timeout: 60_000, interval: 250 })
      .toMatchObject({ waiting: 1, active: 1, maxActive: 1 });
    expect((await concert(['--user', a, 'queue', 'leave', String(concertId)], env)).code).toBe(0);
    const done = await waiting;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/status\s+ACTIVE/);
    expect(done.stdout).toMatch(/active until .*\(\d+m \d\ds left\)/);
    // Without a terminal the live line becomes a line per change of position, on stderr.
    expect(done.stderr).toMatch(/In line for concert \d+ · position 1 · 0 ahead/);
  });

  it('errors: the JSON envelope on stderr, exit 1 from the server or network, exit 2 for bad usage', async () => {
    const { scheduleId, userIds } = await newSale();
    const user = String(userIds[0]);

    const noServer = await concert(['--json', 'concerts'], { ...env, CONCERT_API_URL: 'http://127.0.0.1:9' });
    expect(noServer.code).toBe(1);
    expect(noServer.stdout).toBe('');
    expect(noServer.error()).toMatchObject({ code: 'NETWORK_ERROR', appCode: null });

    const notFound = await concert(['--json', 'schedules', '999999'], env);
    expect(notFound.code).toBe(1);
    expect(notFound.error()).toEqual({ code: 'NOT_FOUND', appCode: 'CONCERT_NOT_FOUND', message: expect.any(String) });

    // Ids go as high as the API's (Number.MAX_SAFE_INTEGER): the largest is the server's to judge;
    // past it is bad usage that names the limit.
    const largest = await concert(['--json', 'schedules', '9007199254740991'], env);
    expect(largest.code).toBe(1);
    expect(largest.error()).toMatchObject({ code: 'NOT_FOUND', appCode: 'CONCERT_NOT_FOUND' });
    const past = await concert(['--json', 'schedules', '99999999999999999999'], env);
    expect(past.code).toBe(2);
    expect(past.error().message).toContain('up to 9007199254740991');
    // A user id has at most 15 digits, as the API's x-user-id and a token's sub (a review found 16 let through).
    for (const user of ['1000000000000000', '9007199254740992']) {
      const tooLong = await concert(['--json', '--user', user, 'balance'], env);
      expect(tooLong.code).toBe(2);
      expect(tooLong.error().message).toContain('up to 999999999999999');
    }

    const gate = await concert(['--user', user, 'hold', String(scheduleId), '1'], env);
    expect(gate.code).toBe(1);
    expect(gate.stderr).toContain('(TOKEN_INVALID)');
    expect(gate.stderr).toContain('concert queue join');

    const badKey = await concert(['--admin-key', 'wrong-key-wrong-key', '--json', 'admin', 'audit'], env);
    expect(badKey.code).toBe(1);
    expect(badKey.error()).toMatchObject({ code: 'UNAUTHORIZED', appCode: 'ADMIN_KEY_INVALID' });

    const usage = [['frobnicate'], ['hold', 'x', '1'], ['--user', user, 'hold', '1', '1', '2', '3', '4', '5'], ['balance'], ['admin', 'audit'], ['--user', user, 'charge', '-5'], ['--user', user, 'pay', 'not-a-uuid'], ['--user', user, 'book']];
    const runs = await Promise.all(usage.map((args) => concert(['--json', ...args], env)));
    runs.forEach((r, i) => {
      expect(r.code, usage[i]!.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.error().code).toBe('USAGE');
    });
    const book = await concert(['--user', user, 'book', '--concert', '1'], env);
    expect(book.stderr).toContain('there is no terminal to ask them on; pass --schedule ID, --seats N,N, --yes');
    // Its example makes up no show (it said --schedule 3, a show of another concert).
    expect(book.stderr).toContain('For example: concert book --concert 1 --schedule <scheduleId> --seats <n,n> --yes [--top-up] (its shows: concert schedules 1)');

    const bad = path.join(cfg.dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ title: 'X', schedules: [{ startsAt: 'not a date', seatCount: 5000 }] }));
    const file = await concert(['--admin-key', ADMIN_KEY, 'admin', 'concerts', 'create', '--file', bad], env);
    expect(file.code).toBe(2);
    expect(file.stderr).toContain('schedules[0].startsAt:');
    expect(file.stderr).toContain('schedules[0].seatCount:');
    const fileJson = await admin('admin', 'concerts', 'create', '--file', bad);
    expect(fileJson.error().issues!.map((i) => i.path)).toEqual(['schedules[0].startsAt', 'schedules[0].seatCount']);
  });

  it('operators: users, holds with time left, release, queue stats and config, audit', async () => {
    const { concertId, scheduleId, userIds } = await newSale({ balance: 500_000 });
    const user = String(userIds[0]);
    await concert(['--user', user, 'queue', 'join', String(concertId)], env);
    const hold = await concert(['--user', user, '--json', 'hold', String(scheduleId), '7', '8'], env);
    const reservationId = hold.json().reservationId as string;

    const holds = await concert(['--admin-key', ADMIN_KEY, 'admin', 'holds', '--schedule', String(scheduleId)], env);
    expect(holds.code).toBe(0);
    expect(holds.stdout).toContain(reservationId);
    expect(holds.stdout).toMatch(/│ 7 8 +│ ₩200,000 │ .* │ [45]m \d\ds left │/);

    const released = await admin('admin', 'release', reservationId);
    expect(released.json()).toMatchObject({ reservationId, status: 'CANCELLED' });
    expect((await admin('admin', 'holds', '--schedule', String(scheduleId))).json()).toEqual([]);

    const paused = await admin('admin', 'queue', 'config', String(concertId), '--pause', '--max-active', '5', '--active-ttl', '120');
    expect(paused.json()).toMatchObject({ concertId, paused: true, maxActive: 5, activeTtlSeconds: 120 });
    const human = await concert(['--admin-key', ADMIN_KEY, 'admin', 'queue', 'stats', String(concertId)], env);
    expect(human.stdout).toMatch(/state\s+PAUSED/);
    expect((await admin('admin', 'queue', 'config', String(concertId), '--resume')).json().paused).toBe(false);
    expect((await admin('admin', 'queue', 'config', String(concertId), '--pause', '--resume')).code).toBe(2);
    // Admission by seats is the operator's choice, shown in the settings, and undone by --by-slots.
    expect((await admin('admin', 'queue', 'config', String(concertId), '--by-seats')).json()).toMatchObject({ paused: false, admitBySeats: true });
    expect((await concert(['--admin-key', ADMIN_KEY, 'admin', 'queue', 'stats', String(concertId)], env)).stdout).toMatch(/admits\s+while a seat is left for each fan/);
    expect((await admin('admin', 'queue', 'config', String(concertId), '--by-slots')).json().admitBySeats).toBe(false);
    expect((await admin('admin', 'queue', 'config', String(concertId), '--by-seats', '--by-slots')).code).toBe(2);

    const audit = await concert(['--admin-key', ADMIN_KEY, 'admin', 'audit'], env);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toContain('Audit clean');
    expect(audit.stdout).toContain('✓ no seat sold twice');

    const seeded = await admin('admin', 'seed-demo');
    expect(seeded.json().concertIds).toHaveLength(3);
    expect((await admin('admin', 'seed-demo')).json()).toEqual(seeded.json());
  });

  it('simulate: a few dozen users through a narrow gate, then a clean audit', async () => {
    const { concertId, scheduleId } = await newSale({ seats: 40, users: 0 });
    expect((await admin('admin', 'queue', 'config', String(concertId), '--max-active', '8')).code).toBe(0);
    const r = await concert(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(concertId), '--users', '30', '--concurrency', '12', '--pay-rate', '0.6', '--seed', '7'], env);
    expect(r.code, r.stderr).toBe(0);
    const report = r.json();
    expect(report).toMatchObject({ concertId, scheduleId, users: 30, concurrency: 12, oversoldSeats: 0, audit: { ok: true } });
    expect(report.admitted).toBe(30);
    expect(report.held + report.soldOut).toBeGreaterThanOrEqual(30 - Object.values(report.errors as Record<string, number>).reduce((a, b) => a + b, 0));
    expect(report.paid + report.abandoned).toBe(report.held);
    expect(report.paid).toBeGreaterThan(0);
    expect(report.seatsSold).toBeLessThanOrEqual(40);
    expect(report.errors).toEqual({});
    for (const step of ['enter', 'wait', 'seats', 'hold']) expect(report.steps[step], step).toMatchObject({ count: expect.any(Number), p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number) });
    // Twelve at a time through a gate of eight: some waited.
    expect(report.steps.status.count).toBeGreaterThan(0);

    // The server agrees: what was sold is what the report says.
    const sold = (await admin('admin', 'holds', '--schedule', String(scheduleId))).json();
    expect(sold).toEqual([]);
    // 'wait' is the time in line of those who waited, not a copy of 'enter'.
    expect(report.usersCreated).toBe(30);
    expect(report.waited).toBeGreaterThan(0);
    expect(report.waited).toBeLessThan(30);
    expect(report.steps.wait.count).toBe(report.waited);
    expect(report.steps.enter.count).toBe(30);

    // A second rehearsal, on another show, makes no new users: it reuses (and tops up) the first one's.
    const second = await newSale({ seats: 40, users: 0 });
    const again = await concert(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(second.concertId), '--users', '30', '--concurrency', '12', '--seed', '8'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ usersCreated: 0, usersReused: 30, errors: {}, oversoldSeats: 0, audit: { ok: true } });
    expect(again.json().steps.topUp.count).toBe(30);
    // The pool remembers who bought on which show: they are not reused there (the 4-seat limit is per show).
    const pool = JSON.parse(readFileSync(path.join(cfg.dir, 'rehearsal-users.json'), 'utf8')) as { apis: Record<string, Array<{ userId: number; boughtOn: number[] }>> };
    const users = Object.values(pool.apis)[0]!;
    expect(users).toHaveLength(30);
    expect(users.filter((u) => u.boughtOn.includes(scheduleId))).toHaveLength(report.paid);
    // Two rehearsals of 30 fans: generous on a loaded machine.
  }, 300_000);

  it('simulate: twenty users waiting at once print no MaxListenersExceededWarning (Node 20 counts the Ctrl-C signal\'s listeners)', async () => {
    // Each waiting user sleeps until its next poll, and Ctrl-C cuts the sleep short. Those sleeps
    // hung one abort listener each on the command's one interrupt signal: past ten of them, Node 20
    // (the oldest Node the CLI supports, package.json engines) printed the warning on every
    // rehearsal of --concurrency 11 or more. Node 22+ sets no limit on an AbortSignal, so this
    // signal is held to Node 20's default of 10 here, and the run's warnings are collected.
    const { concertId } = await newSale({ seats: 40, users: 0 });
    expect((await admin('admin', 'queue', 'config', String(concertId), '--max-active', '2')).code).toBe(0);
    const term = fakeTerminal(env);
    setMaxListeners(10, term.io.signal);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const code = await term.run(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(concertId), '--users', '24', '--concurrency', '20', '--pay-rate', '1', '--seed', '3']);
      expect(code, term.stderr()).toBe(0);
    } finally {
      process.off('warning', onWarning);
    }
    const report = JSON.parse(term.stdout()) as { waited: number; errors: Record<string, number>; oversoldSeats: number; audit: { ok: boolean } };
    expect(report).toMatchObject({ errors: {}, oversoldSeats: 0, audit: { ok: true } });
    // Twenty at a time through a gate of two: most of them were in line together.
    expect(report.waited).toBeGreaterThanOrEqual(18);
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);

    // Ctrl-C still reaches every user in line: a rehearsal interrupted with twenty waiting stops
    // at once, with no report, and gives the slots back.
    const next = await newSale({ seats: 40, users: 0 });
    expect((await admin('admin', 'queue', 'config', String(next.concertId), '--max-active', '1')).code).toBe(0);
    const stopped = fakeTerminal(env);
    const running = stopped.run(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(next.concertId), '--users', '40', '--concurrency', '20', '--pay-rate', '0']);
    const line = harnessAdmin(api.url).admin.queue.stats;
    await expect.poll(async () => (await line.query({ concertId: next.concertId })).waiting, { timeout: 60_000 }).toBeGreaterThanOrEqual(15);
    const t0 = performance.now();
    stopped.interrupt.abort(new DOMException('Interrupted', 'AbortError'));
    expect(await running).toBe(130);
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(stopped.stdout()).toBe('');
    // (stderr is a terminal here: the progress bar drew on it before the error.)
    expect(stopped.stderr()).toMatch(/\{"error":\{"code":"INTERRUPTED"/);
  }, 300_000);
  it('a paused sale says so: queue status and the waiting line name the pause instead of "ETA unknown"', async () => {
    const { concertId, userIds } = await newSale({ users: 2 });
    const [a, b] = userIds.map(String) as [string, string];
    expect((await admin('admin', 'queue', 'config', String(concertId), '--max-active', '1')).code).toBe(0);
    expect((await concert(['--user', a, 'queue', 'join', String(concertId)], env)).code).toBe(0);
    expect((await admin('admin', 'queue', 'config', String(concertId), '--pause')).json().paused).toBe(true);
    expect((await concert(['--user', b, 'queue', 'join', String(concertId)], env)).code).toBe(0);

    const human = await concert(['--user', b, 'queue', 'status', String(concertId)], env);
    expect(human.stdout).toMatch(/eta\s+none while the sale is paused: the organiser stopped admitting for now; your place is kept/);
    expect(human.stdout).not.toContain('unknown');
    // A second look right away waits out the line's pace (half of pollAfterMs) and answers.
    await expect
      .poll(
        async () => {
          const r = await concert(['--user', b, '--json', 'queue', 'status', String(concertId)], env);
          return r.code === 0 ? r.json() : r.error().appCode;
        },
        { timeout: 45_000, interval: 1_000 },
      )
      .toMatchObject({ status: 'WAITING', paused: true, etaSeconds: null });

    const waiting = concert(['--user', b, 'queue', 'join', String(concertId), '--wait'], env);
    await expect.poll(async () => (await admin('admin', 'queue', 'stats', String(concertId))).json().waiting, { timeout: 20_000 }).toBe(1);
    expect((await admin('admin', 'queue', 'config', String(concertId), '--resume')).code).toBe(0);
    expect((await concert(['--user', a, 'queue', 'leave', String(concertId)], env)).code).toBe(0);
    const done = await waiting;
    expect(done.code, done.stderr).toBe(0);
    // Without a terminal, a line per change: first paused, then (resumed) the position with its ETA.
    const lines = done.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/In line for concert \d+ · position 1 · 0 ahead · sale paused by the organiser, your place is kept/);
    expect(done.stdout).toMatch(/status\s+ACTIVE/);
  });

  it('simulate: pre-queued fans wait through the opening, and are admitted after it', async () => {
    // A line that opens a few seconds from now: every fan enters PRE_QUEUE and is admitted after the opening.
    const pre = await newSale({ seats: 40, users: 0 });
    const opensAt = new Date(Date.now() + 15_000).toISOString();
    expect((await admin('admin', 'queue', 'config', String(pre.concertId), '--opens-at', opensAt)).json()).toMatchObject({ state: 'PRE_QUEUE' });
    const r = await concert(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(pre.concertId), '--users', '8', '--concurrency', '8', '--pay-rate', '1', '--seed', '5'], env);
    expect(r.code, r.stderr).toBe(0);
    const report = r.json();
    expect(report.errors).toEqual({});
    expect(report, JSON.stringify(report)).toMatchObject({ admitted: 8, waited: 8, soldOutInLine: 0, oversoldSeats: 0, audit: { ok: true } });
    expect(report.steps.wait.p50).toBeGreaterThan(1_000);
  }, 180_000);

  it('simulate: fans told SOLD_OUT in line are counted in the report, not as errors', async () => {
    // Five seats, one fan admitted at a time, everyone pays: the line sells out while most still wait.
    const small = await newSale({ seats: 5, users: 0 });
    expect((await admin('admin', 'queue', 'config', String(small.concertId), '--max-active', '1')).code).toBe(0);
    const s = await concert(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(small.concertId), '--users', '10', '--concurrency', '10', '--pay-rate', '1', '--max-seats', '4', '--seed', '2'], env);
    expect(s.code, s.stderr).toBe(0);
    const sold = s.json();
    expect(sold.errors).toEqual({});
    expect(sold).toMatchObject({ seatsSold: 5, oversoldSeats: 0, audit: { ok: true } });
    expect(sold.soldOutInLine).toBeGreaterThan(0);
    expect(sold.admitted + sold.soldOutInLine).toBe(10);
    // Entering a line already sold out answers SOLD_OUT at once: the same outcome, in the human report too.
    const human = await concert(['--admin-key', ADMIN_KEY, 'simulate', '--concert', String(small.concertId), '--schedule', String(small.scheduleId), '--users', '2'], env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/sold out +2 in line \(told SOLD_OUT before their turn; not an error\)/);
    expect(human.stdout).toMatch(/errors +none/);
  }, 180_000);

  it('queue join on a sold-out concert prints the SOLD_OUT ticket (exit 0); with --wait it prints it and exits 1', async () => {
    const { concertId, scheduleId, userIds } = await newSale({ users: 3 });
    const [a, b, c] = userIds.map(String) as [string, string, string];
    expect((await admin('admin', 'queue', 'config', String(concertId), '--max-active', '1')).code).toBe(0);
    expect((await concert(['--user', a, 'queue', 'join', String(concertId)], env)).code).toBe(0);
    const waiting = concert(['--user', b, '--json', 'queue', 'join', String(concertId), '--wait'], env);
    await expect.poll(async () => (await admin('admin', 'queue', 'stats', String(concertId))).json().waiting, { timeout: 30_000 }).toBe(1);
    // The only show is cancelled: nothing is available or held, the line turns SOLD_OUT.
    expect((await admin('admin', 'schedules', 'cancel', String(scheduleId))).code).toBe(0);

    const waited = await waiting;
    expect(waited.code, waited.stderr).toBe(1);
    expect(waited.json()).toMatchObject({ concertId, status: 'SOLD_OUT', position: null });
    expect(waited.error()).toMatchObject({ code: 'SOLD_OUT', appCode: null });

    const joined = await concert(['--user', c, '--json', 'queue', 'join', String(concertId)], env);
    expect(joined.code, joined.stderr).toBe(0);
    expect(joined.stderr).toBe('');
    expect(joined.json()).toMatchObject({ concertId, status: 'SOLD_OUT' });
    const human = await concert(['--user', c, 'queue', 'join', String(concertId)], env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/status\s+SOLD_OUT/);
    // Its only show was cancelled: no refund can reopen this line, and the fan is told so.
    expect(human.stdout).toContain(`Concert ${concertId} has no show left to sell`);
    const status = await concert(['--user', c, '--json', 'queue', 'status', String(concertId)], env);
    expect(status.code).toBe(0);
    expect(status.json()).toMatchObject({ status: 'SOLD_OUT' });
  });

  it('seats as 12 13, 12,13 or both; a malformed reservation id is bad usage (exit 2) naming the argument; a name of several words', async () => {
    const { concertId, scheduleId, userIds } = await newSale({ balance: 1_000_000 });
    const user = String(userIds[0]);
    expect((await concert(['--user', user, 'queue', 'join', String(concertId)], env)).code).toBe(0);
    const mixed = await concert(['--user', user, '--json', 'hold', String(scheduleId), '7', '8,9'], env);
    expect(mixed.code, mixed.stderr).toBe(0);
    expect(mixed.json().seats.map((x: { seatNumber: number }) => x.seatNumber)).toEqual([7, 8, 9]);
    const bad = await concert(['--user', user, '--json', 'hold', String(scheduleId), '7', 'x'], env);
    expect(bad.code).toBe(2);
    expect(bad.error().message).toContain("command-argument value 'x' is invalid for argument 'seat'. seats are seat numbers");

    for (const args of [['pay', 'not-a-uuid'], ['cancel', '12'], ['reservation', 'abc'], ['--admin-key', ADMIN_KEY, 'admin', 'release', '0b9d…']]) {
      const r = await concert(['--user', user, '--json', ...args], env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.error()).toMatchObject({ code: 'USAGE', appCode: null, message: expect.stringContaining("for argument 'reservationId'") });
      expect(r.error().message).toContain('a reservation id is a UUID');
    }
    const human = await concert(['--user', user, 'cancel', '12'], env);
    expect(human.stderr).toContain("error: command-argument value '12' is invalid for argument 'reservationId'");
    expect(human.stderr).toContain('See concert help cancel');

    const kim = await concert(['--admin-key', ADMIN_KEY, '--json', 'admin', 'users', 'create', 'Kim', 'Min-ji', '--balance', '500,000'], env);
    expect(kim.code, kim.stderr).toBe(0);
    expect(kim.json()).toMatchObject({ name: 'Kim Min-ji', balance: 500_000 });
    const quoted = await concert(['--admin-key', ADMIN_KEY, 'admin', 'users', 'create', 'Lee Ji-eun'], env);
    expect(quoted.stdout).toMatch(/^Created user \d+ \(Lee Ji-eun\) with ₩0\.$/m);
  });

  it('hints print the real command: the concert, show, seats and shortfall the command knew, and the command that was misused', async () => {
    const { concertId, scheduleId, userIds } = await newSale({ balance: 0 });
    const user = String(userIds[0]);
    const noTurn = await concert(['--user', user, 'hold', String(scheduleId), '4'], env);
    expect(noTurn.code).toBe(1);
    expect(noTurn.stderr).toContain(`concert queue join ${concertId} --wait`);
    expect(noTurn.stderr).not.toMatch(/<\w+>/);

    expect((await concert(['--user', user, 'queue', 'join', String(concertId)], env)).code).toBe(0);
    const hold = await concert(['--user', user, '--json', 'hold', String(scheduleId), '4'], env);
    const short = await concert(['--user', user, 'pay', hold.json().reservationId], env);
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('Top up first: concert charge 150000');

    const taken = await newSale({ users: 2, balance: 1_000_000 });
    const [a, b] = taken.userIds.map(String) as [string, string];
    for (const u of [a, b]) await concert(['--user', u, 'queue', 'join', String(taken.concertId)], env);
    expect((await concert(['--user', a, 'hold', String(taken.scheduleId), '5'], env)).code).toBe(0);
    const lost = await concert(['--user', b, 'hold', String(taken.scheduleId), '5', '6'], env);
    expect(lost.code).toBe(1);
    expect(lost.stderr).toContain('Seat 5 is not available (SEAT_UNAVAILABLE)');
    expect(lost.stderr).toContain(`concert seats ${taken.scheduleId}`);

    const usage = await concert(['--admin-key', ADMIN_KEY, 'admin', 'queue', 'config', String(concertId), '--max-active', '0'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('See concert help admin queue config');
    const unknown = await concert(['frobnicate'], env);
    expect(unknown.stderr).toMatch(/See concert help\n$/);
  });
});

describe('lists longer than a page', () => {
  it('reservations, admin holds and concerts show every page by default; --limit and --cursor give one page', { timeout: 120_000 }, async () => {
    const { scheduleId, userIds } = await newSale({ users: 1 });
    const user = String(userIds[0]);
    const sql = new pg.Client({ connectionString: api.dbUrl });
    await sql.connect();
    try {
      // More than two of the server's largest pages (100) of each, written in bulk.
      const insert = async (n: number, status: 'EXPIRED' | 'HELD') =>
        (
          await sql.query<{ id: string }>(
            `INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at)
             SELECT gen_random_uuid(), $1, $2, $3, 100000, 1, now() + interval '10 minutes', now() - i * interval '1 millisecond'
             FROM generate_series(1, $4) AS i RETURNING id`,
            [userIds[0], scheduleId, status, n],
          )
        ).rows.map((r) => r.id);
      const expired = await insert(230, 'EXPIRED');
      const held = await insert(130, 'HELD');
      await sql.query(`INSERT INTO concerts (title) SELECT 'Bulk ' || i FROM generate_series(1, 210) AS i`);
      const concertCount = Number((await sql.query('SELECT count(*) FROM concerts')).rows[0].count);

      const mine = await concert(['--user', user, '--json', 'reservations'], env);
      expect(mine.code, mine.stderr).toBe(0);
      expect((mine.json() as Array<{ reservationId: string }>).map((r) => r.reservationId).sort()).toEqual([...expired, ...held].sort());
      // A script that reads its pipe slowly still gets the whole document (it was cut short when
      // the CLI exited before the pipe had taken all of it).
      const slow = await concertSlowReader(['--user', user, '--json', 'reservations'], env);
      expect(slow.code).toBe(0);
      expect(slow.stdout.length).toBeGreaterThan(100_000);
      expect((JSON.parse(slow.stdout) as unknown[]).length).toBe(expired.length + held.length);
      const heldOnly = await concert(['--user', user, '--json', 'reservations', '--status', 'HELD'], env);
      expect((heldOnly.json() as unknown[]).length).toBe(held.length);

      // One page: { items, nextCursor } with --json, and the command for the next page without.
      const first = (await concert(['--user', user, '--json', 'reservations', '--limit', '7'], env)).json() as { items: Array<{ reservationId: string }>; nextCursor: string };
      expect(first.items).toHaveLength(7);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = (await concert(['--user', user, '--json', 'reservations', '--limit', '7', '--cursor', first.nextCursor], env)).json() as typeof first;
      expect(second.items).toHaveLength(7);
      expect(second.items.filter((r) => first.items.some((f) => f.reservationId === r.reservationId))).toEqual([]);
      const human = await concert(['--user', user, 'reservations', '--limit', '2'], env);
      expect(human.code).toBe(0);
      // The hint is the command for the next page as it stands: same filter, same page size (it
      // dropped --limit, so following it gave the next page at the server's default of 20).
      const hint = /More: concert (reservations --status HELD --limit 2 --cursor [A-Za-z0-9_-]+)\n?$/.exec(
        (await concert(['--user', user, 'reservations', '--status', 'HELD', '--limit', '2'], env)).stdout,
      );
      expect(hint).not.toBeNull();
      const followed = await concert(['--user', user, '--json', ...hint![1]!.split(' ')], env);
      expect(followed.code, followed.stderr).toBe(0);
      const next = followed.json() as { items: Array<{ reservationId: string; status: string }> };
      expect(next.items).toHaveLength(2);
      expect(next.items.every((r) => r.status === 'HELD')).toBe(true);
      expect(human.stdout).toMatch(/More: concert reservations --limit 2 --cursor [A-Za-z0-9_-]+/);

      const holds = await admin('admin', 'holds', '--schedule', String(scheduleId));
      expect((holds.json() as Array<{ reservationId: string }>).map((h) => h.reservationId).sort()).toEqual([...held].sort());
      const holdsPage = (await admin('admin', 'holds', '--schedule', String(scheduleId), '--limit', '100')).json() as { items: unknown[]; nextCursor: string | null };
      expect(holdsPage.items).toHaveLength(100);
      expect(holdsPage.nextCursor).toEqual(expect.any(String));

      const concerts = await concert(['--json', 'concerts'], env);
      expect((concerts.json() as unknown[]).length).toBe(concertCount);

      // A cursor the server did not give out: an error from the server (exit 1), INVALID_INPUT.
      const bad = await concert(['--json', 'concerts', '--cursor', 'not-a-cursor'], env);
      expect(bad.code).toBe(1);
      expect(bad.error()).toMatchObject({ appCode: 'INVALID_INPUT' });
      // A page bigger than the server gives is bad usage (exit 2), refused before any request.
      // (outside.more.test.ts runs every paged command so.)
      const tooMany = await concert(['--json', 'concerts', '--limit', '101'], env);
      expect(tooMany.code).toBe(2);
      expect(tooMany.error()).toMatchObject({ code: 'USAGE', appCode: null, message: expect.stringContaining('1 to 100') });
    } finally {
      // Rows made behind the API have no outbox events: take them away again.
      await sql.query('DELETE FROM reservations WHERE user_id = $1', [userIds[0]]);
      await sql.end();
    }
  });
});

// Defects found by scripting booking flows with --json from the outside (they had a file and an
// API process of their own; the suite above serves them as well).
describe('--json flows, reviewed from outside', () => {
  it('pay retried with its key after joining the line again keeps the newer place in the session', async () => {
    const { concertId, scheduleId, userIds } = await newSale({ balance: 1_000_000 });
    const as = (...args: string[]) => concert(['--user', String(userIds[0]), '--json', ...args], env);
    expect((await as('queue', 'join', String(concertId))).code).toBe(0);
    const hold = await as('hold', String(scheduleId), '1');
    expect(hold.code, hold.stderr).toBe(0);
    const reservationId = hold.json().reservationId as string;
    const pay = await as('pay', reservationId, '--idempotency-key', 'review-pay-0001');
    expect(pay.code, pay.stderr).toBe(0);
    expect(pay.json().queueTokenExpired).toBe(true);

    // A new turn in line, then the payment retried with its key: the server replays the first
    // answer (queueTokenExpired: true) and leaves the new token alone (API.md, payments)...
    const again = await as('queue', 'join', String(concertId));
    expect(again.json().status).toBe('ACTIVE');
    const replay = await as('pay', reservationId, '--idempotency-key', 'review-pay-0001');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.json().paymentId).toBe(pay.json().paymentId);

    // ...so the session must keep it too: the next hold used to fail TOKEN_INVALID (exit 1), and
    // queue status "No queue token saved" (exit 2), while the server still had the fan ACTIVE.
    const next = await as('hold', String(scheduleId), '2');
    expect(next.code, next.stderr).toBe(0);
    expect(next.json().status).toBe('HELD');
  });
});

describe('admin concerts create --file, reviewed from outside', () => {
  it('a concert file the server refuses (a show in the past) is bad usage, exit 2, its field named as the local check names it', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-file-'));
    try {
      writeFileSync(path.join(dir, 'past.json'), JSON.stringify({ title: 'Yesterday', schedules: [{ startsAt: '2020-01-01T19:00:00+09:00', seatCount: 5 }] }));
      const r = await concert(['--admin-key', ADMIN_KEY, '--json', 'admin', 'concerts', 'create', '--file', 'past.json'], env, { cwd: dir });
      expect(r.stdout).toBe('');
      // It was exit 1 with INVALID_INPUT and the path as schedules.0.startsAt; the CLI's exit
      // statuses put an invalid concert file under bad usage (exit 2), as a bad price is.
      expect(r.code, r.stderr).toBe(2);
      expect(r.error()).toMatchObject({ code: 'USAGE', appCode: null, issues: [{ path: 'schedules[0].startsAt' }] });
      expect(r.error().message).toContain('past.json is not a valid concert');
      // The server's message starts with the field, and the CLI named it again before it:
      // "schedules[0].startsAt: schedules[0].startsAt must be in the future" (an operator's review).
      expect(r.error().message).toContain('  schedules[0].startsAt: must be in the future (it is 2020-01-01T10:00:00.000Z)');
      expect(r.error().issues).toEqual([{ path: 'schedules[0].startsAt', message: 'must be in the future (it is 2020-01-01T10:00:00.000Z)' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
