import { describe, expect, it } from 'vitest';
import type { QueueSettings, TokenState } from './queue.store.ts';
import { MemoryQueueStore } from './queue.store.memory.ts';

/**
 * A sale at the product's default activeTtlSeconds (600 s) on the test clock: 40 fans in a paused
 * line of 5 slots, resumed; every fan polls when told (pollAfterMs), notices ACTIVE at that poll
 * and leaves 1.5 s later. Found from outside (the API's ETA test ran its lines at a 6 s TTL, where
 * the old layout happened to fit): the life table and the curve were laid out in fractions of the
 * TTL and the prior spread its guess up to it, so the first 20 s were told about 90 times too
 * long (median error 8,985% here); and a curve drawn before the fifth departure, read after it,
 * paced a fan at place 25 to come back in 20 s, so five slots stood unused for 8–10 s and the
 * sale took 25 s instead of 16. The memory store mirrors the Redis one (queue.store.test.ts holds
 * the two to the same numbers), so this runs on the memory store alone.
 */
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const tid = (n: number) => `tok${String(n).padStart(19, '0')}`;
const FANS = 40;
const STEP_MS = 50;
const THINK_MS = 1_500;

describe('the ETA at the default activeTtlSeconds, on the test clock', () => {
  it('is honest in the first 20 s after a resume, and never leaves an admitted fan unaware for long', async () => {
    const store = new MemoryQueueStore();
    const d: QueueSettings = { maxActive: 5, activeTtlSeconds: 600, idleTimeoutSeconds: 60, paused: true, opensAt: null };
    const c = 1;
    const nextPoll = new Map<number, number>();
    for (let u = 1; u <= FANS; u++) {
      await store.enter(c, u, tid(u), T0, d);
      nextPoll.set(u, T0 + 1_000);
    }
    const resumed = T0 + 1_000;
    const open = { ...d, paused: false };
    await store.configure(c, { paused: false }, resumed, d);
    const admittedAt = new Map<number, number>();
    const noticedAt = new Map<number, number>();
    const told: Array<{ u: number; at: number; etaMs: number }> = [];
    for (let now = resumed; now < T0 + 120_000 && noticedAt.size < FANS; now += STEP_MS) {
      await store.tick(now, open);
      for (let u = 1; u <= FANS; u++) {
        if (!admittedAt.has(u) && (await store.check(c, tid(u), now)).state === 'ACTIVE') admittedAt.set(u, now);
        const n = noticedAt.get(u);
        if (n !== undefined && now - n >= THINK_MS && now - n < THINK_MS + STEP_MS) await store.leave(c, tid(u), now, open);
        if (n !== undefined || nextPoll.get(u)! > now) continue;
        const r = (await store.status(c, tid(u), now, open, false)) as TokenState;
        if (r.status === 'ACTIVE') noticedAt.set(u, now);
        else if (r.status === 'WAITING' && r.etaMs !== null) told.push({ u, at: now, etaMs: r.etaMs });
        nextPoll.set(u, now + r.pollAfterMs);
      }
    }
    expect(noticedAt.size).toBe(FANS);

    const errors = told
      .filter((p) => p.at - resumed < 20_000 && admittedAt.get(p.u)! > p.at)
      .map((p) => Math.abs(p.etaMs - (admittedAt.get(p.u)! - p.at)) / (admittedAt.get(p.u)! - p.at))
      .sort((a, b) => a - b);
    const median = errors[Math.floor(errors.length / 2)]!;
    const unaware = [...noticedAt].map(([u, n]) => n - admittedAt.get(u)!);
    const took = Math.max(...noticedAt.values()) + THINK_MS - resumed;
    console.log(`ETA at a 600 s TTL: ${errors.length} told in the first 20 s, median error ${Math.round(median * 100)}%; admitted fans unaware for at most ${Math.max(...unaware)} ms; the sale took ${took / 1000} s`);
    // Seen: 18%, at most 900 ms (a fan polls at least every second near the head), 16.45 s.
    expect(errors.length).toBeGreaterThan(100);
    expect(median).toBeLessThanOrEqual(0.25);
    expect(Math.max(...unaware)).toBeLessThanOrEqual(1_000);
    expect(took).toBeLessThanOrEqual(18_000);
  });
});
