import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestDatabase, startApi, type TestApi, testEnv } from '../../../test/harness.ts';
import { adminAt } from './aftersale.shared.ts';

/**
 * Joining the waitlist of a show whose booking has not opened (found from outside): it answered
 * SEATS_AVAILABLE, "book them instead", and the hold the fan was sent to is refused
 * BOOKING_NOT_OPEN. The show is not sold out before it is on sale: the join says when it opens.
 */
describe('waitlist.join before the show goes on sale', () => {
  let db: { url: string; drop: () => Promise<void> };
  let api: TestApi;
  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(testEnv(db.url), { background: false });
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  it('is BOOKING_NOT_OPEN with the opening time, over tRPC and REST; a show on sale with seats is still SEATS_AVAILABLE', async () => {
    const a = adminAt(api.url);
    const opensAt = new Date(Date.now() + 86_400_000);
    const c = await a.admin.concerts.create.mutate({
      title: 'Not yet on sale',
      schedules: [
        { startsAt: new Date(Date.now() + 7 * 86_400_000), bookingOpensAt: opensAt, seatCount: 2 },
        { startsAt: new Date(Date.now() + 8 * 86_400_000), bookingOpensAt: new Date(Date.now() - 60_000), seatCount: 2 },
      ],
    });
    const [scheduleId, openShow] = c.schedules.map((s) => s.scheduleId) as [number, number];
    const { userId } = await a.admin.users.create.mutate({ name: 'early fan', initialBalance: 0 });
    const fan = client(api.url, { userId }, { batch: false });
    await expect(fan.waitlist.join.mutate({ scheduleId, seatCount: 1 })).rejects.toMatchObject({
      data: { appCode: 'BOOKING_NOT_OPEN', httpStatus: 412 },
    });
    const res = await fetch(`${api.url}/v1/schedules/${scheduleId}/waitlist`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': String(userId) },
      body: JSON.stringify({ seatCount: 1 }),
    });
    expect(res.status).toBe(412);
    expect(await res.json()).toMatchObject({ appCode: 'BOOKING_NOT_OPEN' });
    expect((await fan.waitlist.mine.query({})).items).toEqual([]);

    // A show on sale with seats left is still SEATS_AVAILABLE.
    await expect(fan.waitlist.join.mutate({ scheduleId: openShow, seatCount: 1 })).rejects.toMatchObject({ data: { appCode: 'SEATS_AVAILABLE' } });
  });
});
