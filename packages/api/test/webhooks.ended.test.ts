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
  // Any other answer too: a 500, or a 410 (which disables the endpoint itself), was dropped while
  // several of an endpoint's deliveries were on their way, the first answer's removal having marked
  // the others FAILED (a review: 3 receivers' 410s, one recorded).
  it.each([
    [204, 'DELIVERED'],
    [500, 'FAILED'],
    [410, 'FAILED'],
  ] as const)('is recorded as the receiver answered it: %i reads %s', { timeout: 60_000 }, async (answered, status) => {
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
      receiver.answerHeld(answered);
      await api.core.webhooks.drain();
      expect(receiver.requests.map((r) => [r.verified, r.answered])).toEqual([[true, answered]]);
      const { rows } = await sql.query('SELECT status, attempt, last_http_status, last_error, next_attempt_at FROM webhook_deliveries');
      expect(rows).toEqual([{ status, attempt: 1, last_http_status: answered, last_error: answered === 204 ? null : expect.any(String), next_attempt_at: null }]);
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
