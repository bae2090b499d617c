import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { RouterOutputs } from '../src/client.ts';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '@concert/core';
import { admin, useApi } from '../../../test/harness.ts';
import { buySeats, makeShow, Receiver } from './aftersale.shared.ts';

/**
 * What a frontend (an operators' console) gets from admin.webhooks.*: the event types as the
 * contract's union, as admin.webhooks.create takes them. create's `events`, list's `events` and
 * `lastDelivery.type`, and each delivery's `type` were typed `string`, so an exhaustive switch
 * over a delivery's type did not compile against the packed @concert/api (found type-checking an
 * outside project against it). The type assertions below are checked by `pnpm typecheck`.
 */
describe('webhook event types in admin.webhooks outputs', () => {
  const suite = useApi();

  it('are the contract union, and the values are in it', { timeout: 60_000 }, async () => {
    type Out = RouterOutputs['admin']['webhooks'];
    expectTypeOf<Out['create']['events']>().toEqualTypeOf<WebhookEventType[]>();
    expectTypeOf<Out['list'][number]['events']>().toEqualTypeOf<WebhookEventType[]>();
    expectTypeOf<NonNullable<Out['list'][number]['lastDelivery']>['type']>().toEqualTypeOf<WebhookEventType>();
    expectTypeOf<Out['deliveries']['items'][number]['type']>().toEqualTypeOf<WebhookEventType>();

    const { url } = suite.api;
    const receiver = await new Receiver().start();
    try {
      const a = admin(url);
      const created = await a.admin.webhooks.create.mutate({ url: receiver.url, events: ['reservation.held', 'payment.completed'] });
      receiver.secret = created.secret;
      expect(created.events).toEqual(['reservation.held', 'payment.completed']);
      const { concertId, scheduleId, userIds } = await makeShow(url, 2, 1);
      await buySeats(url, userIds[0]!, concertId, scheduleId, [1]);
      await vi.waitFor(() => expect(receiver.requests).toHaveLength(2), { timeout: 15_000, interval: 50 });
      const [listed] = (await a.admin.webhooks.list.query({})).filter((w) => w.webhookId === created.webhookId);
      const { items } = await a.admin.webhooks.deliveries.query({ webhookId: created.webhookId });
      expect(items.map((d) => d.type).sort()).toEqual(['payment.completed', 'reservation.held']);
      for (const type of [...listed!.events, listed!.lastDelivery!.type, ...items.map((d) => d.type)]) expect(WEBHOOK_EVENT_TYPES).toContain(type);
    } finally {
      await receiver.close();
    }
  });
});
