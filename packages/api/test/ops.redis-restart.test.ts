import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, freePort, key, seedSale, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';
import { type RedisServer, startRedisServer } from '../../../test/redis-server.ts';

/**
 * Redis runs with an append-only file (appendfsync everysec), as compose and the stack run it.
 * Killed (SIGKILL) in the middle of a sale and restarted on the same folder, it comes back with
 * the line: every fan keeps their place and every ACTIVE fan their slot, with no re-entering.
 * (A killed process loses nothing it acknowledged: the file was written before each reply; the
 * fsync every second only matters when the machine itself goes down.)
 */
describe('the line survives a Redis restart', () => {
  let dir: string;
  let redis: RedisServer | undefined;
  let db: TestDatabase;
  let apis: SpawnedApi[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'redis-aof-'));
    redis = await startRedisServer(await freePort(), { dir, appendOnly: true });
    db = await createTestDatabase();
    const env = testEnv(db.url, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'restart:', RATE_LIMITS: 'off' });
    apis = await Promise.all([spawnApi(env), spawnApi(env)]);
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    await redis?.stop();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every fan keeps their place and their ACTIVE slot across a SIGKILL and restart of Redis', async () => {
    const [a, b] = apis as [SpawnedApi, SpawnedApi];
    const sale = await seedSale(a.url, { users: 30 });
    await admin(a.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 5, activeTtlSeconds: 600, idleTimeoutSeconds: 600 });
    const tickets: Array<{ userId: number; ticket: { token: string } }> = [];
    for (const [i, userId] of sale.userIds.entries()) {
      tickets.push({ userId, ticket: await client(i % 2 ? b.url : a.url, { userId }).queue.enter.mutate({ concertId: sale.concertId }) });
    }
    const read = async (url: string) =>
      Promise.all(tickets.map(({ userId, ticket }) => client(url, { userId, queueToken: ticket.token }, { batch: false }).queue.status.query({})));
    const before = await read(a.url);
    expect(before.filter((t) => t.status === 'ACTIVE')).toHaveLength(5);
    expect(before.filter((t) => t.status === 'WAITING').map((t) => t.position)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    // One ACTIVE fan holds a seat before the crash.
    const first = tickets[0]!;
    const holder = client(a.url, { userId: first.userId, queueToken: first.ticket.token }, { batch: false });
    const held = await holder.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [7], idempotencyKey: key() });

    const port = redis!.port;
    await redis!.stop('SIGKILL');
    redis = await startRedisServer(port, { dir, appendOnly: true });

    // Both processes reconnect by themselves; every fan then reads the same state as before.
    const shape = (ts: typeof before) => ts.map((t) => ({ token: t.token, status: t.status, position: t.position, activeUntil: t.activeUntil?.getTime() ?? null }));
    await expect
      .poll(async () => shape(await read(b.url).catch(() => [])), { timeout: 20_000, interval: 200 })
      .toEqual(shape(before));
    expect(shape(await read(a.url))).toEqual(shape(before));

    // The ACTIVE holder pays with the token from before the crash; the next in line is admitted.
    const paid = await holder.payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: key() });
    expect(paid.status).toBe('COMPLETED');
    const sixth = tickets[5]!;
    await expect
      .poll(async () => (await client(b.url, { userId: sixth.userId, queueToken: sixth.ticket.token }, { batch: false }).queue.status.query({})).status, {
        timeout: 5_000,
        interval: 100,
      })
      .toBe('ACTIVE');
    const audit = await admin(a.url).admin.audit.query({});
    expect(audit.ok, JSON.stringify(audit.checks)).toBe(true);
  });
});
