import { randomBytes } from 'node:crypto';
import superjson from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, key, REDIS_URL, seedSale, spawnApi, type SpawnedApi, testEnv, outcome } from '../../../test/harness.ts';

/**
 * Per-user rate limits are counted in Redis, so two replicas share one count: a user spreading
 * calls over both still hits the limit at the configured number. Windows are fixed 10 s windows.
 */

const MUTATIONS = 5;
const ENTERS = 3;
const WINDOW_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a burst early in a fresh rate-limit window, so that a window boundary cannot split it. */
async function freshWindow(): Promise<void> {
  const into = Date.now() % WINDOW_MS;
  if (into > 2_000) await sleep(WINDOW_MS - into + 50);
}

interface RawError {
  status: number;
  retryAfter: string | null;
  data: { appCode: string; httpStatus: number; details?: { retryAfterMs?: number } };
}

/** One tRPC call over plain HTTP, to see the status line and headers a load balancer or browser sees. */
async function raw(url: string, procedure: string, kind: 'query' | 'mutation', input: unknown, headers: Record<string, string>): Promise<RawError> {
  const body = JSON.stringify(superjson.serialize(input));
  const res =
    kind === 'mutation'
      ? await fetch(`${url}/trpc/${procedure}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
      : await fetch(`${url}/trpc/${procedure}?input=${encodeURIComponent(body)}`, { headers });
  const json = (await res.json()) as { error?: { json: { data: RawError['data'] } } };
  return { status: res.status, retryAfter: res.headers.get('retry-after'), data: json.error?.json.data ?? ({} as RawError['data']) };
}

describe('rate limits shared by two API processes', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let p1: SpawnedApi;
  let p2: SpawnedApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url, {
      REDIS_URL,
      REDIS_KEY_PREFIX: `opsrl${randomBytes(4).toString('hex')}:`,
      CONCERT_GATE: 'on',
      RATE_LIMIT_MUTATIONS_PER_10S: String(MUTATIONS),
      RATE_LIMIT_ENTER_PER_10S: String(ENTERS),
    });
    [p1, p2] = await Promise.all([spawnApi(env), spawnApi(env)]);
  });
  afterAll(async () => {
    await Promise.all([p1?.stop(), p2?.stop()]);
    await db?.drop();
  });

  it('one user’s mutations over both processes are limited at the shared count; another user is not', async () => {
    const sale = await seedSale(p1.url, { users: 2, balance: 0 });
    const [a, b] = sale.userIds as [number, number];
    await freshWindow();
    const urls = [p1.url, p2.url];
    // Five charges alternating p1, p2, p1, p2, p1: each process has seen at most three.
    const first: string[] = [];
    for (let i = 0; i < MUTATIONS; i++) first.push(await outcome(client(urls[i % 2]!, { userId: a }).balance.charge.mutate({ amount: 100, idempotencyKey: key() })));
    expect(first).toEqual(Array(MUTATIONS).fill('OK'));
    // The sixth, on p2 (its third): limited, because the count is shared.
    const limited = await raw(p2.url, 'balance.charge', 'mutation', { amount: 100, idempotencyKey: key() }, { 'x-user-id': String(a) });
    expect(limited.status).toBe(429);
    expect(limited.data.appCode).toBe('RATE_LIMITED');
    expect(limited.data.httpStatus).toBe(429);
    const retryAfterMs = limited.data.details?.retryAfterMs;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(WINDOW_MS);
    expect(limited.retryAfter).toMatch(/^\d+$/);
    expect(Number(limited.retryAfter)).toBe(Math.max(1, Math.ceil(retryAfterMs! / 1000)));
    // And on p1 too; the limited calls changed nothing.
    expect(await outcome(client(p1.url, { userId: a }).balance.charge.mutate({ amount: 100, idempotencyKey: key() }))).toBe('RATE_LIMITED');
    expect((await client(p1.url, { userId: a }).balance.get.query({})).balance).toBe(MUTATIONS * 100);
    // Queries are not mutations: reads still work for the limited user.
    expect(await outcome(client(p2.url, { userId: a }).balance.history.query({}))).toBe('OK');
    // Another user is unaffected, on either process.
    expect(await outcome(client(p2.url, { userId: b }).balance.charge.mutate({ amount: 100, idempotencyKey: key() }))).toBe('OK');
    expect(await outcome(client(p1.url, { userId: b }).balance.charge.mutate({ amount: 100, idempotencyKey: key() }))).toBe('OK');

    // After retryAfterMs the user may act again.
    await sleep(retryAfterMs! + 100);
    expect(await outcome(client(p2.url, { userId: a }).balance.charge.mutate({ amount: 100, idempotencyKey: key() }))).toBe('OK');
  });

  it('queue.enter has its own tighter limit, shared too', async () => {
    const sale = await seedSale(p1.url, { users: 2 });
    const [userId, someoneElse] = sale.userIds as [number, number];
    await freshWindow();
    const codes: string[] = [];
    for (let i = 0; i < ENTERS; i++) codes.push(await outcome(client([p1.url, p2.url][i % 2]!, { userId }).queue.enter.mutate({ concertId: sale.concertId })));
    expect(codes).toEqual(Array(ENTERS).fill('OK'));
    const limited = await raw(p2.url, 'queue.enter', 'mutation', { concertId: sale.concertId }, { 'x-user-id': String(userId) });
    expect([limited.status, limited.data.appCode]).toEqual([429, 'RATE_LIMITED']);
    expect(limited.retryAfter).toMatch(/^\d+$/);
    expect(limited.data.details?.retryAfterMs).toBeGreaterThan(0);
    // Someone else enters fine.
    expect(await outcome(client(p1.url, { userId: someoneElse }).queue.enter.mutate({ concertId: sale.concertId }))).toBe('OK');
  });

  it('queue.status polled faster than half its pollAfterMs is RATE_LIMITED, whichever process answers', async () => {
    const sale = await seedSale(p1.url, { users: 2 });
    // One ACTIVE slot, and a 3 s idle timeout so a waiting fan is told to poll every second.
    await admin(p1.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 1, idleTimeoutSeconds: 3 });
    const [holder, waiter] = sale.userIds as [number, number];
    await client(p1.url, { userId: holder }).queue.enter.mutate({ concertId: sale.concertId });
    const waiting = await client(p2.url, { userId: waiter }).queue.enter.mutate({ concertId: sale.concertId });
    expect(waiting.status).toBe('WAITING');
    const on = (url: string) => client(url, { userId: waiter, queueToken: waiting.token });

    const first = await on(p1.url).queue.status.query({});
    expect(first.status).toBe('WAITING');
    expect(first.pollAfterMs).toBe(1_000);
    // At once again, on the other process: too soon.
    const limited = await raw(p2.url, 'queue.status', 'query', {}, { 'x-user-id': String(waiter), 'x-queue-token': waiting.token });
    expect([limited.status, limited.data.appCode]).toEqual([429, 'RATE_LIMITED']);
    const retryAfterMs = limited.data.details?.retryAfterMs;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(first.pollAfterMs / 2);
    expect(limited.retryAfter).toBe('1');
    expect(await outcome(on(p1.url).queue.status.query({}))).toBe('RATE_LIMITED');
    // Waiting as told, the poll is answered (on either process), and it kept the fan's place.
    await sleep(retryAfterMs! + 50);
    const later = await on(p2.url).queue.status.query({});
    expect([later.status, later.position]).toEqual(['WAITING', 1]);
    // A fan polling at pollAfterMs is never limited.
    for (let i = 0; i < 3; i++) {
      await sleep(later.pollAfterMs);
      expect(await outcome(on([p1.url, p2.url][i % 2]!).queue.status.query({}))).toBe('OK');
    }
  });
});
