import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, deleteRedisKeys, REDIS_URL, spawnApi, type SpawnedApi, testEnv } from '../../../test/harness.ts';
import { adminAt, holdSeats, makeShow } from './aftersale.shared.ts';

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
