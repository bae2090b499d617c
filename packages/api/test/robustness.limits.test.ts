import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, deleteRedisKeys, REDIS_URL, seedSale, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';
import { appCodesOf, httpText, rawRequest } from '../../../test/raw-http.ts';

/**
 * Requests well under the 1 MiB body cap that once held a process's event loop for seconds, or
 * were answered with tens of megabytes (an outside hostile review, 2026-12-02, second round).
 * Each is refused or answered quickly, and the process keeps serving /healthz meanwhile.
 */

const PORT_OF = (url: string) => Number(new URL(url).port);

describe('work per request is bounded', () => {
  let db: TestDatabase;
  let api: SpawnedApi;
  let port: number;
  let userId: number;
  const prefix = `limits${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix }));
    port = PORT_OF(api.url);
    userId = (await seedSale(api.url, { users: 1 })).userIds[0]!;
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
    await deleteRedisKeys(prefix);
  });

  /** How long /healthz takes to answer while `during` is in flight (the event loop's stall). */
  async function healthzStallMs(during: Promise<unknown>): Promise<number> {
    let worst = 0;
    let done = false;
    void during.finally(() => (done = true));
    while (!done) {
      const t = performance.now();
      await fetch(`${api.url}/healthz`, { signal: AbortSignal.timeout(30_000) });
      worst = Math.max(worst, performance.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
    return worst;
  }

  // superjson's setDeep/getDeep walk a Set (or Map) from its start for every path that goes
  // through it (accessDeep.js getNthKey), so N referentialEqualities paths into an N-element Set
  // cost O(N^2): ~450 KB of body held the process for seconds (~790 KB: ~12 s, /healthz ~10 s).
  it('superjson paths into a large Set are refused before superjson walks them', { timeout: 60_000 }, async () => {
    const n = 30_000;
    const body = JSON.stringify({
      json: { amount: 1, idempotencyKey: 'limits-quadratic', s: Array.from({ length: n }, (_, i) => i), t: {} },
      meta: { values: { s: ['set'] }, referentialEqualities: { t: Array.from({ length: n }, () => `s.${n - 1}`) } },
    });
    expect(body.length).toBeLessThan(1024 * 1024);
    const request = rawRequest(port, httpText('POST', '/trpc/balance.charge', { headers: { 'x-user-id': String(userId), 'content-type': 'application/json' }, body }), { timeoutMs: 50_000 });
    const stall = await healthzStallMs(request);
    const r = await request;
    expect([r.status, appCodesOf(r.body).appCodes]).toEqual([400, ['INVALID_INPUT']]);
    expect(stall, 'the longest /healthz answer while the request ran (ms)').toBeLessThan(1_000);
    expect(r.ms).toBeLessThan(2_000);
  });

  // zod checks every element of seatNumbers before the array's max(4), and every failing element
  // is an issue; the error envelope (tRPC's formatter and REST's problem+json) sent them all: an
  // 800 KB body was answered with 13-27 MB after ~3.5-8 s of one core, and 8 such requests at once
  // held a process unresponsive for ~35 s at 1.7 GB RSS.
  for (const [name, target, body, headers] of [
    ['tRPC', '/trpc/reservations.hold', (n: number) => JSON.stringify({ json: { scheduleId: 1, seatNumbers: Array(n).fill('a'), idempotencyKey: 'limits-issues' } }), {}],
    ['REST', '/v1/reservations', (n: number) => JSON.stringify({ scheduleId: 1, seatNumbers: Array(n).fill('a') }), { 'idempotency-key': 'limits-issues' }],
  ] as const) {
    it(`${name}: an input with 100,000 bad array elements is refused quickly with a bounded error body`, { timeout: 60_000 }, async () => {
      const r = await rawRequest(port, httpText('POST', target, { headers: { 'x-user-id': String(userId), 'content-type': 'application/json', ...headers }, body: body(100_000) }), { timeoutMs: 50_000 });
      expect([r.status, appCodesOf(r.body).appCodes]).toEqual([400, ['INVALID_INPUT']]);
      expect(r.body).toContain('seatNumbers: an array of more than 1000 elements');
      expect(r.body.length, 'error body bytes').toBeLessThan(10_000);
      expect(r.ms).toBeLessThan(1_000);
    });

    it(`${name}: an input error carries the first 20 issues and counts the rest`, async () => {
      const r = await rawRequest(port, httpText('POST', target, { headers: { 'x-user-id': String(userId), 'content-type': 'application/json', ...headers }, body: body(1000) }));
      expect([r.status, appCodesOf(r.body).appCodes]).toEqual([400, ['INVALID_INPUT']]);
      const parsed = JSON.parse(r.body) as { error?: { json: { data: Record<string, unknown> } } } & Record<string, unknown>;
      const carrier = parsed.error ? parsed.error.json.data : parsed;
      expect([(carrier.issues as unknown[]).length, carrier.issuesOmitted]).toEqual([20, 981]);
    });
  }

  // GET /docs/scalar.js is kept gzipped, and a client that did not accept gzip got it gunzipped
  // on every request (~50-60 ms of one core for 4.8 MB): 100 such unauthenticated GETs at once
  // held /healthz for ~6 s.
  it('GET /docs/scalar.js without Accept-Encoding: gzip costs the server little CPU per request', async () => {
    const cpuMs = () => {
      const f = readFileSync(`/proc/${api.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 100 Hz ticks
    };
    const get = async (encoding: string) => {
      const r = await fetch(`${api.url}/docs/scalar.js`, { headers: { 'accept-encoding': encoding } });
      return { status: r.status, bytes: (await r.arrayBuffer()).byteLength };
    };
    // The one-time work: compressing the bundle, and unzipping it for clients without gzip.
    const first = await get('identity');
    expect(first.status).toBe(200);
    expect(first.bytes).toBeGreaterThan(1_000_000);
    const before = cpuMs();
    const n = 20;
    for (let i = 0; i < n; i++) expect(await get('identity')).toEqual(first);
    const perRequest = (cpuMs() - before) / n;
    expect(perRequest, 'server CPU ms per GET /docs/scalar.js (identity)').toBeLessThan(15);
  });
});
