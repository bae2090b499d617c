import type { Command } from 'commander';
import { id, pageLimit } from '../../args.ts';
import { act, defaultCommand, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { UsageError } from '../../errors.ts';
import { fields, localTime, statusColor, table } from '../../format.ts';
import type { WebhookCreated, WebhookDeliveryPage, WebhookSummary } from '../../types.ts';
import { morePage, pageInput } from '../../pages.ts';

export function register(admin: Command): void {
  const webhooks = admin.command('webhooks').description('Endpoints that hear about reservations, payments, refunds and cancelled shows.');
  man(
    defaultCommand(webhooks, 'list').description('Endpoints, and how their last delivery went.').action(act(adminWebhooksListCommand)),
    [['concert --admin-key $KEY admin webhooks', 'the endpoints']],
  );
  man(
    webhooks
      .command('add')
      .description('Add an endpoint; its signing secret is shown once.')
      .argument('<url>', 'where to POST events (https in production)')
      .requiredOption('--events <types>', 'comma-separated event types, or "all"')
      .option('--description <text>', 'a note for operators')
      .action(act(adminWebhooksAddCommand)),
    [
      ['concert --admin-key $KEY admin webhooks add https://crm.example.com/hooks \\\n--events payment.completed,reservation.refunded', 'send payments and refunds'],
      ['concert --admin-key $KEY admin webhooks add http://127.0.0.1:8080/hooks \\\n--events all', 'everything, to a local receiver (development)'],
    ],
    'Event types: reservation.held reservation.expired reservation.cancelled payment.completed reservation.refunded schedule.cancelled waitlist.offered concert.sold_out. Requests are signed per Standard Webhooks (see docs/webhooks.md).',
  );
  man(
    webhooks.command('remove').description('Remove an endpoint; its pending deliveries stop.').argument('<webhookId>', 'the endpoint', id('webhookId')).action(act(adminWebhooksRemoveCommand)),
    [['concert --admin-key $KEY admin webhooks remove 2', 'stop sending to endpoint 2']],
  );
  man(
    webhooks
      .command('deliveries')
      .description("An endpoint's deliveries, newest first: attempts, answers, the next retry.")
      .argument('<webhookId>', 'the endpoint', id('webhookId'))
      .option('--limit <n>', 'deliveries per page (1-100)', pageLimit)
      .option('--cursor <c>', 'the next page (from the last page)')
      .action(act(adminWebhookDeliveriesCommand)),
    [['concert --admin-key $KEY admin webhooks deliveries 1', 'what endpoint 1 was sent']],
  );
}

/** `concert admin webhooks [list]`. */
export async function adminWebhooksListCommand(ctx: Ctx): Promise<WebhookSummary[]> {
  ctx.requireAdmin();
  const hooks = await ctx.client.admin.webhooks.list.query({});
  return ctx.print(hooks, (c) =>
    hooks.length === 0
      ? 'No webhook endpoints.'
      : table(
          c,
          ['id', 'url', 'events', 'state', 'last delivery'],
          hooks.map((h) => [
            h.webhookId,
            h.url,
            h.events.length === 8 ? 'all' : h.events.join(','),
            h.disabled ? c.red('disabled') : c.green('enabled'),
            h.lastDelivery ? `${h.lastDelivery.type} ${statusColor(c, h.lastDelivery.status)}${h.lastDelivery.httpStatus ? ` ${h.lastDelivery.httpStatus}` : ''}` : '',
          ]),
          { align: ['right', 'left', 'left', 'left', 'left'] },
        ),
  );
}

/** `concert admin webhooks add <url> --events a,b [--description T]`. */
export async function adminWebhooksAddCommand(ctx: Ctx, url: string, opts: { events: string; description?: string }): Promise<WebhookCreated> {
  ctx.requireAdmin();
  const { WEBHOOK_EVENT_TYPES, ZWebhookCreateInput } = await import('@concert/core/schemas');
  const events = opts.events.trim() === 'all' ? [...WEBHOOK_EVENT_TYPES] : opts.events.split(/[\s,]+/).filter(Boolean);
  const parsed = ZWebhookCreateInput.safeParse({ url, events, ...(opts.description !== undefined ? { description: opts.description } : {}) });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path[0] === 'events' ? `--events: use some of ${WEBHOOK_EVENT_TYPES.join(', ')}, or all` : `${String(issue.path[0] ?? 'url')}: ${issue.message}`;
    throw new UsageError(`Webhook ${where}`);
  }
  const w = await ctx.client.admin.webhooks.create.mutate(parsed.data);
  return ctx.print(w, (c) =>
    [
      c.bold(`Added webhook ${w.webhookId}.`),
      fields(c, [
        ['url', w.url],
        ['events', w.events.join(', ')],
        ['secret', c.bold(w.secret)],
      ]),
      c.yellow('Keep the secret: it is shown only now. Verify each request with a Standard Webhooks library.'),
    ].join('\n'),
  );
}

/** `concert admin webhooks remove <webhookId>`. */
export async function adminWebhooksRemoveCommand(ctx: Ctx, webhookId: number): Promise<{ deleted: true }> {
  ctx.requireAdmin();
  const r = await ctx.client.admin.webhooks.delete.mutate({ webhookId });
  return ctx.print(r, () => `Removed webhook ${webhookId}.`);
}

/** `concert admin webhooks deliveries <webhookId>`. */
export async function adminWebhookDeliveriesCommand(ctx: Ctx, webhookId: number, opts: { limit?: number; cursor?: string } = {}): Promise<WebhookDeliveryPage> {
  ctx.requireAdmin();
  const page = await ctx.client.admin.webhooks.deliveries.query({ webhookId, ...pageInput(opts) });
  return ctx.print(page, (c) =>
    page.items.length === 0
      ? 'Nothing delivered yet.'
      : table(
          c,
          ['event', 'type', 'tries', 'status', 'answer', 'at', 'next try'],
          page.items.map((d) => [
            d.eventId,
            d.type,
            d.attempt,
            statusColor(c, d.status),
            d.httpStatus ?? d.error ?? '',
            d.at ? localTime(d.at, { seconds: true, weekday: false }) : '',
            d.nextAttemptAt ? localTime(d.nextAttemptAt, { seconds: true, weekday: false }) : '',
          ]),
          { align: ['left', 'left', 'right', 'left', 'left', 'left', 'left'] },
        ) + morePage(`admin webhooks deliveries ${webhookId}`, opts, page.nextCursor),
  );
}
