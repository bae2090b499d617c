import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, client, key, startApi } from '../../../test/harness.ts';

/** What `pnpm start` runs with nothing configured: PGlite on disk and the in-process queue store. */
describe('embedded default (PGlite + memory queue store)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'concert-embedded-'));
  const env = { NODE_ENV: 'test', DATA_DIR: dir, ADMIN_API_KEY: ADMIN_KEY, LOG_LEVEL: 'warn' };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts with bookable demo data, books a seat end to end, and keeps it across a restart', async () => {
    let api = await startApi(env);
    let reservationId: string;
    try {
      expect(api.core.databaseKind).toBe('pglite');
      const concerts = (await client(api.url).concerts.list.query({})).items;
      expect(concerts.length).toBeGreaterThanOrEqual(3);
      const concert = await client(api.url).concerts.get.query({ concertId: concerts[0]!.concertId });
      const schedule = concert.schedules[0]!;
      expect(schedule.totalSeats).toBe(50);
      expect(schedule.bookingOpensAt.getTime()).toBeLessThan(Date.now());
      expect(schedule.startsAt.getTime()).toBeGreaterThan(Date.now());

      const seeded = await client(api.url, { adminKey: ADMIN_KEY }).admin.seedDemo.mutate({});
      const userId = seeded.userIds[0]!;
      const fan = client(api.url, { userId });
      const ticket = await fan.queue.enter.mutate({ concertId: concert.concertId });
      expect(ticket.status).toBe('ACTIVE');
      const withToken = client(api.url, { userId, queueToken: ticket.token });
      const seats = await withToken.concerts.seats.query({ scheduleId: schedule.scheduleId });
      const grades = new Set(seats.seats.map((s) => s.grade));
      expect(grades.size).toBeGreaterThanOrEqual(2);
      const r = await withToken.reservations.hold.mutate({ scheduleId: schedule.scheduleId, seatNumbers: [1], idempotencyKey: key() });
      const paid = await withToken.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
      expect(paid.status).toBe('COMPLETED');
      expect(paid.queueTokenExpired).toBe(true);
      reservationId = r.reservationId;
      expect((await client(api.url, { adminKey: ADMIN_KEY }).admin.audit.query({})).ok).toBe(true);
    } finally {
      await api.close();
    }

    api = await startApi(env);
    try {
      const seededAgain = await client(api.url, { adminKey: ADMIN_KEY }).admin.seedDemo.mutate({});
      const after = await client(api.url, { userId: seededAgain.userIds[0]! }).reservations.get.query({ reservationId });
      expect(after.status).toBe('PAID');
      expect((await client(api.url).concerts.list.query({})).items.length).toBe(3);
    } finally {
      await api.close();
    }
    // Two boots of PGlite with its migrations: about 50 s on a loaded two-core machine.
  }, 240_000);
});
