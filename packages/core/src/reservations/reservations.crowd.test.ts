import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { admittedFan, useCoreWithSessions } from '../../../../test/core-suite.ts';
import { hashInput } from '../idempotency/idempotency.service.ts';

/**
 * The crowd on one seat at an opening: every hold of a seat the cached seat map shows taken is
 * refused before its idempotency key is claimed, so a refusal costs one read of the key instead
 * of the key's insert and delete (two commits, each a WAL flush). The key still answers a replay,
 * a reuse with another request and a call in progress as before.
 */
describe('holds refused from the cached seat map', () => {
  const s = useCoreWithSessions();

  /** The statements node-postgres sent while fn ran (this process's core). */
  async function statements<T>(fn: () => Promise<T>): Promise<{ outcome: T | string; sent: string[] }> {
    const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
    const original = proto.query;
    const sent: string[] = [];
    proto.query = function (this: unknown, ...a: unknown[]) {
      const first = a[0] as { text?: string } | string;
      const text = typeof first === 'string' ? first : first?.text;
      if (typeof text === 'string') sent.push(text);
      return original.apply(this, a);
    };
    try {
      const outcome = await fn().catch((e: { code?: string }) => e.code ?? String(e));
      return { outcome, sent };
    } finally {
      proto.query = original;
    }
  }
  const keyWrites = (sent: string[]) => sent.filter((t) => /^(insert into|delete from|update) "?idempotency_keys/i.test(t.trim()));
  const keyReads = (sent: string[]) => sent.filter((t) => /^select .* from "?idempotency_keys\b/is.test(t.trim()));

  it('refuses a taken seat with one read of the key and no write', async () => {
    const { core } = s;
    const first = await admittedFan(core, 0);
    await core.reservations.hold(first.user, { scheduleId: first.scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, first.gate);
    // A second fan of the same show, admitted.
    const other = (await core.admin.createUser({ name: 'crowd', initialBalance: 0 })).userId;
    const schedule = await core.concerts.scheduleRow(first.scheduleId);
    const ticket = await core.queue.enter(other, schedule.concert_id);
    const gate = core.queue.gate(other, ticket.token);
    // The crowd looks at the seat map first (which brings this process's cached map up to date).
    expect((await core.concerts.seats(first.scheduleId, gate)).seats.find((x) => x.seatNumber === 1)?.status).toBe('HELD');
    const key = randomUUID();
    const { outcome, sent } = await statements(() => core.reservations.hold(other, { scheduleId: first.scheduleId, seatNumbers: [1, 2], idempotencyKey: key }, gate));
    expect(outcome).toBe('SEAT_UNAVAILABLE');
    expect({ writes: keyWrites(sent), reads: keyReads(sent).length, transactions: sent.filter((t) => /^(begin|commit)$/i.test(t)).length }).toEqual({ writes: [], reads: 1, transactions: 0 });
    const { rows } = await s.sql.query('SELECT count(*)::int AS n FROM idempotency_keys WHERE key = $1', [key]);
    expect(rows[0].n).toBe(0);
    // Nothing of the refused call stays: seat 2 is still free, and another key holds it.
    const held = await core.reservations.hold(other, { scheduleId: first.scheduleId, seatNumbers: [2], idempotencyKey: randomUUID() }, gate);
    expect(held.seats.map((x) => x.seatNumber)).toEqual([2]);
  });

  it('a replay of a hold whose seat it took answers the hold; its key with another request is IDEMPOTENCY_KEY_REUSED', async () => {
    const { core } = s;
    const fan = await admittedFan(core, 0);
    const key = randomUUID();
    const held = await core.reservations.hold(fan.user, { scheduleId: fan.scheduleId, seatNumbers: [3], idempotencyKey: key }, fan.gate);
    // Seat 3 is taken now (by this very hold), and the cached map knows it: the check refuses it,
    // and the key answers instead.
    expect((await core.concerts.seats(fan.scheduleId, fan.gate)).seats.find((x) => x.seatNumber === 3)?.status).toBe('HELD');
    const replay = await statements(() => core.reservations.hold(fan.user, { scheduleId: fan.scheduleId, seatNumbers: [3], idempotencyKey: key }, fan.gate));
    expect(replay.outcome).toEqual(held);
    expect(keyWrites(replay.sent)).toEqual([]);
    const reused = await statements(() => core.reservations.hold(fan.user, { scheduleId: fan.scheduleId, seatNumbers: [3, 4], idempotencyKey: key }, fan.gate));
    expect(reused.outcome).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('a hold refused while a call with its key is still running answers IDEMPOTENCY_IN_PROGRESS', async () => {
    const { core } = s;
    const fan = await admittedFan(core, 0);
    await core.reservations.hold(fan.user, { scheduleId: fan.scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, fan.gate);
    expect((await core.concerts.seats(fan.scheduleId, fan.gate)).seats.find((x) => x.seatNumber === 1)?.status).toBe('HELD');
    const key = randomUUID();
    // A call with this key and request, running (its lease not lapsed), as another process would hold it.
    await s.sql.query(
      `INSERT INTO idempotency_keys (user_id, procedure, key, request_hash, state, owner, locked_until, created_at)
       VALUES ($1, 'reservations.hold', $2, $3, 'IN_PROGRESS', $4, now() + interval '15 seconds', now())`,
      [fan.user, key, hashInput({ scheduleId: fan.scheduleId, seatNumbers: [1] }), randomUUID()],
    );
    const { outcome } = await statements(() => core.reservations.hold(fan.user, { scheduleId: fan.scheduleId, seatNumbers: [1], idempotencyKey: key }, fan.gate));
    expect(outcome).toBe('IDEMPOTENCY_IN_PROGRESS');
  });
});
