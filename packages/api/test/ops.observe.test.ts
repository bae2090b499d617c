import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, client, createTestDatabase, key, REDIS_URL, spawnApi, type SpawnedApi, testEnv, outcome } from '../../../test/harness.ts';

/**
 * What operators see: Prometheus metrics that move with traffic, and one JSON log line per
 * request that says who did what, how it ended and how long it took, without any credential.
 */

const JWT_SECRET = `ops-observe-jwt-secret-${randomBytes(12).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An HS256 JWT as an identity provider would issue it. */
function jwt(sub: number, secret = JWT_SECRET): string {
  const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub: String(sub), exp: Math.floor(Date.now() / 1000) + 600, iat: Math.floor(Date.now() / 1000) })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** Sum of the samples of `name` whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) {
      sum += Number(m[4]);
      found = true;
    }
  }
  return found ? sum : Number.NaN;
}

describe('metrics and request logs', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let api: SpawnedApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnApi(
      testEnv(db.url, {
        REDIS_URL,
        REDIS_KEY_PREFIX: `opsobs${randomBytes(4).toString('hex')}:`,
        LOG_LEVEL: 'info',
        AUTH_MODE: 'jwt',
        AUTH_JWT_SECRET: JWT_SECRET,
      }),
    );
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('/metrics exposes the families, and they move with a few calls', async () => {
    const scrape = async () => {
      const res = await fetch(`${api.metricsUrl}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      return res.text();
    };
    const ops = client(api.url, { adminKey: ADMIN_KEY });
    const now = Date.now();
    const concert = await ops.admin.concerts.create.mutate({
      title: `Observe ${key()}`,
      schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: 20 }],
    });
    const scheduleId = concert.schedules[0]!.scheduleId;
    const users = [];
    for (let i = 0; i < 3; i++) users.push((await ops.admin.users.create.mutate({ name: `obs ${i}`, initialBalance: 1_000_000 })).userId);
    const [a, b, c] = users as [number, number, number];
    await ops.admin.queue.configure.mutate({ concertId: concert.concertId, maxActive: 2 });

    const m0 = await scrape();
    for (const family of [
      'concert_procedure_duration_seconds',
      'concert_errors_total',
      'concert_holds_total',
      'concert_payments_total',
      'concert_queue_waiting',
      'concert_queue_active',
      'concert_db_pool_connections',
    ]) {
      expect(m0, family).toMatch(new RegExp(`^# TYPE ${family} `, 'm'));
    }
    const held0 = sample(m0, 'concert_holds_total', { event: 'made' }) || 0;
    const paid0 = sample(m0, 'concert_payments_total') || 0;
    const unavailable0 = sample(m0, 'concert_errors_total', { app_code: 'SEAT_UNAVAILABLE' }) || 0;

    const ta = await client(api.url, { bearer: jwt(a) }).queue.enter.mutate({ concertId: concert.concertId });
    const tb = await client(api.url, { bearer: jwt(b) }).queue.enter.mutate({ concertId: concert.concertId });
    const tc = await client(api.url, { bearer: jwt(c) }).queue.enter.mutate({ concertId: concert.concertId });
    expect([ta.status, tb.status, tc.status]).toEqual(['ACTIVE', 'ACTIVE', 'WAITING']);
    // The line's gauges are the last tick's numbers (a scrape settles no line): they follow within a tick.
    let m1 = '';
    await expect
      .poll(
        async () => {
          m1 = await scrape();
          return [sample(m1, 'concert_queue_active', { concert: String(concert.concertId) }), sample(m1, 'concert_queue_waiting', { concert: String(concert.concertId) })];
        },
        { timeout: 10_000, interval: 100 },
      )
      .toEqual([2, 1]);
    expect(sample(m1, 'concert_db_pool_connections', { state: 'total' })).toBeGreaterThan(0);

    const fanA = client(api.url, { bearer: jwt(a), queueToken: ta.token }, { batch: false });
    const fanB = client(api.url, { bearer: jwt(b), queueToken: tb.token }, { batch: false });
    await fanA.concerts.seats.query({ scheduleId });
    const r = await fanA.reservations.hold.mutate({ scheduleId, seatNumbers: [1, 2], idempotencyKey: key() });
    await fanA.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    expect(await outcome(fanB.reservations.hold.mutate({ scheduleId, seatNumbers: [2], idempotencyKey: key() }))).toBe('SEAT_UNAVAILABLE');
    const rb = await fanB.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key() });
    await fanB.reservations.cancel.mutate({ reservationId: rb.reservationId });

    // a's payment freed a slot: c is admitted within a second or so, and the gauges follow.
    let m2 = '';
    for (let i = 0; i < 40; i++) {
      m2 = await scrape();
      if (sample(m2, 'concert_queue_waiting', { concert: String(concert.concertId) }) === 0) break;
      await sleep(100);
    }
    expect(sample(m2, 'concert_queue_waiting', { concert: String(concert.concertId) })).toBe(0);
    expect(sample(m2, 'concert_queue_active', { concert: String(concert.concertId) })).toBe(2);
    expect(sample(m2, 'concert_holds_total', { event: 'made' })).toBe(held0 + 2);
    expect(sample(m2, 'concert_holds_total', { event: 'cancelled' })).toBeGreaterThanOrEqual(1);
    expect(sample(m2, 'concert_payments_total')).toBe(paid0 + 1);
    expect(sample(m2, 'concert_errors_total', { app_code: 'SEAT_UNAVAILABLE' })).toBe(unavailable0 + 1);
    expect(sample(m2, 'concert_procedure_duration_seconds_count', { procedure: 'payments.pay', outcome: 'ok' })).toBe(1);
    expect(sample(m2, 'concert_procedure_duration_seconds_count', { procedure: 'reservations.hold', outcome: 'SEAT_UNAVAILABLE' })).toBe(1);
    expect(sample(m2, 'concert_procedure_duration_seconds_sum', { procedure: 'payments.pay' })).toBeGreaterThan(0);
  });

  it('logs one JSON line per request with requestId, procedure, userId, status and durationMs, and no credential', async () => {
    const ops = client(api.url, { adminKey: ADMIN_KEY });
    const now = Date.now();
    const concert = await ops.admin.concerts.create.mutate({
      title: `Logs ${key()}`,
      schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: 10 }],
    });
    const scheduleId = concert.schedules[0]!.scheduleId;
    const userId = (await ops.admin.users.create.mutate({ name: 'logged', initialBalance: 1_000_000 })).userId;
    const bearer = jwt(userId);
    const t = await client(api.url, { bearer }).queue.enter.mutate({ concertId: concert.concertId });
    const requestId = `ops-observe-${randomBytes(6).toString('hex')}`;
    const fan = client(api.url, { bearer, queueToken: t.token, headers: { 'x-request-id': requestId } }, { batch: false });
    await fan.queue.status.query({});
    const r = await fan.reservations.hold.mutate({ scheduleId, seatNumbers: [4], idempotencyKey: key() });
    await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    // Failures carrying credentials: a forged queue token, a JWT signed with another secret, a wrong admin key.
    const forged = `${t.token.slice(0, -4)}AAAA`;
    const foreignJwt = jwt(userId, 'some-other-secret-that-is-long-enough-0000');
    const wrongAdminKey = `wrong-admin-key-${randomBytes(8).toString('hex')}`;
    expect(await outcome(client(api.url, { bearer, queueToken: forged }).concerts.seats.query({ scheduleId }))).toBe('TOKEN_INVALID');
    expect(await outcome(client(api.url, { bearer: foreignJwt }).balance.get.query({}))).toBe('TOKEN_INVALID');
    expect(await outcome(client(api.url, { adminKey: wrongAdminKey }).admin.audit.query({}))).toBe('ADMIN_KEY_INVALID');

    // The lines are written as the responses finish; give the pipe a moment.
    type Line = Record<string, unknown>;
    let lines: Line[] = [];
    for (let i = 0; i < 50; i++) {
      lines = api
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Line);
      if (lines.filter((l) => l.requestId === requestId).length >= 3 && lines.some((l) => l.procedure === 'admin.audit' && l.status === 401)) break;
      await sleep(100);
    }
    const requests = lines.filter((l) => l.msg === 'request');
    expect(requests.length).toBeGreaterThan(5);
    for (const l of requests) {
      expect(typeof l.requestId, JSON.stringify(l)).toBe('string');
      expect(typeof l.procedure).toBe('string');
      expect(typeof l.status).toBe('number');
      expect(typeof l.durationMs).toBe('number');
      expect(l.durationMs as number).toBeGreaterThanOrEqual(0);
      expect(String(l.procedure)).not.toContain('?');
    }
    const mine = requests.filter((l) => l.requestId === requestId);
    expect(mine.map((l) => [l.procedure, l.userId, l.status])).toEqual([
      ['queue.status', userId, 200],
      ['reservations.hold', userId, 200],
      ['payments.pay', userId, 200],
    ]);
    const seatsFail = requests.find((l) => l.procedure === 'concerts.seats' && l.status === 401);
    expect(seatsFail).toMatchObject({ userId, appCodes: ['TOKEN_INVALID'] });
    expect(requests.find((l) => l.procedure === 'admin.audit' && l.status === 401)).toMatchObject({ appCodes: ['ADMIN_KEY_INVALID'] });
    // Requests without a given id get a generated one, distinct per request.
    const generated = requests.filter((l) => l.requestId !== requestId).map((l) => l.requestId);
    expect(new Set(generated).size).toBe(generated.length);

    // No credential anywhere in the process's output.
    const out = api.output();
    const secrets: Record<string, string> = {
      'queue token': t.token,
      'forged queue token': forged,
      'queue token signature': t.token.slice(-22),
      bearer,
      'foreign bearer': foreignJwt,
      'bearer signature': bearer.split('.')[2]!,
      'admin key': ADMIN_KEY,
      'wrong admin key': wrongAdminKey,
      'JWT secret': JWT_SECRET,
    };
    for (const [what, value] of Object.entries(secrets)) expect(out.includes(value), `${what} must not be logged`).toBe(false);
    // No header values at all: the request line logs names and numbers, never headers.
    expect(out).not.toMatch(/"(authorization|x-queue-token|x-admin-key)"\s*:\s*"(?!\[Redacted\])/i);
  });
});
