import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.ts';
import { QueueService, STATS_FRESH_MS } from './queue.service.ts';
import { MemoryQueueStore } from './queue.store.memory.ts';
import type { QueueStore } from './queue.store.ts';

/** A store that counts the calls that settle one line each (what a scrape must not make per concert). */
function counted(store: QueueStore) {
  const calls = { stats: 0 };
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'stats') calls.stats++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: wrapped, calls };
}

describe('the queue’s numbers for /metrics', () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 23, 12));
  const { store, calls } = counted(new MemoryQueueStore());
  const queue = new QueueService({
    store,
    clock,
    config: { queue: { maxActive: 1, activeTtlSeconds: 600, idleTimeoutSeconds: 600 }, queueTokenSecret: 'x'.repeat(32), rateLimits: { enabled: false, mutationsPer10s: 0, enterPer10s: 0 } },
    assertConcert: async () => {},
    inventory: async () => ({ available: 10, held: 0, nextLapse: null }),
  });

  it('come from the last tick: a scrape settles no line', async () => {
    for (const concertId of [1, 2, 3]) for (const userId of [1, 2]) await queue.enter(userId, concertId);
    await queue.tick();
    const before = calls.stats;
    const lines = await queue.allStats();
    expect(calls.stats).toBe(before);
    expect(lines.map((l) => [l.concertId, l.active, l.waiting])).toEqual([
      [1, 1, 1],
      [2, 1, 1],
      [3, 1, 1],
    ]);
    // The tick's numbers move with the line.
    await queue.enter(3, 1);
    await queue.tick();
    expect((await queue.allStats()).find((l) => l.concertId === 1)?.waiting).toBe(2);
    expect(calls.stats).toBe(before);
  });

  it('are read afresh when no tick ran lately (a process without the ticker)', async () => {
    clock.advance(STATS_FRESH_MS + 1);
    const before = calls.stats;
    expect((await queue.allStats()).map((l) => l.concertId)).toEqual([1, 2, 3]);
    expect(calls.stats).toBe(before + 3);
  });
});

describe('the first enter of a concert in a process', () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 23, 12));
  const config = { queue: { maxActive: 5, activeTtlSeconds: 600, idleTimeoutSeconds: 600 }, queueTokenSecret: 'x'.repeat(32), rateLimits: { enabled: false, mutationsPer10s: 0, enterPer10s: 0 } };

  it('waits for a read of the seats, so a concert with nothing on sale admits nobody; read once, again after a failed read', async () => {
    const reads = { n: 0, fail: false };
    const queue = new QueueService({
      store: new MemoryQueueStore(),
      clock,
      config,
      assertConcert: async () => {},
      inventory: async () => {
        reads.n++;
        if (reads.fail) throw new Error('database away');
        // Nothing AVAILABLE: the only show's booking has not opened (its seats are to come).
        return { available: 0, held: 2, nextLapse: null };
      },
    });
    // Without the read, the line had no inventory: "never read never blocks", and the fan was ACTIVE.
    expect((await queue.enter(1, 7)).status).toBe('WAITING');
    expect((await queue.enter(2, 7)).status).toBe('WAITING');
    expect(reads.n).toBe(1);
    reads.fail = true;
    await queue.enter(1, 8);
    await queue.enter(2, 8);
    expect(reads.n).toBe(3);
  });
});
