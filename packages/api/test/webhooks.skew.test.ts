/**
 * Webhook deliveries from API processes whose own clocks drift (CLOCK_OFFSET_MS), on one
 * PostgreSQL: the database's clock judges a delivery's lease and stamps what is signed, as it does
 * for holds and idempotency keys. Before the change each process leased a delivery with its own
 * clock, so a lease taken by a process 60 s behind had already run out for a process on time,
 * which claimed the delivery again and sent it a second time while the first attempt was still
 * waiting for its answer; and a process 10 minutes behind signed `webhook-timestamp` 10 minutes
 * in the past, which a receiver's Standard Webhooks library refuses (its tolerance is 5 minutes).
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { admin, createTestDatabase, startApi, type TestApi, testEnv } from '../../../test/harness.ts';
import { buySeats, makeShow, Receiver } from './aftersale.shared.ts';

describe('webhook deliveries from API processes whose clocks drift', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let sql: InstanceType<typeof pg.Client>;
  // No background work: each test runs the delivery rounds by hand, on the process it names.
  let behind: TestApi; // clock 10 minutes behind
  let onTime: TestApi;
  let ahead: TestApi; // clock 10 minutes ahead
  let receiver: Receiver;

  beforeAll(async () => {
    db = await createTestDatabase();
    onTime = await startApi(testEnv(db.url), { background: false });
    behind = await startApi(testEnv(db.url, { CLOCK_OFFSET_MS: String(-600_000) }), { background: false });
    ahead = await startApi(testEnv(db.url, { CLOCK_OFFSET_MS: String(600_000) }), { background: false });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    // Every request is held open until the test answers it.
    receiver = await new Receiver().start();
    receiver.answer = () => 'hold';
    receiver.secret = (await admin(onTime.url).admin.webhooks.create.mutate({ url: receiver.url, events: ['schedule.cancelled', 'concert.sold_out'] })).secret;
  });
  afterAll(async () => {
    receiver?.answerHeld(204);
    await behind?.close();
    await ahead?.close();
    await onTime?.close();
    await receiver?.close();
    await sql?.end();
    await db?.drop();
  });

  // A test that failed halfway leaves no attempt running into the next.
  afterEach(async () => {
    receiver.answerHeld(204);
    await Promise.all([behind.core.webhooks.drain(), ahead.core.webhooks.drain(), onTime.core.webhooks.drain()]);
    receiver.requests.length = 0;
  });

  /** A schedule.cancelled event, pending for the receiver; `overdue`: due 20 minutes ago, like a retry long waited for. */
  async function anEvent(overdue = false): Promise<void> {
    const { scheduleId } = await makeShow(onTime.url, 1, 0);
    await admin(onTime.url).admin.schedules.cancel.mutate({ scheduleId });
    if (overdue) await sql.query("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '20 minutes' WHERE status = 'PENDING'");
  }

  it('a delivery leased by a process whose clock is behind is not claimed again by another while its attempt runs', async () => {
    await anEvent(true);
    // The process behind claims it; the receiver holds the request open.
    expect(await behind.core.webhooks.deliverDue()).toBe(1);
    await vi.waitFor(() => expect(receiver.requests).toHaveLength(1), { timeout: 10_000, interval: 20 });
    // By the database's clock the lease has 15 s to run: the process on time leaves it alone.
    expect(await onTime.core.webhooks.deliverDue(), 'deliveries claimed again while their first attempt runs').toBe(0);
    expect(receiver.requests).toHaveLength(1);
    receiver.answerHeld(204);
    await vi.waitFor(async () => expect((await sql.query('SELECT status, attempt FROM webhook_deliveries')).rows).toEqual([{ status: 'DELIVERED', attempt: 1 }]), {
      timeout: 10_000,
      interval: 50,
    });
  });

  /** One round on `api`, the receiver answering 204 to what verifies and 400 to what does not. */
  async function deliverOnce(api: TestApi): Promise<Receiver['requests'][number]> {
    receiver.requests.length = 0;
    const answering = vi.waitFor(
      () => {
        expect(receiver.requests).toHaveLength(1);
        receiver.answerHeld(204); // one that does not verify was answered 400 already
        return receiver.requests[0]!;
      },
      { timeout: 10_000, interval: 10 },
    );
    expect(await api.core.webhooks.deliverDue()).toBe(1);
    const got = await answering;
    await api.core.webhooks.drain();
    return got;
  }

  const lastDelivery = async () =>
    (await sql.query('SELECT d.status, d.last_http_status FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id ORDER BY e.seq DESC LIMIT 1')).rows;

  it('signs with the database’s time: a process 10 minutes behind sends what the Standard Webhooks library accepts', async () => {
    await anEvent(true);
    expect((await deliverOnce(behind)).error).toBeNull();
    expect(await lastDelivery()).toEqual([{ status: 'DELIVERED', last_http_status: 204 }]);
  });

  it('a fresh event is due for the process behind as soon as it is written (the database’s clock says when)', async () => {
    await anEvent();
    expect((await deliverOnce(behind)).error).toBeNull();
    expect(await lastDelivery()).toEqual([{ status: 'DELIVERED', last_http_status: 204 }]);
  });

  it('concert.sold_out written by a process whose clock is ahead is due at once, and dated by the database', async () => {
    const { concertId, scheduleId, userIds } = await makeShow(onTime.url, 1, 1);
    // The sale's read of the show's seats, on the process ahead, writes the event.
    await buySeats(ahead.url, userIds[0]!, concertId, scheduleId, [1]);
    const got = await deliverOnce(onTime);
    expect(got.error).toBeNull();
    const { rows } = await sql.query<{ type: string; created_at: Date; late_ms: number }>(
      "SELECT type, created_at, extract(epoch FROM now() - created_at) * 1000 AS late_ms FROM outbox_events WHERE type = 'concert.sold_out' AND schedule_id = $1",
      [scheduleId],
    );
    expect(rows.map((r) => r.type)).toEqual(['concert.sold_out']);
    // Its createdAt is the database's time, not 10 minutes ahead of it.
    expect(Math.abs(rows[0]!.late_ms)).toBeLessThan(60_000);
    expect(await lastDelivery()).toEqual([{ status: 'DELIVERED', last_http_status: 204 }]);
  });
});
