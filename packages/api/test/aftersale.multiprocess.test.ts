import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { client, createTestDatabase, key, outcome, REDIS_URL, type SpawnedApi, spawnApi, tally, testEnv } from '../../../test/harness.ts';
import { adminAt, admitted, buySeats, expectAuditOk, holdSeats, makeShow, Receiver } from './aftersale.shared.ts';

/**
 * Refunds, cancelled shows, waitlist offers and webhooks with the requests split over two API
 * OS processes on one database (plus a third whose holds last three seconds, for lapsed holds):
 * only the database keeps them honest.
 */
describe('after the sale: two API processes on one PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const apis: SpawnedApi[] = [];
  let shortHolds: SpawnedApi | undefined;
  let sql: InstanceType<typeof pg.Client>;
  let env: Record<string, string>;
  const url = (i: number) => apis[i % apis.length]!.url;
  const rows = async <T,>(text: string, params: unknown[] = []) => (await sql.query(text, params)).rows as T[];

  beforeAll(async () => {
    db = await createTestDatabase();
    env = testEnv(db.url, {
      REDIS_URL,
      REDIS_KEY_PREFIX: `aftersale-${randomBytes(4).toString('hex')}:`,
      QUEUE_MAX_ACTIVE: '100000',
      DB_POOL_SIZE: '6',
      WAITLIST_OFFER_SECONDS: '2',
      WEBHOOK_RETRY_BASE_SECONDS: '0.3',
    });
    // One at a time: on a loaded machine three cold starts at once can each miss the start deadline.
    for (const extra of [{}, {}, { HOLD_TTL_SECONDS: '3' }] as Array<Record<string, string>>) {
      const started = await spawnApi({ ...env, ...extra });
      if (apis.length < 2) apis.push(started);
      else shortHolds = started;
    }
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await Promise.all([...apis, ...(shortHolds ? [shortHolds] : [])].map((a) => a.stop()));
    await db?.drop();
  });

  it('10 refunds of one reservation with different keys over two processes: one credit', async () => {
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 4, 1, 500_000);
    const [u] = userIds as [number];
    const r = await buySeats(url(0), u, concertId, scheduleId, [1, 2]);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        outcome(client(url(i), { userId: u }, { batch: false }).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key(`refund${i}`) })),
      ),
    );
    expect(tally(outcomes)).toEqual({ OK: 1, NOT_REFUNDABLE: 9 });
    expect((await client(url(1), { userId: u }).balance.get.query({})).balance).toBe(500_000);
    const credits = await rows<{ n: number }>(`SELECT count(*)::int AS n FROM ledger_entries WHERE reservation_id = $1 AND kind = 'REFUND'`, [r.reservationId]);
    expect(credits[0]!.n).toBe(1);
    await expectAuditOk(url(1));
  });

  it('three cancels of a show at once, on two processes, with holds racing them: every buyer refunded once', async () => {
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 20, 12, 500_000);
    const buyers = userIds.slice(0, 6);
    const holders = userIds.slice(6, 8);
    const racers = userIds.slice(8);
    const paid = await Promise.all(buyers.map((u, i) => buySeats(url(i), u, concertId, scheduleId, [2 * i + 1, 2 * i + 2])));
    await Promise.all(holders.map((u, i) => holdSeats(url(i), u, concertId, scheduleId, [13 + i])));
    const racerClients = await Promise.all(racers.map((u, i) => admitted(url(i), u, concertId)));
    const [cancels, holds] = await Promise.all([
      Promise.all([0, 1, 2].map((i) => adminAt(url(i)).admin.schedules.cancel.mutate({ scheduleId }))),
      Promise.all(racerClients.map((api, i) => outcome(api.reservations.hold.mutate({ scheduleId, seatNumbers: [16 + i], idempotencyKey: key() })))),
    ]);
    expect(cancels.reduce((n, c) => n + c.refunded, 0)).toBe(paid.length);
    // Every hold is released once: the two made before, and any racer's that got in first.
    const racersIn = holds.filter((h) => h === 'OK').length;
    expect(cancels.reduce((n, c) => n + c.released, 0)).toBe(holders.length + racersIn);
    expect(holds.every((h) => h === 'OK' || h === 'SCHEDULE_CANCELLED')).toBe(true);
    for (const u of buyers) expect((await client(url(u), { userId: u }).balance.get.query({})).balance).toBe(500_000);
    const perReservation = await rows<{ status: string; refunds: number }>(
      `SELECT r.status, (SELECT count(*)::int FROM refunds f WHERE f.reservation_id = r.id) AS refunds FROM reservations r WHERE r.schedule_id = $1`,
      [scheduleId],
    );
    expect(perReservation.filter((r) => r.status === 'REFUNDED').map((r) => r.refunds)).toEqual(paid.map(() => 1));
    expect(perReservation.filter((r) => r.status === 'HELD' || r.status === 'PAID')).toEqual([]);
    // No longer listed or bookable, on either process; a rerun finds nothing left to do.
    for (const i of [0, 1]) {
      expect((await client(url(i)).concerts.get.query({ concertId })).schedules).toEqual([]);
      expect(await outcome(racerClients[i]!.reservations.hold.mutate({ scheduleId, seatNumbers: [20], idempotencyKey: key() }))).toBe('SCHEDULE_CANCELLED');
    }
    expect(await adminAt(url(1)).admin.schedules.cancel.mutate({ scheduleId })).toEqual({ scheduleId, refunded: 0, released: 0 });
    const events = await rows<{ n: number }>(`SELECT count(*)::int AS n FROM outbox_events WHERE schedule_id = $1 AND type = 'schedule.cancelled'`, [scheduleId]);
    expect(events[0]!.n).toBe(1);
    const listed = await adminAt(url(0)).admin.concerts.list.query({ limit: 100 });
    expect(listed.items.find((c) => c.concertId === concertId)?.schedules[0]).toMatchObject({ cancelled: true, available: 0, held: 0, sold: 0, revenue: 0 });
    await expectAuditOk(url(0));
  });

  it('the waitlist offer chain: cancel → offer at once; lapse → next entry; paid without a token; nobody left → back on sale', async () => {
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 3, 6, 500_000);
    const [x, y, z, w1, w2, w3] = userIds as [number, number, number, number, number, number];
    const held = await holdSeats(url(0), x, concertId, scheduleId, [1]);
    const yPaid = await buySeats(url(1), y, concertId, scheduleId, [2]);
    await buySeats(url(0), z, concertId, scheduleId, [3]);
    const fan = (u: number, i = u) => client(url(i), { userId: u }, { batch: false });
    // Joining needs a show with no seat AVAILABLE.
    const e1 = await fan(w1, 0).waitlist.join.mutate({ scheduleId, seatCount: 1 });
    const e2 = await fan(w2, 1).waitlist.join.mutate({ scheduleId, seatCount: 1 });
    const e3 = await fan(w3, 0).waitlist.join.mutate({ scheduleId, seatCount: 2 });
    expect([e1, e2, e3].map((e) => [e.status, e.position])).toEqual([
      ['WAITING', 1],
      ['WAITING', 2],
      ['WAITING', 3],
    ]);
    expect(await fan(w1, 1).waitlist.join.mutate({ scheduleId, seatCount: 1 })).toMatchObject({ entryId: e1.entryId });

    // A cancelled hold is offered in the same transaction: the first entry holds it at once.
    await fan(x, 1).reservations.cancel.mutate({ reservationId: held.reservationId });
    const offered1 = (await fan(w1, 0).waitlist.mine.query({})).items[0]!;
    expect(offered1).toMatchObject({ entryId: e1.entryId, status: 'OFFERED', position: null, offer: { seatNumbers: [1] } });
    const offer1 = await fan(w1, 1).reservations.get.query({ reservationId: offered1.offer!.reservationId });
    expect(offer1).toMatchObject({ status: 'HELD', source: 'WAITLIST', seats: [{ seatNumber: 1 }] });
    expect(offer1.holdExpiresAt.getTime() - offer1.createdAt.getTime()).toBe(2000);

    // The offer lapses (2 s): the next entry that fits gets the seat (the 2-seat entry does not fit).
    await vi.waitFor(async () => expect((await fan(w2, 0).waitlist.mine.query({})).items[0]!.status).toBe('OFFERED'), { timeout: 15_000, interval: 200 });
    expect((await fan(w1, 1).waitlist.mine.query({})).items[0]!.status).toBe('LAPSED');
    expect((await fan(w3, 1).waitlist.mine.query({})).items[0]).toMatchObject({ status: 'WAITING', position: 1 });
    const offer2 = (await fan(w2, 1).waitlist.mine.query({})).items[0]!.offer!;
    // Paid with no queue token at all: the offer is its own admission.
    const payment = await fan(w2, 0).payments.pay.mutate({ reservationId: offer2.reservationId, idempotencyKey: key() });
    expect(payment).toMatchObject({ status: 'COMPLETED', queueTokenExpired: false });
    expect((await fan(w2, 1).waitlist.mine.query({})).items[0]!.status).toBe('ACCEPTED');
    await fan(w3, 0).waitlist.leave.mutate({ entryId: e3.entryId });
    expect((await fan(w3, 1).waitlist.mine.query({})).items[0]!.status).toBe('LEFT');

    // Nobody left waiting: a refunded seat goes back on sale.
    await fan(y, 1).reservations.refund.mutate({ reservationId: yPaid.reservationId, idempotencyKey: key() });
    expect((await client(url(0)).concerts.schedule.query({ scheduleId })).availableSeats).toBe(1);
    await expect(fan(w3, 1).waitlist.join.mutate({ scheduleId, seatCount: 1 })).rejects.toMatchObject({ data: { appCode: 'SEATS_AVAILABLE' } });
    const seats = (await (await admitted(url(1), w3, concertId)).concerts.seats.query({ scheduleId })).seats.map((s) => s.status);
    expect(seats).toEqual(['SOLD', 'AVAILABLE', 'SOLD']);
    await expectAuditOk(url(1));
  });

  it('a lapsed ordinary hold’s seats are offered to the waitlist within two seconds', async () => {
    const short = shortHolds!.url;
    const { concertId, scheduleId, userIds } = await makeShow(url(0), 2, 3, 500_000);
    const [p, q, w] = userIds as [number, number, number];
    await buySeats(url(0), q, concertId, scheduleId, [2]);
    const hold = await holdSeats(short, p, concertId, scheduleId, [1]);
    // While the three-second hold lives the show has nothing AVAILABLE: join its waitlist.
    const entry = await client(url(1), { userId: w }).waitlist.join.mutate({ scheduleId, seatCount: 1 });
    expect(entry.status).toBe('WAITING');
    const offered = await vi.waitFor(
      async () => {
        const e = (await client(url(0), { userId: w }).waitlist.mine.query({})).items[0]!;
        expect(e.status).toBe('OFFERED');
        return e;
      },
      { timeout: 15_000, interval: 100 },
    );
    const offer = await client(url(1), { userId: w }).reservations.get.query({ reservationId: offered.offer!.reservationId });
    expect(offer.createdAt.getTime() - hold.holdExpiresAt.getTime()).toBeLessThanOrEqual(2000);
    expect(offer.createdAt.getTime()).toBeGreaterThanOrEqual(hold.holdExpiresAt.getTime());
    expect((await client(url(0), { userId: p }).reservations.get.query({ reservationId: hold.reservationId })).status).toBe('EXPIRED');
    await expectAuditOk(url(0));
  });

  it('webhooks: a receiver that never answers does not hold up another endpoint’s events', async () => {
    const healthy = await new Receiver().start();
    const stuck = await new Receiver().start();
    try {
      const ops = adminAt(url(0));
      healthy.secret = (await ops.admin.webhooks.create.mutate({ url: healthy.url, events: ['reservation.held'] })).secret;
      stuck.secret = (await ops.admin.webhooks.create.mutate({ url: stuck.url, events: ['reservation.held'] })).secret;
      stuck.answer = () => 'hang';
      const { concertId, scheduleId, userIds } = await makeShow(url(0), 40, 40);
      const held: string[] = [];
      for (const [i, u] of userIds.entries()) held.push((await holdSeats(url(i), u, concertId, scheduleId, [i + 1])).reservationId);
      await vi.waitFor(() => expect(healthy.delivered().length).toBe(held.length), { timeout: 30_000, interval: 100 });
      // Each attempt on the stuck endpoint takes the whole 5 s timeout; the healthy one's events
      // must not wait behind them.
      const lateness = healthy.delivered().map((e) => e.at - Date.parse(e.createdAt));
      expect(Math.max(...lateness), "the healthy endpoint's lateness, ms (4.7 s before the change)").toBeLessThan(3_500);
      expect(stuck.requests.length).toBeGreaterThan(0);
      for (const w of await ops.admin.webhooks.list.query({})) await ops.admin.webhooks.delete.mutate({ webhookId: w.webhookId });
    } finally {
      await healthy.close();
      await stuck.close();
    }
  });

  it('webhooks: signed, retried after 500s, in order per reservation, disabled on 410, and delivered by the survivor of a SIGKILL', async () => {
    const receiver = await new Receiver().start();
    const gone = await new Receiver().start();
    let spare: SpawnedApi | undefined;
    try {
      const ops = adminAt(url(0));
      const hook = await ops.admin.webhooks.create.mutate({
        url: receiver.url,
        events: ['reservation.held', 'reservation.cancelled', 'payment.completed', 'reservation.refunded', 'reservation.expired', 'schedule.cancelled', 'waitlist.offered', 'concert.sold_out'],
        description: 'test receiver',
      });
      expect(hook.secret).toMatch(/^whsec_/);
      receiver.secret = hook.secret;
      const goneHook = await ops.admin.webhooks.create.mutate({ url: gone.url, events: ['reservation.held'] });
      gone.secret = goneHook.secret;
      gone.answer = () => 410;

      const { concertId, scheduleId, userIds } = await makeShow(url(0), 2, 2, 500_000);
      const [u] = userIds as [number, number];
      // The first hold's event is refused twice with a 500, then accepted.
      let failing: string | undefined;
      receiver.answer = (e, attempt) => {
        if (e.type === 'reservation.held' && failing === undefined) failing = e.data.reservation.reservationId;
        return e.data.reservation?.reservationId === failing && e.type === 'reservation.held' && attempt <= 2 ? 500 : 204;
      };
      const r = await buySeats(url(1), u, concertId, scheduleId, [1, 2]);
      await vi.waitFor(() => expect(receiver.delivered((e) => e.data.reservation?.reservationId === r.reservationId).map((e) => e.type)).toEqual(['reservation.held', 'payment.completed']), {
        timeout: 20_000,
        interval: 100,
      });
      expect(receiver.requests.filter((e) => e.type === 'reservation.held' && e.data.reservation.reservationId === r.reservationId).map((e) => e.answered)).toEqual([500, 500, 204]);
      expect(receiver.requests.every((e) => e.verified)).toBe(true);
      // payment.completed waited for the held event ahead of it, though it was ready first.
      const heldAt = receiver.delivered((e) => e.type === 'reservation.held' && e.data.reservation.reservationId === r.reservationId)[0]!.at;
      expect(receiver.requests.filter((e) => e.type === 'payment.completed' && e.data.reservation.reservationId === r.reservationId).every((e) => e.at >= heldAt)).toBe(true);
      const held = receiver.delivered((e) => e.type === 'reservation.held' && e.data.reservation.reservationId === r.reservationId)[0]!;
      expect(held.data.reservation).toMatchObject({ userId: u, concertId, scheduleId, totalPrice: 200_000, status: 'HELD', source: 'QUEUE' });
      const sold = await vi.waitFor(() => {
        const s = receiver.delivered((e) => e.type === 'concert.sold_out' && e.data.scheduleId === scheduleId);
        expect(s).toHaveLength(1);
        return s[0]!;
      }, { timeout: 10_000 });
      expect(sold.data).toMatchObject({ concertId, scheduleId, totalSeats: 2 });
      const deliveries = await ops.admin.webhooks.deliveries.query({ webhookId: hook.webhookId, limit: 100 });
      expect(deliveries.items.find((d) => d.eventId === held.id)).toMatchObject({ type: 'reservation.held', attempt: 3, status: 'DELIVERED', httpStatus: 204, nextAttemptAt: null });

      // 410 Gone: the endpoint is disabled after its first answer and hears nothing more.
      await vi.waitFor(async () => expect((await ops.admin.webhooks.list.query({})).find((w) => w.webhookId === goneHook.webhookId)?.disabled).toBe(true), { timeout: 10_000 });
      const goneCount = gone.requests.length;
      expect(goneCount).toBe(1);
      expect((await ops.admin.webhooks.deliveries.query({ webhookId: goneHook.webhookId })).items[0]).toMatchObject({ status: 'FAILED', httpStatus: 410 });

      // A process SIGKILLed right after its commit: the event is in the outbox, and the other
      // process sends it. Should the doomed process pick it up first, the receiver leaves that
      // request unanswered, so only a delivery after the kill can succeed.
      spare = await spawnApi(env);
      let killedAt = Infinity;
      receiver.answer = (e) => (e.type === 'reservation.refunded' && Date.now() < killedAt ? 'hang' : 204);
      await client(spare.url, { userId: u }, { batch: false }).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
      await spare.stop('SIGKILL');
      killedAt = Date.now();
      const refunded = await vi.waitFor(
        () => {
          const got = receiver.delivered((e) => e.type === 'reservation.refunded' && e.data.reservation.reservationId === r.reservationId);
          expect(got).toHaveLength(1);
          return got[0]!;
        },
        { timeout: 40_000, interval: 200 },
      );
      expect(refunded.at).toBeGreaterThanOrEqual(killedAt);
      expect(refunded.data.refund).toMatchObject({ amount: 200_000, reason: 'USER' });
      expect(gone.requests.length).toBe(goneCount);
      expect(receiver.requests.every((e) => e.verified)).toBe(true);
      await expectAuditOk(url(1));
    } finally {
      await spare?.stop('SIGKILL');
      await receiver.close();
      await gone.close();
    }
  });
});
