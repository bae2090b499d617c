import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ZCreateConcertInput } from '@concert/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countInversions,
  fanClients,
  type FanTrace,
  type Ledger,
  MAX_SEATS_PER_SHOW,
  MAX_SHOWS,
  parseRehearseArgs,
  readLedger,
  rehearse,
  saleSpec,
  showSizes,
  verdict,
} from '../../../deploy/stack/rehearse.ts';
import { nginxConfig } from '../../../deploy/stack/shape.ts';
import { ADMIN_KEY, createTestDatabase, deleteRedisKeys, freePort, portOpen, REDIS_URL, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';

/**
 * `pnpm stack rehearse` (deploy/stack/rehearse.ts): its options, the sale it sets up, the exact
 * checks behind its last line, and a whole small rehearsal through nginx in front of two API
 * processes on Redis, one of them SIGKILLed half-way, as the stack runs it.
 */
describe('pnpm stack rehearse: options', () => {
  it('keeps 2 shows × 50 seats by default; --seats is the whole sale, spread over as many shows as it needs', () => {
    expect(parseRehearseArgs([])).toEqual({ fans: 2000, seats: 100, shows: 2, maxActive: 50, killOne: false, seed: 1 });
    expect(showSizes(100, 2)).toEqual([50, 50]);
    expect(parseRehearseArgs(['--fans', '20000', '--seats', '5000'])).toMatchObject({ fans: 20000, seats: 5000, shows: 5 });
    expect(parseRehearseArgs(['--seats', '5001'])).toMatchObject({ seats: 5001, shows: 6 });
    expect(parseRehearseArgs(['--seats', '3000', '--shows', '8', '--max-active', '200', '--kill-one', '--seed', '9'])).toEqual({
      fans: 2000,
      seats: 3000,
      shows: 8,
      maxActive: 200,
      killOne: true,
      seed: 9,
    });
    // Uneven splits put the one seat more on the first shows, and add up to exactly --seats.
    expect(showSizes(1001, 2)).toEqual([501, 500]);
    expect(showSizes(3000, 8)).toEqual(Array(8).fill(375));
    expect(showSizes(10, 3)).toEqual([4, 3, 3]);
    for (const [seats, shows] of [[1, 1], [7, 7], [99_999, 100], [100_000, 100], [4321, 17]] as const) {
      const sizes = showSizes(seats, shows);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(seats);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });

  it('refuses what the API would refuse, or what is not a whole number, before anything is made', () => {
    expect(() => parseRehearseArgs(['--seats', '5000', '--shows', '2'])).toThrow(/more than 1000 a show.*--shows 5 or more/);
    expect(() => parseRehearseArgs(['--seats', '3', '--shows', '4'])).toThrow(/every show needs a seat/);
    expect(() => parseRehearseArgs(['--seats', String(MAX_SHOWS * MAX_SEATS_PER_SHOW + 1)])).toThrow(/--seats takes a whole number from 1 to 100000/);
    expect(() => parseRehearseArgs(['--shows', '101'])).toThrow(/--shows/);
    for (const bad of ['0', '-5', '2.5', '1e3', 'many', '']) expect(() => parseRehearseArgs([`--fans=${bad}`]), bad).toThrow(/--fans takes a whole number/);
    expect(() => parseRehearseArgs(['--max-active', '0'])).toThrow(/--max-active/);
    expect(() => parseRehearseArgs(['--seat', '3000'])).toThrow(/Unknown option '--seat'/);
    expect(() => parseRehearseArgs(['--fans'])).toThrow(/argument missing/);
  });

  it("builds a concert the API's own schema takes, with every seat in one tier, at the schema's limits too", () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    // The limits the options check are the schema's.
    expect(ZCreateConcertInput.safeParse(saleSpec([MAX_SEATS_PER_SHOW], now)).success).toBe(true);
    expect(ZCreateConcertInput.safeParse(saleSpec([MAX_SEATS_PER_SHOW + 1], now)).success).toBe(false);
    expect(ZCreateConcertInput.safeParse(saleSpec(Array(MAX_SHOWS).fill(1), now)).success).toBe(true);
    expect(ZCreateConcertInput.safeParse(saleSpec(Array(MAX_SHOWS + 1).fill(1), now)).success).toBe(false);
    for (const sizes of [[50, 50], showSizes(5000, 5), showSizes(1001, 2), [1], [2], [3]]) {
      const spec = ZCreateConcertInput.parse(saleSpec(sizes, now));
      expect(spec.schedules.map((s) => s.seatCount)).toEqual(sizes);
      for (const s of spec.schedules) {
        expect(s.bookingOpensAt!.getTime()).toBeLessThan(now);
        expect(s.startsAt.getTime()).toBeGreaterThan(now);
      }
    }
    // The default sale is the one it always was: R seats 1–20 and S seats 21–50 in each show.
    expect(saleSpec([50, 50], now).schedules.map((s) => s.tiers)).toEqual(
      Array(2).fill([
        { grade: 'R', price: 150_000, fromSeat: 1, toSeat: 20 },
        { grade: 'S', price: 90_000, fromSeat: 21, toSeat: 50 },
      ]),
    );
  });
});

describe('pnpm stack rehearse: the checks behind its last line', () => {
  const fan = (enterSentAt: number, enterDoneAt: number, lastWaitingAt: number, firstActiveAt: number | null): FanTrace => ({ enterSentAt, enterDoneAt, lastWaitingAt, firstActiveAt });

  it('counts every fan admitted before someone who entered ahead of them and was still waiting', () => {
    // A entered (answered at 20); B sent its enter at 30, after A's answer, and was admitted at 50.
    const a = fan(10, 20, 0, null);
    const b = fan(30, 40, 0, 50);
    expect(countInversions([a, b])).toBe(0); // A never waited
    expect(countInversions([{ ...a, lastWaitingAt: 45 }, b])).toBe(0); // A's last WAITING came before B's admission
    expect(countInversions([{ ...a, lastWaitingAt: 60 }, b])).toBe(1); // A still waiting after B got in: an inversion
    expect(countInversions([{ ...a, lastWaitingAt: 60, firstActiveAt: 70 }, b])).toBe(1);
    // Overlapping enters have no order a client can be sure of: not counted.
    expect(countInversions([{ ...a, lastWaitingAt: 60 }, { ...b, enterSentAt: 15 }])).toBe(0);
    // Every pair counts, however many fans: 300 waiting past 200 who came after them is 60,000.
    const early = Array.from({ length: 300 }, (_, i) => fan(i, 1000 + i, 5000, null));
    const late = Array.from({ length: 200 }, (_, i) => fan(2000 + i, 2500 + i, 0, 3000 + i));
    expect(countInversions([...early, ...late])).toBe(60_000);
    expect(countInversions([...early.map((f) => ({ ...f, lastWaitingAt: 2999 })), ...late])).toBe(0);
  });

  it('fails the rehearsal on any seat sold twice or past its count, any money not matched, an inversion, a failed audit or an error', () => {
    const ledger: Ledger = { capacity: 100, sold: 100, distinctSeats: 100, spent: 12_000_000, paid: 12_000_000 };
    const base = { fans: 500, admitted: 70, ledger, inversions: 0, auditOk: true, hardErrors: {}, latencies: { status: [5, 7, 400], hold: [20], pay: [30, 31] } };
    const good = verdict(base);
    expect(good).toMatchObject({ ok: true, oversold: 0, lost: 0 });
    expect(good.line).toBe('rehearsal: fans=500 admitted=70 sold=100 oversold=0 lost=0 inversions=0 p99_status_ms=400 p99_hold_ms=20 p99_pay_ms=31 ok');
    const bad = (patch: Partial<typeof base>) => verdict({ ...base, ...patch });
    expect(bad({ ledger: { ...ledger, distinctSeats: 99 } })).toMatchObject({ ok: false, oversold: 1 });
    expect(bad({ ledger: { ...ledger, sold: 101, distinctSeats: 101 } }).line).toMatch(/sold=101 oversold=1 .* FAILED: oversold=1$/);
    expect(bad({ ledger: { ...ledger, spent: 12_000_001 } }).line).toMatch(/lost=1 .* FAILED: lost=1$/);
    expect(bad({ ledger: { ...ledger, paid: 12_090_000 } }).line).toMatch(/ FAILED: lost=90000$/);
    expect(bad({ inversions: 3 }).line).toMatch(/inversions=3 .* FAILED: inversions=3$/);
    expect(bad({ auditOk: false }).line).toMatch(/ FAILED: audit failed$/);
    expect(bad({ ledger: { ...ledger, sold: 0, distinctSeats: 0 } }).line).toMatch(/ FAILED: nothing sold$/);
    expect(bad({ hardErrors: { INTERNAL_ERROR: 2 } }).line).toMatch(/ FAILED: errors INTERNAL_ERROR×2$/);
  });
});

describe('pnpm stack rehearse: the fans\' connections', () => {
  it('a buyer\'s hold does not wait in the rehearsal\'s own process behind the line\'s polls', async () => {
    // A server whose status polls do not answer (a line far over capacity) until it is told to,
    // and whose holds answer at once.
    const arrived: string[] = [];
    const hanging: ServerResponse[] = [];
    let stuck = true;
    const answer = (res: ServerResponse, json: unknown) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ result: { data: { json } } }));
    };
    const server = createServer((req, res) => {
      const procedure = new URL(req.url!, 'http://x').pathname.replace('/trpc/', '');
      arrived.push(procedure);
      req.resume();
      if (procedure === 'queue.status') return void (stuck ? hanging.push(res) : answer(res, { status: 'WAITING' }));
      answer(res, { reservationId: 'r-1', seats: [7] });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const clients = fanClients(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { line: 2, buying: 4 });
    try {
      const polls = Array.from({ length: 6 }, () => clients.line({}).queue.status.query({}));
      // The line's two sockets are taken; its other four polls wait here, not at the server.
      await expect.poll(() => arrived.length).toBe(2);
      const t0 = performance.now();
      const held = await clients.buying({}).reservations.hold.mutate({ scheduleId: 1, seatNumbers: [7], idempotencyKey: 'hold-key-1' }, { signal: AbortSignal.timeout(5_000) });
      expect(held).toMatchObject({ reservationId: 'r-1' });
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(arrived).toEqual(['queue.status', 'queue.status', 'reservations.hold']);
      // Once the line answers, the polls that waited go out too.
      stuck = false;
      for (const res of hanging.splice(0)) answer(res, { status: 'WAITING' });
      expect(await Promise.all(polls)).toEqual(Array(6).fill({ status: 'WAITING' }));
      expect(arrived.filter((p) => p === 'queue.status')).toHaveLength(6);
    } finally {
      stuck = false;
      for (const res of hanging.splice(0)) res.destroy();
      await clients.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('pnpm stack rehearse: a whole sale through nginx in front of two API processes', () => {
  const jwtSecret = 'rehearsal-suite-jwt-secret-0123456789';
  const prefix = `rehearse${randomBytes(4).toString('hex')}:`;
  let db: TestDatabase;
  let apis: SpawnedApi[];
  let dir: string;
  let url: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix, AUTH_MODE: 'jwt', AUTH_JWT_SECRET: jwtSecret, DB_POOL_SIZE: '6' });
    const first = await spawnApi(env);
    // The first ran the migrations; the second starts on a migrated database.
    apis = [first, await spawnApi(env)];
    dir = mkdtempSync(path.join(tmpdir(), 'rehearse-nginx-'));
    mkdirSync(path.join(dir, 'tmp'));
    chmodSync(path.join(dir, 'tmp'), 0o777);
    const port = await freePort();
    writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, { http: port, apis: apis.map((a) => Number(new URL(a.url).port)) }));
    execFileSync('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
    url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (!(await portOpen(port))) {
      if (Date.now() > deadline) throw new Error('nginx did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 240_000);

  afterAll(async () => {
    try {
      if (dir) execFileSync('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-s', 'quit']);
    } catch {
      // not running
    }
    await Promise.all((apis ?? []).map((a) => a.stop()));
    await db?.drop();
    await deleteRedisKeys(prefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('accounts for every fan once when the sale sells out while fans are still arriving', async () => {
    const lines: string[] = [];
    const result = await rehearse(
      { fans: 1000, seats: 3, shows: 1, maxActive: 3, killOne: false, seed: 2 },
      { url, adminKey: ADMIN_KEY, jwtSecret, databaseUrl: db.url, log: (l) => lines.push(l) },
    );
    console.log(lines.join('\n'));
    expect(result.ok, lines.join('\n')).toBe(true);
    expect(result.ledger).toMatchObject({ capacity: 3, sold: 3, distinctSeats: 3 });
    const { expired, soldOut, stillWaiting } = result.ended;
    expect(result.admitted + expired + soldOut + stillWaiting).toBe(1000);
    // Those who came once it had sold out were told SOLD_OUT as they arrived, and counted so
    // (not as still waiting), whether they arrived before or after the rehearsal saw the end.
    expect(result.arrivedSoldOut).toBeGreaterThan(0);
    expect(soldOut).toBeGreaterThanOrEqual(result.arrivedSoldOut);
    expect(lines.join('\n')).toContain(`${soldOut} told SOLD_OUT (${result.arrivedSoldOut} as they arrived), ${stillWaiting} still waiting when the sale ended`);
  }, 300_000);

  it('sells every seat of 3 shows to 160 fans who all arrive at once, with one API process SIGKILLed half-way, and the invariants hold', async () => {
    const lines: string[] = [];
    const result = await rehearse(
      { fans: 160, seats: 110, shows: 3, maxActive: 12, killOne: true, seed: 5 },
      { url, adminKey: ADMIN_KEY, jwtSecret, databaseUrl: db.url, killOneApi: () => (apis[0]!.child.kill('SIGKILL'), apis[0]!.child.pid), log: (l) => lines.push(l) },
    );
    console.log(lines.join('\n'));
    expect(result.ok, lines.join('\n')).toBe(true);
    expect(result.line).toMatch(/^rehearsal: fans=160 admitted=\d+ sold=110 oversold=0 lost=0 inversions=0 p99_status_ms=\d+ p99_hold_ms=\d+ p99_pay_ms=\d+ ok$/);
    expect(lines.at(-1)).toBe(result.line);
    expect(lines.join('\n')).toMatch(/3 shows of 37, 37, 36 seats \(110 in all\), 160 fans, maxActive 12, one API process killed half-way/);
    expect(lines.join('\n')).toMatch(/SIGKILLed API process 1/);
    expect(apis[0]!.child.exitCode ?? apis[0]!.child.signalCode).toBe('SIGKILL');
    // Twelve at a time through the gate: most of the 160 stood in line together.
    expect(Number(/longest (\d+) waiting at once/.exec(lines.join('\n'))![1])).toBeGreaterThan(100);
    expect(result.ledger).toMatchObject({ capacity: 110, sold: 110, distinctSeats: 110 });
    expect(result.ledger.spent).toBe(result.ledger.paid);
    expect(result.ledger.paid).toBeGreaterThan(110 * 90_000 - 1);

    // The checks read the database, not the fans' belief: a won spent that no payment took is lost.
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      await sql.query('UPDATE users SET balance = balance - 1000 WHERE id = $1', [result.userIds[0]]);
      const ledger = await readLedger(sql, result.scheduleIds, result.userIds, 110);
      expect(verdict({ fans: 160, admitted: 1, ledger, inversions: 0, auditOk: true, hardErrors: {}, latencies: { status: [], hold: [], pay: [] } })).toMatchObject({ ok: false, lost: 1000 });
    } finally {
      await sql.end();
    }
  }, 300_000);
});
