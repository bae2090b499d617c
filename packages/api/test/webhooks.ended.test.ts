import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { admin, createTestDatabase, startApi, testEnv } from '../../../test/harness.ts';
import { makeShow, Receiver } from './aftersale.shared.ts';

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
    // Holds each request open until the test answers it.
    const receiver = await new Receiver().start();
    receiver.answer = () => 'hold';
    // No background work: the round is started by hand.
    const api = await startApi(testEnv(db.url), { background: false });
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      const a = admin(api.url);
      const created = await a.admin.webhooks.create.mutate({ url: receiver.url, events: ['schedule.cancelled'] });
      receiver.secret = created.secret;
      const { webhookId } = created;
      const { scheduleId } = await makeShow(api.url, 1, 0);
      await a.admin.schedules.cancel.mutate({ scheduleId });
      void api.core.webhooks.deliverDue();
      await vi.waitFor(() => expect(receiver.requests).toHaveLength(1), { timeout: 15_000, interval: 20 });
      // The attempt is at the receiver: the operator removes the endpoint now.
      await a.admin.webhooks.delete.mutate({ webhookId });
      expect((await sql.query('SELECT status FROM webhook_deliveries')).rows).toEqual([{ status: 'FAILED' }]);
      receiver.answerHeld(204);
      await api.core.webhooks.drain();
      expect(receiver.requests.map((r) => [r.verified, r.answered])).toEqual([[true, 204]]);
      expect((await sql.query('SELECT status, attempt, last_http_status, last_error FROM webhook_deliveries')).rows).toEqual([
        { status: 'DELIVERED', attempt: 1, last_http_status: 204, last_error: null },
      ]);
      // Nothing more is sent to the removed endpoint.
      expect(await api.core.webhooks.deliverDue()).toBe(0);
    } finally {
      await sql.end();
      await api.close();
      await receiver.close();
      await db.drop();
    }
  });
});
