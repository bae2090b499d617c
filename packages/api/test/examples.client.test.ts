import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Reservation } from '@concert/core';
import { admin, client, ROOT, seedSale, useApi } from '../../../test/harness.ts';

/** The example as it is shipped; loaded at run time, since it type-checks against the packed @concert/api (pack.test.ts). */
const { buyTwoSeats, connect } = (await import(path.join(ROOT, 'examples/client/src/client.ts'))) as {
  buyTwoSeats(concertId: number, scheduleId: number): Promise<Reservation>;
  connect(url: string, userId: string): void;
};

/**
 * examples/client, the plain tRPC frontend the README points to, run against a live server with its
 * default rate limits. Its buyTwoSeats polled queue.status every second while WAITING: a fan more
 * than a few places back is asked to wait longer (pollAfterMs), and a poll sooner than half of it
 * is RATE_LIMITED, so the example threw a second after entering a line of 60 (found running it
 * from an outside project against a server with maxActive 1). A line with an opening time starts
 * its entrants in PRE_QUEUE, which the loop did not wait out either: it went to the seat map
 * with a ticket not yet admitted.
 */
describe('examples/client against a live server', () => {
  const suite = useApi();

  it('waits its turn as pollAfterMs asks, far back in a line, and buys', { timeout: 90_000 }, async () => {
    const { url } = suite.api;
    const { concertId, scheduleId, userIds } = await seedSale(url, { users: 61, seatCount: 10 });
    const [fan, ...ahead] = userIds as [number, ...number[]];
    await admin(url).admin.queue.configure.mutate({ concertId, maxActive: 1 });
    for (const userId of ahead) await client(url, { userId }).queue.enter.mutate({ concertId });
    connect(`${url}/trpc`, String(fan));
    const bought = buyTwoSeats(concertId, scheduleId);
    bought.catch(() => {});
    // The fan is 61st: pollAfterMs is past 2 s, so a poll every second is refused.
    await new Promise((r) => setTimeout(r, 3_500));
    for (const userId of ahead) {
      const ticket = await client(url, { userId }).queue.enter.mutate({ concertId });
      await client(url, { userId, queueToken: ticket.token }).queue.leave.mutate({});
    }
    const paid = await bought;
    expect(paid.status).toBe('PAID');
    expect(paid.seats).toHaveLength(2);
  });

  it('waits out the pre-queue before the seat map', { timeout: 60_000 }, async () => {
    const { url } = suite.api;
    const { concertId, scheduleId, userIds } = await seedSale(url, { users: 1, seatCount: 10 });
    await admin(url).admin.queue.configure.mutate({ concertId, opensAt: new Date(Date.now() + 3_000) });
    connect(`${url}/trpc`, String(userIds[0]));
    const paid = await buyTwoSeats(concertId, scheduleId);
    expect(paid.status).toBe('PAID');
  });
});
