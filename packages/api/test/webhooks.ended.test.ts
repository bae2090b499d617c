import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { admin, createTestDatabase, startApi, testEnv } from '../../../test/harness.ts';
import { makeShow } from './aftersale.shared.ts';

/**
 * An endpoint removed (or disabled by a 410 to another delivery) while one of its attempts is
 * running: the removal marks its PENDING deliveries FAILED, and the attempt's answer was then
 * dropped, since it recorded only over a PENDING row. The receiver had taken the event with a
 * 2xx, and the delivery log said FAILED "endpoint deleted": a receiver's operator, told the event
 * never arrived, would look for it in vain (found in a review of the outbox).
 */
describe('an attempt running when its endpoint is removed', () => {
  it('is recorded as the receiver answered it: DELIVERED on a 2xx', { timeout: 60_000 }, async () => {
    const db = await createTestDatabase();
    let answer: (() => void) | undefined;
    const received: string[] = [];
    // Answers 204 when the test says so.
    const receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(String(req.headers['webhook-id']));
        answer = () => res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    // No background work: the round is started by hand.
    const api = await startApi(testEnv(db.url), { background: false });
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      const a = admin(api.url);
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
      const { webhookId } = await a.admin.webhooks.create.mutate({ url, events: ['schedule.cancelled'] });
      const { scheduleId } = await makeShow(api.url, 1, 0);
      await a.admin.schedules.cancel.mutate({ scheduleId });
      void api.core.webhooks.deliverDue();
      await vi.waitFor(() => expect(answer).toBeDefined(), { timeout: 15_000, interval: 20 });
      // The attempt is at the receiver: the operator removes the endpoint now.
      await a.admin.webhooks.delete.mutate({ webhookId });
      expect((await sql.query('SELECT status FROM webhook_deliveries')).rows).toEqual([{ status: 'FAILED' }]);
      answer!();
      await api.core.webhooks.drain();
      expect(received).toHaveLength(1);
      expect((await sql.query('SELECT status, attempt, last_http_status, last_error FROM webhook_deliveries')).rows).toEqual([
        { status: 'DELIVERED', attempt: 1, last_http_status: 204, last_error: null },
      ]);
      // Nothing more is sent to the removed endpoint.
      expect(await api.core.webhooks.deliverDue()).toBe(0);
    } finally {
      await sql.end();
      await api.close();
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
      await db.drop();
    }
  });
});
