import { randomBytes } from 'node:crypto';
import { Webhook as Signer } from 'standardwebhooks';
import { type Agent, fetch as undiciFetch } from 'undici';
import { AppError } from '../errors.ts';
import { type Clock, dbNow, plusMs } from '../clock.ts';
import type { Db } from '../db/database.ts';
import type { PageInput, WebhookCreateInput, WebhookDeliveriesInput, WebhookEventType } from '../schemas.ts';
import type { Page, Webhook, WebhookDelivery } from '../types.ts';
import { decodeIdCursor } from '../waitlist/waitlist.service.ts';
import { assertDeliverable, deliveryAgent, type EndpointPolicy, type ResolveHost, systemResolve } from './webhooks.address.ts';
import * as repo from './webhooks.repository.ts';
import { assertStorableText } from '../concerts/concerts.service.ts';

/** An attempt that has not answered within this long has failed (the contract's 5 s). */
export const DELIVERY_TIMEOUT_MS = 5_000;
/** A claimed delivery belongs to its process this long; after that another may retry it. */
export const DELIVERY_LEASE_MS = 15_000;
export const MAX_RETRY_DELAY_MS = 3600_000;
/** Retries go on while the event is younger than this; then the delivery has FAILED. */
export const RETRY_FOR_MS = 24 * 3600_000;
export const RETENTION_MS = 30 * 24 * 3600_000;
/** A round of the worker waits this long for its attempts; slower ones go on alone. */
export const SLOW_ATTEMPT_MS = 500;
/** Attempts in flight in one process, at most. */
export const MAX_IN_FLIGHT = 100;

export interface WebhookConfig extends EndpointPolicy {
  retryBaseSeconds: number;
}

export class WebhooksService {
  /** Attempts this process has in flight, by endpoint. */
  private readonly inFlight = new Map<number, number>();
  /** Attempts still running, settled or not, for drain(). */
  private readonly running = new Set<Promise<unknown>>();
  /** Claims still waiting for the database's answer, for drain(): what they claim is sent. */
  private readonly claiming = new Set<Promise<unknown>>();
  /** Connections for deliveries where private endpoints are refused; made on first use. */
  private agent: Agent | undefined;

  constructor(private readonly deps: { db: Db; clock: Clock; config: WebhookConfig; fetch?: typeof fetch; resolve?: ResolveHost }) {}

  /** Adds an endpoint; its signing secret is shown only in this answer. */
  async create(input: WebhookCreateInput): Promise<{ webhookId: number; url: string; events: WebhookEventType[]; description: string; secret: string }> {
    assertStorableText(input.url, 'url');
    assertStorableText(input.description, 'description');
    await assertDeliverable(input.url, this.deps.config, this.deps.resolve ?? systemResolve);
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const row = await repo.insertEndpoint(this.deps.db, {
      url: input.url,
      events: [...new Set(input.events)],
      secret,
      description: input.description,
      now: this.deps.clock.now(),
    });
    return { webhookId: row.id, url: row.url, events: row.events, description: row.description, secret };
  }

  async list(): Promise<Webhook[]> {
    const rows = await repo.listEndpoints(this.deps.db);
    return rows.map((r) => ({
      webhookId: r.id,
      url: r.url,
      events: r.events,
      description: r.description,
      disabled: r.disabled_at !== null,
      lastDelivery:
        r.event_id && r.type && r.status
          ? { eventId: r.event_id, type: r.type, status: r.status, httpStatus: r.last_http_status ?? null, at: r.last_attempt_at ?? null }
          : null,
    }));
  }

  async delete(webhookId: number): Promise<{ deleted: true }> {
    if (!(await repo.endEndpoint(this.deps.db, webhookId, { deleted: true }, this.deps.clock.now()))) {
      throw new AppError('WEBHOOK_NOT_FOUND', `Webhook ${webhookId} does not exist`);
    }
    return { deleted: true };
  }

  async deliveries(input: WebhookDeliveriesInput): Promise<Page<WebhookDelivery>> {
    // A removed endpoint's log stays readable for its retention (docs/webhooks.md): what was sent
    // before it was removed is what an operator asks about (it answered WEBHOOK_NOT_FOUND).
    if (!(await repo.findEndpoint(this.deps.db, input.webhookId, { removedToo: true }))) {
      throw new AppError('WEBHOOK_NOT_FOUND', `Webhook ${input.webhookId} does not exist`);
    }
    const page: PageInput = { limit: input.limit, ...(input.cursor !== undefined ? { cursor: input.cursor } : {}) };
    const rows = await repo.findDeliveries(this.deps.db, input.webhookId, decodeIdCursor(page.cursor), page.limit + 1);
    const shown = rows.slice(0, page.limit);
    return {
      items: shown.map((r) => ({
        eventId: r.event_id,
        type: r.type,
        attempt: r.attempt,
        status: r.status,
        httpStatus: r.last_http_status,
        error: r.last_error,
        at: r.last_attempt_at,
        nextAttemptAt: r.status === 'PENDING' ? r.next_attempt_at : null,
      })),
      nextCursor: rows.length > page.limit ? String(shown[shown.length - 1]!.id) : null,
    };
  }

  /**
   * One round of the delivery worker: claims what is due (shared with every other process),
   * sends it, and records each outcome. Returns how many were claimed. It waits for the round's
   * attempts only SLOW_ATTEMPT_MS: one still running then goes on alone, and its endpoint is left
   * out of the claims until it ends, so a receiver that hangs (each attempt up to the 5 s
   * timeout) does not hold up every other endpoint's events. `onError` hears an attempt that
   * failed after the round ended (its lease lets another round retry it).
   */
  /**
   * Waits for the attempts still running (each bounded by the delivery timeout), so that a
   * process that stops records what its receivers answered before its database goes: an attempt
   * cut off there would be sent again by another replica after its lease. A claim still on its
   * way is waited for too, and then the attempts it starts: what it claimed is sent as soon as it
   * answers, and its answers are recorded.
   */
  async drain(): Promise<void> {
    while (this.claiming.size > 0 || this.running.size > 0) await Promise.all([...this.claiming, ...this.running]);
  }

  /** After drain(): closes the deliveries' kept-alive connections. */
  async close(): Promise<void> {
    await this.agent?.close();
    this.agent = undefined;
  }

  async deliverDue(batch = 20, onError: (err: unknown) => void = () => {}): Promise<number> {
    const room = Math.min(batch, MAX_IN_FLIGHT - [...this.inFlight.values()].reduce((a, b) => a + b, 0));
    if (room <= 0) return 0;
    // Leases and due times are the database's clock (dbNow), as for holds and idempotency keys:
    // API processes' own clocks drift. `ahead` is how far it is ahead of this process's clock.
    const asked = this.deps.clock.now().getTime();
    const claim = repo.claimDue(this.deps.db, dbNow(this.deps.clock), DELIVERY_LEASE_MS, room, [...this.inFlight.keys()]);
    const claimSettled = claim.then(
      () => {},
      () => {},
    );
    this.claiming.add(claimSettled);
    void claimSettled.finally(() => this.claiming.delete(claimSettled));
    const claimed = await claim;
    let roundOver = false;
    const attempts = claimed.map(async (d) => {
      this.inFlight.set(d.endpoint_id, (this.inFlight.get(d.endpoint_id) ?? 0) + 1);
      try {
        await this.attempt(d, d.claimed_at.getTime() - asked);
      } catch (err) {
        if (!roundOver) throw err;
        onError(err);
      } finally {
        const left = this.inFlight.get(d.endpoint_id)! - 1;
        if (left > 0) this.inFlight.set(d.endpoint_id, left);
        else this.inFlight.delete(d.endpoint_id);
      }
    });
    for (const a of attempts) {
      const settled = a.catch(() => {});
      this.running.add(settled);
      void settled.finally(() => this.running.delete(settled));
    }
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(attempts);
    try {
      await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, SLOW_ATTEMPT_MS)))]);
    } finally {
      roundOver = true;
      clearTimeout(timer);
      all.catch(() => {}); // a rejection before the round ended was thrown above
    }
    return claimed.length;
  }

  private async attempt(d: repo.ClaimedDelivery, ahead: number): Promise<void> {
    if (d.ended) {
      await repo.recordAttempt(this.deps.db, d, { status: 'FAILED', httpStatus: null, error: 'endpoint disabled or deleted', nextAttemptAt: null }, dbNow(this.deps.clock));
      return;
    }
    const { httpStatus, error } = await this.send(d, ahead);
    const now = this.deps.clock.now();
    if (httpStatus !== null && httpStatus >= 200 && httpStatus < 300) {
      await repo.recordAttempt(this.deps.db, d, { status: 'DELIVERED', httpStatus, error: null, nextAttemptAt: null }, dbNow(this.deps.clock));
      return;
    }
    // 410 Gone: the receiver asks never to be called again.
    if (httpStatus === 410) {
      await repo.recordAttempt(this.deps.db, d, { status: 'FAILED', httpStatus, error: '410 Gone: endpoint disabled', nextAttemptAt: null }, dbNow(this.deps.clock));
      await repo.endEndpoint(this.deps.db, d.endpoint_id, { disabledReason: 'answered 410 Gone' }, now);
      return;
    }
    const giveUp = d.claimed_at.getTime() - d.created_at.getTime() >= RETRY_FOR_MS;
    await repo.recordAttempt(this.deps.db, d, {
      status: giveUp ? 'FAILED' : 'PENDING',
      httpStatus,
      error,
      nextAttemptAt: giveUp ? null : plusMs(dbNow(this.deps.clock), retryDelayMs(d.attempt, this.deps.config.retryBaseSeconds)),
    }, dbNow(this.deps.clock));
  }

  /**
   * One signed POST; never throws. Signed with the deciding clock's time (this process's clock
   * plus `ahead`, measured at the claim): a process whose clock drifts must not send a
   * `webhook-timestamp` that receivers refuse as stale (Standard Webhooks allows 5 minutes).
   */
  private async send(d: repo.ClaimedDelivery, ahead: number): Promise<{ httpStatus: number | null; error: string | null }> {
    try {
      await assertDeliverable(d.url, this.deps.config, this.deps.resolve ?? systemResolve);
      const body = JSON.stringify({ id: d.event_id, type: d.type, createdAt: d.event_created_at.toISOString(), data: d.data });
      const sentAt = new Date(this.deps.clock.now().getTime() + ahead);
      const signature = new Signer(d.secret).sign(d.event_id, sentAt, body);
      const init = {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'concert-webhooks/1',
          'webhook-id': d.event_id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      } satisfies RequestInit;
      // Where private endpoints are refused, the socket connects only to an address judged by the
      // same rules when it was resolved for that connection (DNS rebinding: the check above asked
      // DNS on its own). undici's own fetch, since its Agent is of that version.
      const res = this.deps.config.allowPrivate
        ? await (this.deps.fetch ?? fetch)(d.url, init)
        : await ((this.deps.fetch as typeof undiciFetch | undefined) ?? undiciFetch)(d.url, { ...init, dispatcher: (this.agent ??= deliveryAgent(this.deps.resolve ?? systemResolve)) });
      await res.body?.cancel().catch(() => {});
      return { httpStatus: res.status, error: res.ok ? null : `HTTP ${res.status}` };
    } catch (err) {
      // fetch's own message is 'fetch failed'; why (refused, unreachable, reset) is in its cause.
      const cause = err instanceof TypeError && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      const message = err instanceof Error ? (err.name === 'TimeoutError' ? `no answer within ${DELIVERY_TIMEOUT_MS / 1000} s` : err.message + cause) : String(err);
      return { httpStatus: null, error: message.slice(0, 500) };
    }
  }

  /** Deliveries are kept 30 days (events stay: they are the record of what happened). */
  async sweep(): Promise<number> {
    return repo.deleteDeliveriesBefore(this.deps.db, new Date(this.deps.clock.now().getTime() - RETENTION_MS));
  }
}

/** Exponential backoff with jitter: about base, 2×base, 4×base … capped at an hour, each ±20%. */
export function retryDelayMs(attempt: number, baseSeconds: number): number {
  const exact = Math.min(baseSeconds * 1000 * 2 ** Math.max(0, attempt - 1), MAX_RETRY_DELAY_MS);
  return Math.round(exact * (0.8 + Math.random() * 0.4));
}
