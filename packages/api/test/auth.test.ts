import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, everyPage, expectAppError, key, seedSale, startApi, type TestApi, testEnv } from '../../../test/harness.ts';
import { BOOKING_ENV } from './booking.shared.ts';

const SECRET = 'jwt-test-secret-0123456789abcdef-0123456789';
const secretKey = (s: string) => new TextEncoder().encode(s);
const nowSec = () => Math.floor(Date.now() / 1000);

/** An HS256 identity token; `claims` overrides or (with undefined) drops the defaults. */
async function token(opts: { sub?: string | undefined; exp?: number | undefined; iat?: number; secret?: string; alg?: string; extra?: Record<string, unknown> } = {}): Promise<string> {
  const { sub = '1', secret = SECRET, alg = 'HS256' } = opts;
  const exp = 'exp' in opts ? opts.exp : nowSec() + 600;
  const jwt = new SignJWT({ ...opts.extra }).setProtectedHeader({ alg }).setIssuedAt(opts.iat);
  if ('sub' in opts ? opts.sub !== undefined : true) jwt.setSubject(sub);
  if (exp !== undefined) jwt.setExpirationTime(exp);
  return jwt.sign(secretKey(secret));
}

describe('identity in jwt mode', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let api: TestApi;
  let sale: Awaited<ReturnType<typeof seedSale>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(testEnv(db.url, { ...BOOKING_ENV, AUTH_MODE: 'jwt', AUTH_JWT_SECRET: SECRET }));
    sale = await seedSale(api.url, { users: 2, balance: 500_000 });
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  const as = (bearer: string) => client(api.url, { bearer });
  const tokenFor = (userId: number) => token({ sub: String(userId) });

  it('a valid token identifies its subject', async () => {
    const u = sale.userIds[0]!;
    const b = await as(await tokenFor(u)).balance.get.query({});
    expect(b).toMatchObject({ userId: u, balance: 500_000 });
  });

  it('books and pays end to end with a bearer token', async () => {
    const u = sale.userIds[0]!;
    const bearer = await tokenFor(u);
    const ticket = await as(bearer).queue.enter.mutate({ concertId: sale.concertId });
    expect(ticket.status).toBe('ACTIVE');
    const fan = client(api.url, { bearer, queueToken: ticket.token });
    const r = await fan.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [1, 2], idempotencyKey: key() });
    const p = await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    expect(p.balanceAfter).toBe(300_000);
    expect((await fan.reservations.mine.query({})).items.map((x) => x.status)).toEqual(['PAID']);
    // The other user's token sees none of it.
    const other = as(await tokenFor(sale.userIds[1]!));
    await expectAppError(other.reservations.get.query({ reservationId: r.reservationId }), 'RESERVATION_NOT_FOUND');
    expect((await other.reservations.mine.query({})).items).toEqual([]);
  });

  it('without a bearer token the caller is IDENTITY_REQUIRED, and x-user-id counts for nothing', async () => {
    const err = await expectAppError(client(api.url).balance.get.query({}), 'IDENTITY_REQUIRED');
    expect(err.data?.httpStatus).toBe(401);
    expect(err.data?.code).toBe('UNAUTHORIZED');
    await expectAppError(client(api.url, { userId: sale.userIds[0]! }).balance.get.query({}), 'IDENTITY_REQUIRED');
    const t = await tokenFor(sale.userIds[0]!);
    for (const authorization of [t, `Basic ${t}`, 'Bearer', 'Bearer ', `Bearer ${t} extra`]) {
      await expectAppError(client(api.url, { headers: { authorization } }).balance.get.query({}), 'IDENTITY_REQUIRED');
    }
    // The scheme is case-insensitive.
    expect((await client(api.url, { headers: { authorization: `bearer ${t}` } }).balance.get.query({})).userId).toBe(sale.userIds[0]);
  });

  it('a token that expired a moment ago is TOKEN_EXPIRED: the leeway for a clock ahead does not stretch exp', async () => {
    for (const ago of [2, 30]) {
      await expectAppError(as(await token({ sub: String(sale.userIds[0]), exp: nowSec() - ago })).balance.get.query({}), 'TOKEN_EXPIRED');
    }
  });

  it('a token that has expired is TOKEN_EXPIRED', async () => {
    const err = await expectAppError(as(await token({ sub: String(sale.userIds[0]), exp: nowSec() - 60 })).balance.get.query({}), 'TOKEN_EXPIRED');
    expect(err.data?.httpStatus).toBe(401);
    await expectAppError(
      as(await token({ sub: String(sale.userIds[0]), exp: nowSec() - 60 })).reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [9], idempotencyKey: key() }),
      'TOKEN_EXPIRED',
    );
    await expectAppError(as(await token({ sub: String(sale.userIds[0]), exp: nowSec() - 60 })).queue.enter.mutate({ concertId: sale.concertId }), 'TOKEN_EXPIRED');
  });

  it('a forged, malformed or incomplete token is TOKEN_INVALID', async () => {
    const u = String(sale.userIds[0]);
    const good = await tokenFor(sale.userIds[0]!);
    const [h, p, s] = good.split('.') as [string, string, string];
    const tampered = `${h}.${Buffer.from(JSON.stringify({ sub: String(sale.userIds[1]), exp: nowSec() + 600 })).toString('base64url')}.${s}`;
    const cases: Record<string, string> = {
      garbage: 'not-a-jwt',
      'two parts': `${h}.${p}`,
      'wrong secret': await token({ sub: u, secret: 'another-secret-0123456789abcdef-0123456789' }),
      'payload swapped': tampered,
      'signature dropped': `${h}.${p}.`,
      'alg none': new UnsecuredJWT({ sub: u }).setExpirationTime(nowSec() + 600).encode(),
      'alg HS512': await token({ sub: u, alg: 'HS512' }),
      'no exp': await token({ sub: u, exp: undefined }),
      'no sub': await token({ sub: undefined }),
      'sub not a number': await token({ sub: 'alice' }),
      'sub zero': await token({ sub: '0' }),
      'sub negative': await token({ sub: '-3' }),
      'sub fractional': await token({ sub: '1.5' }),
      'sub too long': await token({ sub: '1'.repeat(30) }),
      // The user id as a number or an array prints as the id, but the contract wants a string.
      'sub a number': await token({ sub: undefined, extra: { sub: sale.userIds[0] } }),
      'sub an array': await token({ sub: undefined, extra: { sub: [u] } }),
      'not yet valid': await token({ sub: u, extra: { nbf: nowSec() + 3600 } }),
      // Issued in the future, past the minute a clock may be off: no issuer made it yet.
      'issued an hour ahead': await token({ sub: u, iat: nowSec() + 3600 }),
      'issued 5 minutes ahead': await token({ sub: u, iat: nowSec() + 300 }),
      // A token that never expires in practice: exp was only required to be a number.
      'exp 1e308': await token({ sub: u, exp: undefined, extra: { exp: 1e308 } }),
      'exp 2^53 + 1': await token({ sub: u, exp: 2 ** 53 + 1 }),
      'exp a year ahead': await token({ sub: u, exp: nowSec() + 365 * 86_400 }),
      'exp 31 days ahead (past the default AUTH_JWT_MAX_LIFETIME_SECONDS)': await token({ sub: u, exp: nowSec() + 31 * 86_400 }),
    };
    for (const [name, t] of Object.entries(cases)) {
      const err = await expectAppError(as(t).balance.get.query({}), 'TOKEN_INVALID').catch((e: Error) => {
        throw new Error(`${name}: ${e.message}`);
      });
      expect(err.data?.httpStatus).toBe(401);
    }
    // None of them charged anything.
    expect((await as(good).balance.get.query({})).balance).toBe(300_000);
    // An issuer's clock a little ahead of ours (within the minute's leeway) is fine, for `iat` and `nbf` alike.
    expect((await as(await token({ sub: u, iat: nowSec() + 20 })).balance.get.query({})).userId).toBe(sale.userIds[0]);
    expect((await as(await token({ sub: u, iat: nowSec() + 20, extra: { nbf: nowSec() + 20 } })).balance.get.query({})).userId).toBe(sale.userIds[0]);
    expect((await as(await token({ sub: u, extra: { nbf: nowSec() + 50 } })).balance.get.query({})).userId).toBe(sale.userIds[0]);
    // Up to 30 days ahead (the default) a token reaches.
    expect((await as(await token({ sub: u, exp: nowSec() + 29 * 86_400 })).balance.get.query({})).userId).toBe(sale.userIds[0]);
  });

  it('a valid token of a user that does not exist is USER_NOT_FOUND everywhere, and takes no place in line', async () => {
    const phantom = as(await token({ sub: '987654' }));
    const fan = client(api.url, { bearer: await token({ sub: '987654' }), queueToken: 'q1.x.y' });
    const calls: Record<string, () => Promise<unknown>> = {
      'balance.get': () => phantom.balance.get.query({}),
      'balance.history': () => phantom.balance.history.query({}),
      'balance.charge': () => phantom.balance.charge.mutate({ amount: 1, idempotencyKey: key() }),
      'queue.enter': () => phantom.queue.enter.mutate({ concertId: sale.concertId }),
      'queue.status': () => fan.queue.status.query({}),
      'queue.leave': () => fan.queue.leave.mutate({}),
      'reservations.mine': () => phantom.reservations.mine.query({}),
      'reservations.get': () => phantom.reservations.get.query({ reservationId: '00000000-0000-4000-8000-000000000000' }),
      'reservations.cancel': () => phantom.reservations.cancel.mutate({ reservationId: '00000000-0000-4000-8000-000000000000' }),
      'reservations.hold': () => fan.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [9], idempotencyKey: key() }),
      'payments.pay': () => fan.payments.pay.mutate({ reservationId: '00000000-0000-4000-8000-000000000000', idempotencyKey: key() }),
      'concerts.seats': () => fan.concerts.seats.query({ scheduleId: sale.scheduleId }),
    };
    const before = await admin(api.url).admin.queue.stats.query({ concertId: sale.concertId });
    for (const [name, call] of Object.entries(calls)) {
      const err = await expectAppError(call(), 'USER_NOT_FOUND').catch((e: Error) => {
        throw new Error(`${name}: ${e.message}`);
      });
      expect(err.data?.httpStatus).toBe(404);
    }
    const after = await admin(api.url).admin.queue.stats.query({ concertId: sale.concertId });
    expect([after.waiting, after.active, after.admittedTotal]).toEqual([before.waiting, before.active, before.admittedTotal]);
  });

  it('public procedures need no token and ignore a bad one', async () => {
    expect((await everyPage((p) => client(api.url).concerts.list.query(p))).map((c) => c.concertId)).toContain(sale.concertId);
    expect((await as('not-a-jwt').concerts.get.query({ concertId: sale.concertId })).concertId).toBe(sale.concertId);
  });

  it('a user token is no admin key', async () => {
    const t = await tokenFor(sale.userIds[0]!);
    await expectAppError(as(t).admin.audit.query({}), 'ADMIN_KEY_INVALID');
    await expectAppError(as(t).admin.users.create.mutate({ name: 'sneaky' }), 'ADMIN_KEY_INVALID');
  });

  it('admin.audit is ok at the end', async () => {
    const audit = await admin(api.url).admin.audit.query({});
    expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
    expect(audit.ok).toBe(true);
  });
});
