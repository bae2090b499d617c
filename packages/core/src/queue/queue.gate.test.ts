import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, testEnv } from '../../../../test/harness.ts';
import { loadConfig } from '../config.ts';
import { transaction } from '../db/database.ts';
import { type Core, createCore } from '../index.ts';
import { sellReservation } from '../payments/payments.repository.ts';
import { holdSeats } from '../reservations/reservations.repository.ts';
import type { ActivePass } from './queue.gate.ts';

/**
 * The queue gate cannot be forgotten: every booking write asks for the pass that only the gate's
 * check makes (checked by the compiler, `pnpm typecheck`), and a pass opens only its own concert
 * (checked by the database).
 */
describe('the queue gate’s pass', () => {
  let db: TestDatabase;
  let core: Core;
  beforeAll(async () => {
    db = await createTestDatabase();
    // No REDIS_URL: the embedded queue store; admission is immediate.
    core = await createCore(loadConfig(testEnv(db.url)));
  });
  afterAll(async () => {
    await core?.close();
    await db?.drop();
  });

  const concert = async () => {
    const startsAt = new Date(Date.now() + 86_400_000);
    const c = await core.concerts.create({ title: 'Gate', venue: '', schedules: [{ startsAt, bookingOpensAt: new Date(Date.now() - 1000), seatCount: 5 }] });
    return { concertId: c.concertId, scheduleId: c.schedules[0]!.scheduleId };
  };

  it('cannot be made by hand or skipped: booking writes do not compile without one', () => {
    // @ts-expect-error the brand cannot be written outside the gate
    const forged: ActivePass = { userId: 1, concertId: 1, tokenId: 'x' };
    const writes = (pass: ActivePass) => async () => {
      await transaction(core.db, async (trx) => {
        const hold = { reservationId: '00000000-0000-4000-8000-000000000000', userId: 1, scheduleId: 1, seatNumbers: [1], heldUntil: new Date(), now: new Date(), limit: 4 };
        const sale = { paymentId: hold.reservationId, reservationId: hold.reservationId, userId: 1, amount: 0, seatCount: 1, balanceBefore: 0, now: new Date() };
        // @ts-expect-error a hold without the gate's pass
        await holdSeats(trx, hold);
        // @ts-expect-error a sale without the gate's pass
        await sellReservation(trx, sale);
        await holdSeats(trx, pass, hold);
      });
    };
    // Nothing above runs: the assertions are the compiler's (an @ts-expect-error that expects no error fails typecheck).
    expect(typeof writes(forged)).toBe('function');
  });

  it('is made only for an ACTIVE token of the caller, and carries that token', async () => {
    const { concertId } = await concert();
    const user = (await core.admin.createUser({ name: 'fan', initialBalance: 0 })).userId;
    const ticket = await core.queue.enter(user, concertId);
    const pass = await core.queue.gate(user, ticket.token).admit(concertId);
    expect(pass).toMatchObject({ userId: user, concertId });
    expect(Object.isFrozen(pass)).toBe(true);
    await expect(core.queue.gate(user + 1, ticket.token).admit(concertId)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await expect(core.queue.gate(user, undefined).admit(concertId)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await expect(core.queue.gate(user, ticket.token).admit(concertId + 1)).rejects.toMatchObject({ code: 'TOKEN_WRONG_CONCERT' });
  });

  it('for one concert claims no seat of another, even when code passes the wrong schedule', async () => {
    const a = await concert();
    const b = await concert();
    const user = (await core.admin.createUser({ name: 'fan', initialBalance: 0 })).userId;
    const passA = await core.queue.gate(user, (await core.queue.enter(user, a.concertId)).token).admit(a.concertId);
    const reservationId = '00000000-0000-4000-8000-000000000001';
    const held = await transaction(core.db, (trx) =>
      holdSeats(trx, passA, { reservationId, userId: user, scheduleId: b.scheduleId, seatNumbers: [1, 2], heldUntil: new Date(Date.now() + 60_000), now: new Date(), limit: 4 }),
    );
    // The statement is sent with the next one (WITH_NEXT): here the COMMIT; its rows are read after.
    expect(held.read().seats).toEqual([]);
  });
});
