import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../../test/redis-server.ts';
import { admin, client, createTestDatabase, everyPage, freePort, key, portOpen, seedSale, spawnApi, type SpawnedApi, testEnv, timed } from '../../../test/harness.ts';

/**
 * Redis (the waiting room's store) dies under a running API and comes back on the same port:
 * queue calls fail fast with SERVICE_UNAVAILABLE, /readyz says so, everything that needs only
 * PostgreSQL keeps working, and the API recovers by itself.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the call and returns its appCode ('OK' on success) and how long it took. */
const status = (url: string) =>
  fetch(url).then(
    (r) => r.status,
    () => 0,
  );

describe('Redis stops and restarts under a running API', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let redisPort: number;
  let redis: RedisServer | undefined;
  let api: SpawnedApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    redisPort = await freePort();
    redis = await startRedisServer(redisPort);
    api = await spawnApi(testEnv(db.url, { REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_KEY_PREFIX: 'opsredis:' }));
  });
  afterAll(async () => {
    await api?.stop();
    await redis?.stop();
    await db?.drop();
  });

  it('fails fast with SERVICE_UNAVAILABLE while Redis is down, keeps the database side up, and recovers without a restart', async () => {
    const sale = await seedSale(api.url, { users: 2, balance: 1_000_000 });
    const [u1, u2] = sale.userIds as [number, number];
    await admin(api.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 100 });
    const ticket = await client(api.url, { userId: u1 }).queue.enter.mutate({ concertId: sale.concertId });
    expect(ticket.status).toBe('ACTIVE');
    const fan = client(api.url, { userId: u1, queueToken: ticket.token }, { batch: false });
    const held = await fan.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [1], idempotencyKey: key() });
    expect(await status(`${api.url}/readyz`)).toBe(200);

    // Redis dies.
    await redis!.stop();
    redis = undefined;
    expect(await portOpen(redisPort)).toBe(false);

    const other = client(api.url, { userId: u2 }, { batch: false });
    const calls: Record<string, () => Promise<unknown>> = {
      'queue.enter': () => other.queue.enter.mutate({ concertId: sale.concertId }),
      'queue.status': () => fan.queue.status.query({}),
      'concerts.seats': () => fan.concerts.seats.query({ scheduleId: sale.scheduleId }),
      'reservations.hold': () => fan.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [2], idempotencyKey: key() }),
    };
    const latencies: Record<string, number> = {};
    // Right after the crash and again a few seconds into the outage (the client is then between reconnect attempts).
    for (const round of [0, 1]) {
      if (round === 1) await sleep(2_500);
      for (const [name, call] of Object.entries(calls)) {
        const r = await timed(call);
        expect({ name, code: r.code, httpStatus: r.httpStatus }).toEqual({ name, code: 'SERVICE_UNAVAILABLE', httpStatus: 503 });
        expect(r.ms, `${name} took ${r.ms} ms`).toBeLessThan(1_000);
        latencies[name] = Math.max(latencies[name] ?? 0, r.ms);
      }
    }
    const readyStarted = performance.now();
    expect(await status(`${api.url}/readyz`)).toBe(503);
    const readyMs = performance.now() - readyStarted;
    expect(readyMs).toBeLessThan(1_000);
    expect(await status(`${api.url}/healthz`)).toBe(200);

    // What needs only PostgreSQL keeps working: the catalog, the wallet (rate limits fail open), the audit.
    const wallet = client(api.url, { userId: u2 }, { batch: false });
    expect((await wallet.balance.get.query({})).balance).toBe(1_000_000);
    expect((await wallet.balance.charge.mutate({ amount: 5_000, idempotencyKey: key() })).balance).toBe(1_005_000);
    const list = await everyPage((p) => client(api.url).concerts.list.query(p));
    expect(list.some((c) => c.concertId === sale.concertId)).toBe(true);
    expect((await client(api.url).concerts.schedule.query({ scheduleId: sale.scheduleId })).availableSeats).toBe(49);
    expect((await fan.reservations.get.query({ reservationId: held.reservationId })).status).toBe('HELD');
    const audit = await admin(api.url).admin.audit.query({});
    expect(audit.ok, JSON.stringify(audit.checks)).toBe(true);
    expect(api.child.exitCode).toBeNull();

    // Redis comes back on the same port (empty: no persistence). The API reconnects by itself.
    redis = await startRedisServer(redisPort);
    const back = Date.now();
    let readyAfter = -1;
    while (Date.now() - back < 10_000) {
      if ((await status(`${api.url}/readyz`)) === 200) {
        readyAfter = Date.now() - back;
        break;
      }
      await sleep(50);
    }
    expect(readyAfter, 'readyz back to 200 within 10 s').toBeGreaterThanOrEqual(0);
    expect(readyAfter).toBeLessThan(5_000);
    // The store lost the line, so u1 enters again and gets a new token that works for booking.
    const again = await client(api.url, { userId: u1 }, { batch: false }).queue.enter.mutate({ concertId: sale.concertId });
    expect(again.status).toBe('ACTIVE');
    const fanAgain = client(api.url, { userId: u1, queueToken: again.token }, { batch: false });
    const map = await fanAgain.concerts.seats.query({ scheduleId: sale.scheduleId });
    expect(map.seats.find((s) => s.seatNumber === 1)?.status).toBe('HELD');
    const paid = await fanAgain.payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: key() });
    expect(paid.status).toBe('COMPLETED');
    expect((await other.queue.enter.mutate({ concertId: sale.concertId })).status).toBe('ACTIVE');
    expect((await admin(api.url).admin.audit.query({})).ok).toBe(true);
    console.log(
      `[ops.redis-fault] worst fast-fail latency with Redis down: ${Object.entries(latencies)
        .map(([n, ms]) => `${n} ${ms.toFixed(1)} ms`)
        .join(', ')}; /readyz 503 in ${readyMs.toFixed(1)} ms; /readyz 200 again ${readyAfter} ms after Redis returned`,
    );
  });

  it('a hung Redis (process frozen, its connection open) is detected within about a second; then calls fail fast, and it recovers', async () => {
    const sale = await seedSale(api.url, { users: 2, balance: 1_000_000 });
    const [u1, u2] = sale.userIds as [number, number];
    const ticket = await client(api.url, { userId: u1 }).queue.enter.mutate({ concertId: sale.concertId });
    const fan = client(api.url, { userId: u1, queueToken: ticket.token }, { batch: false });
    const other = client(api.url, { userId: u2 }, { batch: false });
    const calls: Record<string, () => Promise<unknown>> = {
      'queue.enter': () => other.queue.enter.mutate({ concertId: sale.concertId }),
      'queue.status': () => fan.queue.status.query({}),
      'concerts.seats': () => fan.concerts.seats.query({ scheduleId: sale.scheduleId }),
    };
    const seen: string[] = [];
    redis!.child.kill('SIGSTOP');
    try {
      for (const round of [0, 1, 2]) {
        if (round === 2) await sleep(1_500);
        for (const [name, call] of Object.entries(calls)) {
          const r = await timed(call);
          seen.push(`${round}:${name} ${r.ms.toFixed(0)} ms`);
          expect(r.code).toBe('SERVICE_UNAVAILABLE');
          // The first call may wait (the rate limiter's 250 ms, then the watchdog's 750 ms deadline)
          // before the connection is dropped: about 950 ms on a quiet machine, and under 2 s with
          // room for a busy one's late timers, which still tells the watchdog from the 2.5 s command
          // timeout a call would wait out without it. After that, calls fail at once.
          expect(r.ms, `${round}:${name}`).toBeLessThan(round === 0 && name === 'queue.enter' ? 2_000 : 1_000);
        }
      }
      const readyStarted = performance.now();
      expect(await status(`${api.url}/readyz`)).toBe(503);
      expect(performance.now() - readyStarted).toBeLessThan(1_000);
    } finally {
      redis!.child.kill('SIGCONT');
    }
    const back = Date.now();
    let readyAfter = -1;
    while (Date.now() - back < 10_000) {
      if ((await status(`${api.url}/readyz`)) === 200) {
        readyAfter = Date.now() - back;
        break;
      }
      await sleep(50);
    }
    expect(readyAfter).toBeGreaterThanOrEqual(0);
    expect(readyAfter).toBeLessThan(5_000);
    // Redis kept its data: the same token still works.
    expect((await fan.concerts.seats.query({ scheduleId: sale.scheduleId })).seats).toHaveLength(50);
    expect((await other.queue.enter.mutate({ concertId: sale.concertId })).status).toBe('ACTIVE');
    console.log(`[ops.redis-fault] hung Redis: ${seen.join('; ')}; /readyz 200 again ${readyAfter} ms after it resumed`);
  });
});
