import { describe, expect, it, vi } from 'vitest';
import { admin, createTestDatabase, startApi, testEnv } from '../../../test/harness.ts';
import { makeShow, Receiver } from './aftersale.shared.ts';

/**
 * The delivery log while an attempt is on its way. The claim counted the new attempt and stamped
 * its time, but left the previous attempt's answer on the row: an operator read "attempt 2, HTTP
 * 500, error 'HTTP 500', at <now>" (and admin.webhooks.list's lastDelivery the same) for an
 * attempt the receiver had not answered yet, whose 500 was attempt 1's (found watching
 * `concert admin webhooks deliveries` while a receiver hung after failing once).
 */
describe('the delivery log during an attempt', () => {
  it('shows the attempt under way without the previous attempt\'s answer, then its own', { timeout: 60_000 }, async () => {
    const db = await createTestDatabase();
    const receiver = await new Receiver().start();
    receiver.answer = (_event, attempt) => (attempt === 1 ? 500 : 'hold');
    const api = await startApi(testEnv(db.url, { WEBHOOK_RETRY_BASE_SECONDS: '0.01' }), { background: false });
    try {
      const a = admin(api.url);
      const created = await a.admin.webhooks.create.mutate({ url: receiver.url, events: ['schedule.cancelled'] });
      receiver.secret = created.secret;
      const { scheduleId } = await makeShow(api.url, 1, 0);
      await a.admin.schedules.cancel.mutate({ scheduleId });
      await api.core.webhooks.deliverDue();
      const log = async () => (await a.admin.webhooks.deliveries.query({ webhookId: created.webhookId })).items[0]!;
      expect(await log()).toMatchObject({ attempt: 1, status: 'PENDING', httpStatus: 500, error: 'HTTP 500' });

      // The retry is due within ~10 ms; the receiver keeps it open.
      await new Promise((r) => setTimeout(r, 50));
      void api.core.webhooks.deliverDue();
      await vi.waitFor(() => expect(receiver.requests).toHaveLength(2), { timeout: 15_000, interval: 20 });
      const during = await log();
      expect(during).toMatchObject({ attempt: 2, status: 'PENDING', httpStatus: null, error: null });
      const [listed] = await a.admin.webhooks.list.query({});
      expect(listed!.lastDelivery).toMatchObject({ status: 'PENDING', httpStatus: null });

      receiver.answerHeld(204);
      await api.core.webhooks.drain();
      expect(await log()).toMatchObject({ attempt: 2, status: 'DELIVERED', httpStatus: 204, error: null, nextAttemptAt: null });
    } finally {
      await api.close();
      await receiver.close();
      await db.drop();
    }
  });
});

describe('the delivery log of a removed endpoint', () => {
  // docs/webhooks.md keeps deliveries 30 days, but the log of an endpoint once removed answered
  // WEBHOOK_NOT_FOUND (found by the newcomer review, from the CLI).
  it('stays readable; the endpoint is gone from the list and a second removal is WEBHOOK_NOT_FOUND', { timeout: 60_000 }, async () => {
    const db = await createTestDatabase();
    const receiver = await new Receiver().start();
    const api = await startApi(testEnv(db.url), { background: false });
    try {
      const a = admin(api.url);
      const created = await a.admin.webhooks.create.mutate({ url: receiver.url, events: ['schedule.cancelled'] });
      receiver.secret = created.secret;
      const { scheduleId } = await makeShow(api.url, 1, 0);
      await a.admin.schedules.cancel.mutate({ scheduleId });
      await api.core.webhooks.deliverDue();
      await api.core.webhooks.drain();
      expect(receiver.requests).toHaveLength(1);
      await a.admin.webhooks.delete.mutate({ webhookId: created.webhookId });
      const log = await a.admin.webhooks.deliveries.query({ webhookId: created.webhookId });
      expect(log.items).toHaveLength(1);
      expect(log.items[0]).toMatchObject({ type: 'schedule.cancelled', status: 'DELIVERED', attempt: 1 });
      expect(await a.admin.webhooks.list.query({})).toEqual([]);
      await expect(a.admin.webhooks.delete.mutate({ webhookId: created.webhookId })).rejects.toMatchObject({ data: { appCode: 'WEBHOOK_NOT_FOUND' } });
      await expect(a.admin.webhooks.deliveries.query({ webhookId: created.webhookId + 1000 })).rejects.toMatchObject({ data: { appCode: 'WEBHOOK_NOT_FOUND' } });
    } finally {
      await api.close();
      await receiver.close();
      await db.drop();
    }
  });
});
