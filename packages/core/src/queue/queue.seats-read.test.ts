import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.ts';
import { QueueService } from './queue.service.ts';
import type { Inventory } from './queue.store.ts';
import { MemoryQueueStore } from './queue.store.memory.ts';

/**
 * The line knows the inventory between ticks: a committed change of the seats is read by its
 * writer before it answers, so whatever settles the line next (a payment giving up its token
 * right after its hold) admits against the seats as they are, not as the last tick read them.
 */
const lineDeps = (clock: FakeClock) => ({
  store: new MemoryQueueStore(),
  clock,
  config: {
    queue: { maxActive: 1, activeTtlSeconds: 600, idleTimeoutSeconds: 60 },
    queueTokenSecret: 'a test secret of at least thirty-two characters',
    rateLimits: { enabled: false, mutationsPer10s: 0, enterPer10s: 0 },
  },
  assertConcert: async () => {},
});

/** One slot, the embedded store, and seats as `seats()` says they are now. */
function line(clock: FakeClock, seats: () => Inventory): QueueService {
  return new QueueService({ ...lineDeps(clock), inventory: async () => seats() });
}

describe('the waiting room after a change of the seats', () => {
  it('does not admit the next fan on the counts from before a hold of the last seats, and sells out when they are paid', async () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 1, 12));
    let seats: Inventory = { available: 4, held: 0, nextLapse: null };
    const queue = line(clock, () => seats);
    const d = await queue.enter(1, 7);
    const e = await queue.enter(2, 7);
    expect([d.status, e.status]).toEqual(['ACTIVE', 'WAITING']);
    await queue.tick(); // the periodic read: four seats AVAILABLE

    // D holds the last four seats and pays for them at once, well within a tick.
    clock.advance(10);
    seats = { available: 0, held: 4, nextLapse: clock.now().getTime() + 600_000 };
    await queue.seatsChanged(7);
    clock.advance(10);
    seats = { available: 0, held: 0, nextLapse: null };
    await queue.seatsChanged(7);
    const pass = await queue.gate(1, d.token).admit(7);
    await queue.spend({ concertId: 7, tokenId: pass.tokenId });

    const after = await queue.status(2, e.token);
    expect([after.status, after.position, after.pollAfterMs]).toEqual(['SOLD_OUT', null, 60_000]);
    expect((await queue.enter(3, 7)).status).toBe('SOLD_OUT');
    expect((await queue.stats(7)).state).toBe('SOLD_OUT');
  });

  it('keeps the next fan waiting when a leave follows a hold of every seat', async () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 1, 12));
    let seats: Inventory = { available: 2, held: 0, nextLapse: null };
    const queue = line(clock, () => seats);
    const d = await queue.enter(1, 7);
    const e = await queue.enter(2, 7);
    await queue.tick();
    // Someone else (a waitlist offer) holds both seats; D gives up its token.
    clock.advance(10);
    seats = { available: 0, held: 2, nextLapse: clock.now().getTime() + 5_000 };
    await queue.seatsChanged(7);
    await queue.leave(1, d.token);
    const held = await queue.status(2, e.token);
    expect([held.status, held.position, held.etaSeconds]).toEqual(['WAITING', 1, null]);
    expect((await queue.stats(7)).state).toBe('ALL_HELD');
  });

  it('shares reads between the writers of one concert: one at a time, and each writer’s change is in the read it waits for', async () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 1, 12));
    let seats: Inventory = { available: 20, held: 0, nextLapse: null };
    let reads = 0;
    let inFlight = 0;
    let most = 0;
    const queue = new QueueService({
      ...lineDeps(clock),
      inventory: async () => {
        reads++;
        most = Math.max(most, ++inFlight);
        const now = seats;
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        return now;
      },
    });
    const d = await queue.enter(1, 7);
    const e = await queue.enter(2, 7);
    await queue.tick();
    reads = 0;
    // Twenty holds of one seat each commit at once; the last takes the last seat.
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i));
        seats = { available: 19 - i, held: i + 1, nextLapse: clock.now().getTime() + 600_000 };
        await queue.seatsChanged(7);
      }),
    );
    expect(most).toBe(1);
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(reads).toBeLessThan(20);
    await queue.leave(1, d.token);
    expect([(await queue.status(2, e.token)).status, (await queue.stats(7)).state]).toEqual(['WAITING', 'ALL_HELD']);
  });
});
