import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { admin, createTestDatabase, deleteRedisKeys, REDIS_URL, spawnApi, type SpawnedApi, startApi, testEnv } from '../../../test/harness.ts';
import { adminAt, holdSeats, makeShow, Receiver } from './aftersale.shared.ts';

/**
 * A process that stops waits for its webhook attempts still running (a review): since a round of
 * the delivery worker no longer waits for slow receivers, an attempt could outlive it, and
 * `close()` destroyed the database under it; the receiver had taken the event, the delivery
 * stayed PENDING, and another replica sent it again after its lease.
 */
describe('stopping with a webhook attempt in flight', () => {
  let db: { url: string; drop: () => Promise<void> };
  let api: SpawnedApi | undefined;
  let receiver: Server;
  const got: number[] = [];
  const prefix = `drain-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Answers 204, 1.5 s after each request: past the worker's 500 ms round.
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        got.push(Date.now());
        setTimeout(() => res.writeHead(204).end(), 1_500);
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    api = await spawnApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix, QUEUE_MAX_ACTIVE: '1000' }));
  });
  afterAll(async () => {
    await api?.stop();
    receiver?.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    await db?.drop();
    await deleteRedisKeys(prefix);
  });

  it('records what the receiver answered before the process exits', { timeout: 60_000 }, async () => {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    await adminAt(api!.url).admin.webhooks.create.mutate({ url, events: ['reservation.held'] });
    const { concertId, scheduleId, userIds } = await makeShow(api!.url, 4, 1);
    await holdSeats(api!.url, userIds[0]!, concertId, scheduleId, [1]);
    await vi.waitFor(() => expect(got.length).toBe(1), { timeout: 15_000, interval: 50 });
    // The attempt is running (its answer comes 1.5 s after the request): stop the process now.
    expect(await api!.stop()).toBe(0);
    api = undefined;
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      const { rows } = await sql.query<{ status: string; last_http_status: number | null }>('SELECT status, last_http_status FROM webhook_deliveries');
      expect(rows).toEqual([{ status: 'DELIVERED', last_http_status: 204 }]);
    } finally {
      await sql.end();
    }
  });
});

/**
 * Stopping while a round's claim is still on its way to the database (a review): drain() waited
 * only for attempts already started, so the process went on closing, the claim came back and its
 * delivery was sent with the database already gone. The receiver had the event, the delivery
 * stayed PENDING under its lease (attempt 1), and another replica would send it again.
 */
describe('stopping while a delivery round is claiming', () => {
  it('sends what the claim took and records the answer before the process closes', { timeout: 60_000 }, async () => {
    const db = await createTestDatabase();
    const receiver = await new Receiver().start();
    try {
      // No background work: the round is started by hand, right before close().
      const api = await startApi(testEnv(db.url), { background: false });
      receiver.secret = (await admin(api.url).admin.webhooks.create.mutate({ url: receiver.url, events: ['schedule.cancelled'] })).secret;
      const { scheduleId } = await makeShow(api.url, 1, 0);
      await admin(api.url).admin.schedules.cancel.mutate({ scheduleId });
      const round = api.core.webhooks.deliverDue().then(String, (err: unknown) => `the round failed: ${String(err)}`);
      await api.close();
      expect(await round).toBe('1');
      expect(receiver.requests.map((r) => [r.type, r.verified, r.answered])).toEqual([['schedule.cancelled', true, 204]]);
      const sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
      try {
        expect((await sql.query('SELECT status, attempt, last_http_status FROM webhook_deliveries')).rows).toEqual([{ status: 'DELIVERED', attempt: 1, last_http_status: 204 }]);
      } finally {
        await sql.end();
      }
    } finally {
      await receiver.close();
      await db.drop();
    }
  });
});
