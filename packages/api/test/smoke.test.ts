import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestDatabase, expectAppError, key, seedSale, startApi, type TestApi, testEnv } from '../../../test/harness.ts';

describe('smoke: one booking end to end on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let api: TestApi;
  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(testEnv(db.url));
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  it('holds, pays and audits clean', async () => {
    const { concertId, scheduleId, userIds } = await seedSale(api.url, { users: 1, balance: 500_000 });
    const ticket = await client(api.url, { userId: userIds[0]! }).queue.enter.mutate({ concertId });
    expect(ticket.status).toBe('ACTIVE');
    const fan = client(api.url, { userId: userIds[0]!, queueToken: ticket.token });
    const r = await fan.reservations.hold.mutate({ scheduleId, seatNumbers: [3, 4], idempotencyKey: key() });
    expect(r.status).toBe('HELD');
    expect(r.totalPrice).toBe(200_000);
    const p = await fan.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    expect(p.balanceAfter).toBe(300_000);
    expect(p.queueTokenExpired).toBe(true);
    await expectAppError(fan.reservations.hold.mutate({ scheduleId, seatNumbers: [5], idempotencyKey: key() }), 'TOKEN_EXPIRED');
    const again = await client(api.url, { userId: userIds[0]! }).queue.enter.mutate({ concertId });
    const fanAgain = client(api.url, { userId: userIds[0]!, queueToken: again.token });
    await expectAppError(fanAgain.reservations.hold.mutate({ scheduleId, seatNumbers: [3], idempotencyKey: key() }), 'SEAT_UNAVAILABLE');
    const audit = await client(api.url, { adminKey: 'test-admin-key-0123456789' }).admin.audit.query({});
    expect(audit.ok).toBe(true);
  });
});
