import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, admin, client, createTestDatabase, expectAppError, key, seedSale, startApi, type TestApi, testEnv } from '../../../test/harness.ts';
import { BOOKING_ENV } from './booking.shared.ts';

interface RawResult {
  status: number;
  body: unknown;
  /** The error envelope's data (tRPC's `code`, `httpStatus`, our `appCode`, maybe `issues`). */
  data: { code?: string; httpStatus?: number; appCode?: string; issues?: Array<{ path: unknown[]; message: string }>; stack?: unknown } | undefined;
  message: string | undefined;
}

const QUERIES = ['concerts.list', 'concerts.get', 'concerts.schedules', 'concerts.schedule', 'concerts.seats', 'reservations.get', 'reservations.mine', 'balance.get', 'balance.history', 'admin.holds.list', 'admin.audit'];
const MUTATIONS = ['reservations.hold', 'reservations.cancel', 'balance.charge', 'payments.pay', 'admin.users.create', 'admin.concerts.create', 'admin.seedDemo', 'admin.holds.release'];

describe('bad input never gives a 500', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let api: TestApi;
  let sale: Awaited<ReturnType<typeof seedSale>>;
  let user: number;
  /** x-queue-token of an ACTIVE ticket for the sale's concert, per user. */
  const queueTokens = new Map<number, string>();

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(testEnv(db.url, BOOKING_ENV));
    sale = await seedSale(api.url, { users: 2, balance: 500_000 });
    user = sale.userIds[0]!;
    queueTokens.set(user, (await client(api.url, { userId: user }).queue.enter.mutate({ concertId: sale.concertId })).token);
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  const headersFor = (extra: Record<string, string> = {}) => ({ 'x-user-id': String(user), 'x-admin-key': ADMIN_KEY, 'x-queue-token': queueTokens.get(user)!, ...extra });

  async function read(res: Response): Promise<RawResult> {
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    const error = (body as { error?: { json?: { message?: string; data?: RawResult['data'] } } } | undefined)?.error?.json;
    return { status: res.status, body, data: error?.data, message: error?.message };
  }

  /** A mutation as a raw POST; `body` is sent as it is when a string, else JSON-encoded. */
  async function post(path: string, body: unknown, headers: Record<string, string> = headersFor()): Promise<RawResult> {
    const res = await fetch(`${api.url}/trpc/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return read(res);
  }

  /** A query as a raw GET with `input` as given (already superjson-shaped), or none. */
  async function get(path: string, input?: unknown, headers: Record<string, string> = headersFor()): Promise<RawResult> {
    const qs = input === undefined ? '' : `?input=${encodeURIComponent(typeof input === 'string' ? input : JSON.stringify(input))}`;
    return read(await fetch(`${api.url}/trpc/${path}${qs}`, { headers }));
  }

  function expectClientError(r: RawResult, status: number, appCode: string): void {
    expect({ status: r.status, appCode: r.data?.appCode }).toEqual({ status, appCode });
    expect(r.data?.httpStatus).toBe(status);
    // Nothing of the server's insides leaks.
    expect(r.data?.stack).toBeUndefined();
    expect(JSON.stringify(r.body)).not.toMatch(/\bat .+\.ts:\d+|SELECT |INSERT |UPDATE /);
  }

  function expectIssueAt(r: RawResult, field: string): void {
    expect(Array.isArray(r.data?.issues)).toBe(true);
    expect(r.data!.issues!.some((i) => i.path.includes(field))).toBe(true);
  }

  it('a wrong type is INVALID_INPUT with the zod issues', async () => {
    const r = await get('concerts.get', { json: { concertId: '1' } });
    expectClientError(r, 400, 'INVALID_INPUT');
    expectIssueAt(r, 'concertId');
    expect(r.data?.code).toBe('BAD_REQUEST');
    const typed = await expectAppError(client(api.url, { userId: user }).balance.charge.mutate({ amount: '100' as unknown as number, idempotencyKey: key() }), 'INVALID_INPUT');
    expect((typed.data as { issues?: unknown[] } | undefined)?.issues?.length).toBeGreaterThan(0);
    const missing = await post('balance.charge', { json: { idempotencyKey: key() } });
    expectClientError(missing, 400, 'INVALID_INPUT');
    expectIssueAt(missing, 'amount');
    const nested = await post('reservations.hold', { json: { scheduleId: sale.scheduleId, seatNumbers: [1, 'two'], idempotencyKey: key() } });
    expectClientError(nested, 400, 'INVALID_INPUT');
    expectIssueAt(nested, 'seatNumbers');
  });

  it('amounts: negative, fractional, huge, not finite or not a number are refused', async () => {
    const charge = (amount: unknown, meta?: unknown) => post('balance.charge', { json: { amount, idempotencyKey: key() }, ...(meta ? { meta } : {}) });
    for (const amount of [-1, -0.5, 0.1, 99.99, 1e20, Number.MAX_SAFE_INTEGER + 1]) expectClientError(await charge(amount), 400, 'INVALID_AMOUNT');
    for (const amount of ['100', null, true, [100], { value: 100 }, '']) expectClientError(await charge(amount), 400, 'INVALID_INPUT');
    // superjson's own NaN, Infinity and bigint.
    for (const type of ['number', 'bigint'] as const) {
      for (const value of type === 'number' ? ['NaN', 'Infinity', '-Infinity'] : ['100']) {
        expectClientError(await charge(value, { values: { amount: [type] } }), 400, 'INVALID_INPUT');
      }
    }
    // 1e400 is Infinity once parsed.
    expectClientError(await post('balance.charge', `{"json":{"amount":1e400,"idempotencyKey":"${key()}"}}`), 400, 'INVALID_INPUT');
    // The typed client sends NaN as superjson does.
    await expectAppError(client(api.url, { userId: user }).balance.charge.mutate({ amount: Number.NaN, idempotencyKey: key() }), 'INVALID_INPUT');
    await expectAppError(client(api.url, { userId: user }).balance.charge.mutate({ amount: Number.POSITIVE_INFINITY, idempotencyKey: key() }), 'INVALID_INPUT');
    expect((await client(api.url, { userId: user }).balance.get.query({})).balance).toBe(500_000);
  });

  it('ids: zero, negative, fractional, beyond 2^53 or not numbers are INVALID_INPUT; unknown ones are NOT_FOUND', async () => {
    for (const concertId of [0, -1, 1.5, 2 ** 53, '1', null]) expectClientError(await get('concerts.get', { json: { concertId } }), 400, 'INVALID_INPUT');
    expectClientError(await get('concerts.get', { json: { concertId: Number.MAX_SAFE_INTEGER } }), 404, 'CONCERT_NOT_FOUND');
    expectClientError(await get('concerts.schedule', { json: { scheduleId: Number.MAX_SAFE_INTEGER } }), 404, 'SCHEDULE_NOT_FOUND');
    expectClientError(await get('concerts.seats', { json: { scheduleId: Number.MAX_SAFE_INTEGER } }), 404, 'SCHEDULE_NOT_FOUND');
    expectClientError(
      await post('reservations.hold', { json: { scheduleId: Number.MAX_SAFE_INTEGER, seatNumbers: [1], idempotencyKey: key() } }),
      404,
      'SCHEDULE_NOT_FOUND',
    );
  });

  it('malformed reservation ids are INVALID_INPUT; a well-formed unknown one is RESERVATION_NOT_FOUND', async () => {
    for (const reservationId of ['abc', '', "' OR 1=1 --", '00000000-0000-0000-0000-00000000000g', '00000000000000000000000000000000', 42, null]) {
      expectClientError(await get('reservations.get', { json: { reservationId } }), 400, 'INVALID_INPUT');
      expectClientError(await post('payments.pay', { json: { reservationId, idempotencyKey: key() } }), 400, 'INVALID_INPUT');
      expectClientError(await post('reservations.cancel', { json: { reservationId } }), 400, 'INVALID_INPUT');
      expectClientError(await post('admin.holds.release', { json: { reservationId } }), 400, 'INVALID_INPUT');
    }
    const unknown = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
    expectClientError(await get('reservations.get', { json: { reservationId: unknown } }), 404, 'RESERVATION_NOT_FOUND');
    expectClientError(await post('payments.pay', { json: { reservationId: unknown, idempotencyKey: key() } }), 404, 'RESERVATION_NOT_FOUND');
    expectClientError(await post('reservations.cancel', { json: { reservationId: unknown } }), 404, 'RESERVATION_NOT_FOUND');
  });

  it('seat lists: empty, more than 4, duplicates, out of range or fractional are INVALID_INPUT', async () => {
    for (const seatNumbers of [[], [1, 2, 3, 4, 5], [1, 1], [0], [-1], [1001], [1.5], '1', null]) {
      const r = await post('reservations.hold', { json: { scheduleId: sale.scheduleId, seatNumbers, idempotencyKey: key() } });
      expectClientError(r, 400, 'INVALID_INPUT');
    }
    expect((await admin(api.url).admin.holds.list.query({ scheduleId: sale.scheduleId })).items).toEqual([]);
  });

  it('huge strings and bodies get a 4xx, not a 500', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const title = await post('admin.concerts.create', { json: { title: big, schedules: [{ startsAt: new Date(Date.now() + 86_400_000).toISOString() }] } });
    expect(title.status).toBeGreaterThanOrEqual(400);
    expect(title.status).toBeLessThan(500);
    expect(title.data?.appCode).toMatch(/^(PAYLOAD_TOO_LARGE|INVALID_INPUT)$/);
    const body = await post('balance.charge', { json: { amount: 1, idempotencyKey: key(), padding: 'y'.repeat(2 * 1024 * 1024) } });
    expectClientError(body, 413, 'PAYLOAD_TOO_LARGE');
    // Under the body limit, a long string is refused by the schema.
    const half = await post('admin.concerts.create', { json: { title: 'x'.repeat(500_000), schedules: [{ startsAt: new Date(Date.now() + 86_400_000).toISOString() }] } });
    expectClientError(half, 400, 'INVALID_INPUT');
    expectIssueAt(half, 'title');
    expectClientError(await post('balance.charge', { json: { amount: 1, idempotencyKey: 'k'.repeat(500_000) } }), 400, 'INVALID_INPUT');
    expectClientError(await get('balance.history', { json: { cursor: 'c'.repeat(5000) } }), 400, 'INVALID_INPUT');
    expectClientError(await post('admin.users.create', { json: { name: 'n'.repeat(100_000) } }), 400, 'INVALID_INPUT');
    // A long query string.
    const longUrl = await get('concerts.get', { json: { concertId: 1, pad: 'p'.repeat(60_000) } });
    expect(longUrl.status).toBeGreaterThanOrEqual(400);
    expect(longUrl.status).toBeLessThan(500);
  });

  it('NUL characters and dates PostgreSQL cannot store are INVALID_INPUT', async () => {
    expectClientError(await post('admin.users.create', { json: { name: 'a\u0000b' } }), 400, 'INVALID_INPUT');
    const startsAt = new Date(Date.now() + 86_400_000).toISOString();
    expectClientError(await post('admin.concerts.create', { json: { title: 't\u0000', schedules: [{ startsAt }] } }), 400, 'INVALID_INPUT');
    expectClientError(
      await post('admin.concerts.create', { json: { title: 'old', schedules: [{ startsAt, bookingOpensAt: '-100000-01-01T00:00:00.000Z' }] } }),
      400,
      'INVALID_INPUT',
    );
    expectClientError(await post('admin.concerts.create', { json: { title: 'bad date', schedules: [{ startsAt: 'not a date' }] } }), 400, 'INVALID_INPUT');
    const nullDate = await post('admin.concerts.create', { json: { title: 'null date', schedules: [{ startsAt: null }] } });
    expect(nullDate.status).toBeLessThan(500);
  });

  it('identity: a missing or malformed x-user-id is IDENTITY_REQUIRED; an unknown user is USER_NOT_FOUND', async () => {
    expectClientError(await get('balance.get', undefined, {}), 401, 'IDENTITY_REQUIRED');
    for (const id of ['', ' ', 'abc', '0', '-1', '1.5', '1e3', '0x10', '01', '99999999999999999999', '1,2', String(user) + ' OR 1=1']) {
      expectClientError(await get('balance.get', undefined, { 'x-user-id': id }), 401, 'IDENTITY_REQUIRED');
    }
    expectClientError(await get('balance.get', undefined, { 'x-user-id': '999999999999999' }), 404, 'USER_NOT_FOUND');
    // Everywhere, whatever else the request carries: a phantom identity takes nothing, not even a place in line.
    const phantom = { 'x-user-id': '999999999', 'x-queue-token': queueTokens.get(user)! };
    expectClientError(await post('reservations.hold', { json: { scheduleId: sale.scheduleId, seatNumbers: [9], idempotencyKey: key() } }, phantom), 404, 'USER_NOT_FOUND');
    expectClientError(await post('balance.charge', { json: { amount: 1, idempotencyKey: key() } }, phantom), 404, 'USER_NOT_FOUND');
    expectClientError(await post('queue.enter', { json: { concertId: sale.concertId } }, phantom), 404, 'USER_NOT_FOUND');
    expectClientError(await get('reservations.mine', { json: {} }, phantom), 404, 'USER_NOT_FOUND');
  });

  it('the user id comes from identity, never from the input', async () => {
    const [me, other] = sale.userIds as [number, number];
    const before = (await client(api.url, { userId: other }).balance.get.query({})).balance;
    const r = await post('balance.charge', { json: { amount: 7, idempotencyKey: key(), userId: other } }, headersFor({ 'x-user-id': String(me) }));
    expect(r.status).toBe(200);
    expect((r.body as { result: { data: { json: { userId: number } } } }).result.data.json.userId).toBe(me);
    expect((await client(api.url, { userId: other }).balance.get.query({})).balance).toBe(before);
  });

  it('an unknown procedure is a 404, not a 500', async () => {
    for (const path of ['nope', 'concerts.nope', 'admin.users', 'concerts', '__proto__', 'constructor.prototype']) {
      const r = await get(path, { json: {} });
      expectClientError(r, 404, 'PROCEDURE_NOT_FOUND');
      expectClientError(await post(path, { json: {} }), 404, 'PROCEDURE_NOT_FOUND');
    }
    const outside = await fetch(`${api.url}/nowhere`);
    expect(outside.status).toBe(404);
  });

  it('a malformed body or query string is INVALID_INPUT', async () => {
    for (const body of ['{', 'not json', '{"json": {"amount": 1,}}', '\u0000', '[1,2']) {
      expectClientError(await post('balance.charge', body), 400, 'INVALID_INPUT');
    }
    for (const body of ['null', '[]', '"text"', '42', '{"json": 5}', '{"json": null}', '{}', '']) {
      expectClientError(await post('balance.charge', body), 400, 'INVALID_INPUT');
    }
    expectClientError(await get('concerts.get', '{not json'), 400, 'INVALID_INPUT');
    expectClientError(await get('concerts.get', { json: { concertId: 1 }, meta: { values: { concertId: ['no-such-type'] } } }), 400, 'INVALID_INPUT');
    // An empty-input procedure refuses stray keys.
    expectClientError(await get('balance.get', { json: { userId: 2 } }), 400, 'INVALID_INPUT');
    // Input without superjson's wrapper, to a procedure whose input is optional, was read as none
    // and answered the default page (a hostile review, fourth round).
    for (const input of ['1', '"x"', 'true', '[1]', '{"limit":1}', '{"json":{"limit":1},"limit":1}']) {
      const r = await get('concerts.list', input);
      expectClientError(r, 400, 'INVALID_INPUT');
      expect(r.message, input).toContain('input must be superjson');
    }
    expect((await get('concerts.list', { json: { limit: 1 } })).status).toBe(200);
    expect((await get('concerts.list', {})).status).toBe(200);
  });

  it('the wrong HTTP method is a 4xx', async () => {
    const before = (await client(api.url, { userId: user }).balance.get.query({})).balance;
    const q = await post('concerts.list', { json: {} });
    expect(q.status).toBeGreaterThanOrEqual(400);
    expect(q.status).toBeLessThan(500);
    const m = await get('balance.charge', { json: { amount: 1, idempotencyKey: key() } });
    expect(m.status).toBeGreaterThanOrEqual(400);
    expect(m.status).toBeLessThan(500);
    expect((await client(api.url, { userId: user }).balance.get.query({})).balance).toBe(before);
  });

  it('deeply nested input is refused cleanly', async () => {
    let deep = '1';
    for (let i = 0; i < 5000; i++) deep = `{"a":${deep}}`;
    const r = await post('balance.charge', `{"json":{"amount":${deep},"idempotencyKey":"${key()}"}}`);
    expectClientError(r, 400, 'INVALID_INPUT');
  });

  it('every procedure answers odd inputs with a 4xx', async () => {
    const odd: unknown[] = [undefined, null, 0, 'x', [], {}, { json: null }, { json: [] }, { json: 'x' }, { json: { a: { b: [1, { c: null }] } } }];
    const seen = new Set<number>();
    for (const path of QUERIES) {
      for (const input of odd) {
        const r = await get(path, input);
        seen.add(r.status);
        expect({ path, input, status: r.status < 500 }).toEqual({ path, input, status: true });
      }
    }
    for (const path of MUTATIONS) {
      for (const input of odd) {
        const r = await post(path, input === undefined ? '' : input);
        seen.add(r.status);
        expect({ path, input, status: r.status < 500 }).toEqual({ path, input, status: true });
      }
    }
    expect(seen.has(400)).toBe(true);
  });

  it('a batch of many calls with some bad ones answers each on its own', async () => {
    const calls = ['concerts.list', 'concerts.get', 'balance.get'].join(',');
    const input = JSON.stringify({ 0: { json: {} }, 1: { json: { concertId: 'x' } }, 2: { json: {} } });
    const res = await fetch(`${api.url}/trpc/${calls}?batch=1&input=${encodeURIComponent(input)}`, { headers: headersFor() });
    expect(res.status).toBeLessThan(500);
    const body = (await res.json()) as Array<{ result?: unknown; error?: { json: { data: { appCode: string } } } }>;
    expect(body).toHaveLength(3);
    expect(body[0]!.result).toBeDefined();
    expect(body[1]!.error?.json.data.appCode).toBe('INVALID_INPUT');
    expect(body[2]!.result).toBeDefined();
    // More calls than the server takes in one batch.
    const many = Array.from({ length: 200 }, () => 'concerts.list').join(',');
    const tooMany = await fetch(`${api.url}/trpc/${many}?batch=1&input=${encodeURIComponent('{}')}`);
    expect(tooMany.status).toBeGreaterThanOrEqual(400);
    expect(tooMany.status).toBeLessThan(500);
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await admin(api.url).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
    expect(audit.ok).toBe(true);
  });
});
