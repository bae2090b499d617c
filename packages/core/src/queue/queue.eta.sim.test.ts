import { describe, expect, it } from 'vitest';
import type { QueueSettings, TokenState } from './queue.store.ts';
import { MemoryQueueStore } from './queue.store.memory.ts';
import { mostWithin, oracleWait, SALE_WINDOWS, type SimSale, simulateSale, T00 } from './queue.eta.sim.ts';

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
    // Seen: 14% (19% before ETA_PRIOR_HAZARD, below), at most 950 ms (a fan polls at least every second near the head), 16.15 s.
    expect(errors.length).toBeGreaterThan(100);
    expect(median).toBeLessThanOrEqual(0.25);
    expect(Math.max(...unaware)).toBeLessThanOrEqual(1_000);
    expect(took).toBeLessThanOrEqual(18_000);
  });
});

/**
 * Buyers who take their time, at the default TTL: 10 slots, 100 fans pre-queued before the
 * opening and one more every 10 s for 400 s; each admitted fan notices at the poll they were told
 * to make, then takes 20–80 s to choose and pay (or give up) and leaves. Every ETA test before
 * this one ran fans who go in 0.5–2 s.
 *
 * The first departure comes 20 s after the opening at the earliest, and until then nothing tells
 * 20 s from 10 minutes. The line's overall rate used to start from a quarter of the TTL (150 s)
 * and count every second its holders had been watched as time at risk, so 20 s without a
 * departure read as a mean think time near 10 minutes: the first 40 s were told 383–639% too long
 * and 40–200 s 25–46% (the four sales below). Now the prior grows with the oldest age watched
 * (as long again, at least 10 s, at most a quarter of the TTL: coldThink) and time before the
 * youngest departure seen is not time at risk: 44–52% and 16–29%. The first 40 s are asserted to stay
 * within 100%, which the old prior was far from; a prior from other sales could do better still.
 *
 * Once departures come, the steady phase is asserted. Each life-table bucket's hazard was joined
 * by a quarter of a pseudo-holder leaving at the line's overall rate. Where few holders are left
 * (ages 60–80 s here), that pulled the bounded think time toward the rate, so the mean cycle read
 * 5–15% long. Now the buckets take a tenth (ETA_PRIOR_HAZARD), and the overall rate starts from half a
 * departure (ETA_PRIOR 0.5, was 0.25), so a line with no departure yet doubts itself less.
 * This test's four sales read, before and after: the first 40 s 811, 498, 742, 736% and 629, 397,
 * 581, 553%; 40–200 s 28–52% and 25–46%; steady 19, 18, 15, 22% and 16, 16, 14, 18%. The steady
 * assert passes with either setting: it keeps slow lines honest rather than telling the two
 * apart. `pnpm eta-sim` (8 seeds, six kinds of sale) has the comparison, in README.md.
 */
describe('the ETA with slow buyers at the default activeTtlSeconds, on the test clock', () => {
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

  it('is honest once departures come, and says how far off the first 40 s are', { timeout: 120_000 }, async () => {
    const runs: Array<{ first40: number; settling: number; steady: number }> = [];
    for (let seed = 1; seed <= 4; seed++) {
      const sale = await simulateSale(seed, { ttlSeconds: 600, walkAway: 0, perSecond: 0.1, latency: () => 0, think: (g) => 20_000 + g() * 60_000, arrivalsMs: 400_000 });
      expect(sale.unadmitted).toBe(0);
      runs.push({ first40: sale.error(0, 40_000).abs, settling: sale.error(40_000, 200_000).abs, steady: sale.error(200_000, 400_000).abs });
    }
    const pct = (k: 'first40' | 'settling' | 'steady') => runs.map((r) => `${Math.round(r[k] * 100)}%`).join(', ');
    console.log(`ETA with 20–80 s buyers at a 600 s TTL, ${runs.length} sales: first 40 s after the opening ${pct('first40')}; 40–200 s ${pct('settling')}; 200–400 s ${pct('steady')}`);
    // Seen: 16, 16, 14, 18% and 16, 16, 13, 18% (two runs); with coldThink 13, 14, 12, 15%. With the
    // straight-line tail (survival in queue.store.ts): first 40 s 35–51%, 40–200 s 11–17%, steady 11–13%.
    expect(median(runs.map((r) => r.steady))).toBeLessThanOrEqual(0.2);
    for (const r of runs) expect(r.first40).toBeLessThanOrEqual(1);
    for (const r of runs) expect(r.steady).toBeLessThanOrEqual(0.3);
  });

  /**
   * Such a line teaches the deployment too (priorRecent). Its life table weighs departures by how
   * recently their holders noticed, and 10 slots of 20–80 s buyers never weigh more than about 5:
   * until 2026-12-06 a line offered its survival only from 10, so this line never taught anything
   * (the deployment's prior stayed empty), and its next sale's first 30 s were told as a first
   * sale's. Now it offers once it remembers 10 departures counted by when they left (about 12).
   */
  it('teaches the next sale of such buyers, whose first 30 s are then told from the first', { timeout: 120_000 }, async () => {
    const slow: SimSale = { ttlSeconds: 600, walkAway: 0, perSecond: 0.1, latency: () => 0, think: (g) => 20_000 + g() * 60_000, arrivalsMs: 400_000 };
    const runs: Array<{ next30: number; next60: number; fresh30: number }> = [];
    for (let seed = 1; seed <= 4; seed++) {
      const store = new MemoryQueueStore();
      const first = await simulateSale(seed + 1000, slow, { store, concertId: 1, startMs: 0 });
      const next = await simulateSale(seed, slow, { store, concertId: 2, startMs: first.endedAt - T00 + 3_600_000 });
      const fresh = await simulateSale(seed, slow);
      runs.push({ next30: next.error(0, 30_000).abs, next60: next.error(0, 60_000).abs, fresh30: fresh.error(0, 30_000).abs });
    }
    const pct = (k: 'next30' | 'next60' | 'fresh30') => runs.map((r) => `${Math.round(r[k] * 100)}%`).join(', ');
    console.log(`ETA of the next sale of 20–80 s buyers (10 slots): first 30 s ${pct('next30')}, first minute ${pct('next60')}; a deployment's first sale, first 30 s ${pct('fresh30')}`);
    // Seen (seeds 1–4): first 30 s 10, 6, 6, 11%, first minute 13, 7, 12, 16%; a first sale's first 30 s 43, 45, 49, 45% (44–49% for the next sale with the old rule).
    for (const r of runs) {
      expect(r.next30).toBeLessThanOrEqual(0.3);
      expect(r.next30).toBeLessThanOrEqual(r.fresh30 - 0.15);
    }
    expect(median(runs.map((r) => r.next60))).toBeLessThanOrEqual(0.2);
  });
});

/**
 * The sale this product is for (README, "A big sale"): 200 slots, 3,000 fans pre-queued and two
 * more a second for 400 s, a 600 s TTL, buyers who take 20–80 s. Every test above runs 5 or 10
 * slots. From the second minute on, past the first 50 places, the ETA is asserted within 20%;
 * places 1–50 within 40% (the next few departures of 200 slots are close to a coin toss). The
 * first sale's first 30 s are printed, not asserted: before the first departure nothing tells the
 * think time (seen: 0–10 s 75% too short, 10–30 s 41–51%). Its 30–60 s, after the first departures,
 * are asserted within 35%: past the oldest age seen, the life table's tail was a constant hazard,
 * which reads bounded buyers as long-tailed ones (59–109% too long), and is now a straight line
 * down at the density seen since the first departure (19–25%, six runs of seed 1). The next
 * sale of the deployment (same store, another concert) starts from the think time its earlier
 * sales taught (ETA_PRIOR_EVERY_MS), and its first minute is asserted within 20%. A sale of other
 * buyers after it (quick ones, 1–5 s) is held to what a deployment with no prior tells them.
 */
describe('the ETA in a big sale on the test clock', () => {
  const big: SimSale = { ttlSeconds: 600, walkAway: 0, perSecond: 2, latency: () => 300, think: (g) => 20_000 + g() * 60_000, arrivalsMs: 400_000, slots: 200, prequeued: 3000 };
  const quick: SimSale = { ttlSeconds: 600, walkAway: 0, perSecond: 4, latency: () => 300, think: (g) => 1000 + g() * 4000, arrivalsMs: 60_000, slots: 10, prequeued: 300 };
  const pct = (e: { abs: number; signed: number; n: number }) => `${Math.round(e.abs * 100)}% (${Math.round(e.signed * 100)}%, n=${e.n})`;
  const windows = (sale: Awaited<ReturnType<typeof simulateSale>>) => SALE_WINDOWS.map(([l, a, b]) => `${l} ${pct(sale.error(a, b))}`).join('; ');
  const store = new MemoryQueueStore();
  let endedAt = 0;
  const next = () => endedAt - T00 + 3_600_000;

  it('holds 20% from the second minute on, and prints the first minute', { timeout: 180_000 }, async () => {
    const sale = await simulateSale(1, big, { store, concertId: 1, startMs: 0 });
    endedAt = sale.endedAt;
    expect(sale.unadmitted).toBe(0);
    console.log(`ETA in a big sale (200 slots, 3,000 pre-queued, 20–80 s buyers), error (signed): ${windows(sale)}`);
    // Seen (seed 1): 1–3 min places 51+ 5%, places 1–50 15–35%; 3 min on 4%, 12–31%.
    expect(sale.error(30_000, 60_000).n).toBeGreaterThan(5_000);
    expect(sale.error(30_000, 60_000).abs).toBeLessThanOrEqual(0.35);
    const later = (places: [number, number]) => sale.error(60_000, Infinity, places);
    expect(later([51, Infinity]).n).toBeGreaterThan(10_000);
    expect(later([51, Infinity]).abs).toBeLessThanOrEqual(0.2);
    expect(later([11, 50]).abs).toBeLessThanOrEqual(0.25);
    expect(later([1, 10]).abs).toBeLessThanOrEqual(0.45);
  });

  it('tells the next sale of such buyers within 20% from its first second', { timeout: 180_000 }, async () => {
    expect(endedAt).toBeGreaterThan(0);
    const sale = await simulateSale(2, big, { store, concertId: 2, startMs: next() });
    endedAt = sale.endedAt;
    expect(sale.unadmitted).toBe(0);
    console.log(`ETA in the next big sale of the same deployment, error (signed): ${windows(sale)}`);
    // Seen (seeds 2–7): 0–10 s 1–7%, 10–30 s 2–6%, 30–60 s 3–23%, later 3–9% (the first sale, without
    // a prior: 75%, 41–51%, 59–115%). A sale whose buyers are quicker or slower than the prior's
    // distrusts it in part, and the overall rate that then joins it reads long (the 30–60 s window).
    expect(sale.error(0, 60_000).abs).toBeLessThanOrEqual(0.2);
    for (const [, a, b] of SALE_WINDOWS) {
      expect(sale.error(a, b).n).toBeGreaterThan(1_000);
      expect(sale.error(a, b).abs).toBeLessThanOrEqual(0.3);
    }
  });

  it('tells a sale of other buyers after it no worse than a deployment that never had a sale', { timeout: 120_000 }, async () => {
    expect(endedAt).toBeGreaterThan(0);
    const after = await simulateSale(3, quick, { store, concertId: 3, startMs: next() });
    const fresh = await simulateSale(3, quick);
    console.log(`ETA of quick buyers (1–5 s) after the big sales, error (signed): ${windows(after)}\n  on a deployment with no sale before: ${windows(fresh)}`);
    // Seen: the first minute 9–11% after the big sales, 9–11% fresh; its first 4 s 1,216–1,280% against 163–233%.
    expect(after.error(0, 60_000).abs).toBeLessThanOrEqual(fresh.error(0, 60_000).abs + 0.1);
    expect(after.error(10_000, 60_000).abs).toBeLessThanOrEqual(0.2);
  });
});

/**
 * Admitted fans who walk away keep their slot until it lapses. Under a TTL of minutes a tenth of
 * them clog most of 10 slots within a minute or two, and a slot's cycle is a mixture: a few
 * seconds for a buyer, the whole TTL for a walk-away. Buyers think 2–10 s, one fan arrives a
 * second after 100 pre-queued, for 4 minutes; the error at places 11–50, the mean of the middle
 * two of seeds 1–4. Found with the oracle beside the ETA (README, "Walk-aways"); the causes
 * (the pseudo-holders' weight is asserted in queue.store.test.ts, the rest here):
 * - refills taken at the mean cycle after their first: a slot cycling in seconds reads as
 *   cycling every 17 s, and places 11–50 of a 120 s TTL were told 24–48% too long after the
 *   third minute (the renewal function m in etaCurve);
 * - the walk-aways still there read as about to leave: before the first lapse, places 11–50 of a
 *   300 s TTL were told 56–59% too short in three seeds of four. The straight line past the table's ages ran down from
 *   the buyers' departures (the plateau in survival), the pseudo-holders at the overall rate
 *   outweighed the few old holders the table keeps (their weight in survival), and the line's
 *   first curves, offered with that tail, taught the prior it then took past its own ages
 *   (ETA_PRIOR_OPEN).
 */
describe('the ETA with fans who walk away under a TTL of minutes, on the test clock', () => {
  const walkAways = (ttlSeconds: number): SimSale => ({ ttlSeconds, walkAway: 0.1, perSecond: 1, latency: () => 300, think: (g) => 2_000 + g() * 8_000, arrivalsMs: 240_000 });
  const middle = (xs: number[]) => [...xs].sort((a, b) => a - b).slice(1, 3).reduce((a, b) => a + b, 0) / 2;
  const pct = (xs: number[]) => xs.map((x) => `${Math.round(x * 100)}%`).join(', ');

  it('tells places 11–50 of a 120 s TTL within 25% after the third minute', { timeout: 60_000 }, async () => {
    const sales = await Promise.all([1, 2, 3, 4].map((seed) => simulateSale(seed, walkAways(120))));
    const late = sales.map((r) => r.error(180_000, Infinity, [11, 50]));
    console.log(`ETA with a tenth walking away, 120 s TTL, places 11–50 after 3 min: ${pct(late.map((e) => e.abs))} (signed ${pct(late.map((e) => e.signed))})`);
    // Seen: 11–12%, 17%, 17%, 20–21% (the oracle: 14–18%); refills at the mean cycle: 24%, 37%,
    // 39%, 48%, all too long. (The store draws its own jitter: a few points between runs.)
    for (const e of late) expect(e.n).toBeGreaterThan(500);
    expect(middle(late.map((e) => e.abs))).toBeLessThanOrEqual(0.25);
  });

  it('tells places 11–50 of a 300 s TTL within 20% before the first lapse, and 25% after it', { timeout: 60_000 }, async () => {
    const sales = await Promise.all([1, 2, 3, 4].map((seed) => simulateSale(seed, walkAways(300))));
    const before = sales.map((r) => r.error(60_000, 180_000, [11, 50]));
    const after = sales.map((r) => r.error(300_000, Infinity, [11, 50]));
    console.log(
      `ETA with a tenth walking away, 300 s TTL, places 11–50: 1–3 min ${pct(before.map((e) => e.abs))} (signed ${pct(before.map((e) => e.signed))}); after 5 min ${pct(after.map((e) => e.abs))} (signed ${pct(after.map((e) => e.signed))})`,
    );
    // Seen: 1–3 min 5%, 6%, 24–25%, 8% (the oracle: 6–9%, and 54–60% in seed 3), after 5 min
    // 15%, 13%, 19–20%, 22–23%; before, 1–3 min 56–59% too short in three seeds of four.
    for (const e of [...before, ...after]) expect(e.n).toBeGreaterThan(100);
    expect(middle(before.map((e) => e.abs))).toBeLessThanOrEqual(0.2);
    expect(middle(after.map((e) => e.abs))).toBeLessThanOrEqual(0.25);
  });
});

/**
 * The sim's own fans: one admitted on entering (an open line with a slot free) goes on to pick a
 * seat at once, as a client that is answered ACTIVE does. Until 2026-12-06 the sim waited for
 * such a fan's next poll (the pollAfterMs of an ACTIVE ticket, 25 s here) before it thought at
 * all, while the store had it noticed when it answered: an open line's first ten slots stood
 * still, and its fans were told their waits twice as long as they came (a 15 s TTL: 79–127%).
 */
describe('the sale simulation', () => {
  it('lets a fan admitted on entering go on at once', async () => {
    const open: SimSale = { ttlSeconds: 600, walkAway: 0, perSecond: 10, latency: () => 0, think: () => 1_000, arrivalsMs: 2_000, prequeued: 0 };
    const sale = await simulateSale(1, open);
    // 20 fans into 10 slots from the opening (T00 + 4 s), one every 100 ms, each leaving a second
    // after it noticed: the first ten leave over 1–2 s, and the next ten are admitted as they do.
    expect(sale.unadmitted).toBe(0);
    expect(sale.endedAt - T00).toBeLessThan(8_000);
  });
});

/**
 * The oracle `pnpm eta-sim` (ORACLE=1) sets beside the ETA: the floor under any estimator's error.
 * Tested where its answer can be worked out by hand: buyers who take exactly 2 s, whose refills
 * notice within a second (uniformly).
 */
describe('the ETA oracle (oracleWait)', () => {
  const exact: SimSale = { ttlSeconds: 600, walkAway: 0, perSecond: 1, latency: () => 0, think: () => 2_000, arrivalsMs: 1_000 };
  const now = T00 + 60_000;
  const holders = Array.from({ length: 10 }, () => ({ until: now + 600_000, notice: now - 500, noticed: true }));
  const random = (() => {
    let s = 7;
    return () => ((s = (s * 1664525 + 1013904223) >>> 0), s / 2 ** 32);
  })();

  it('tells the first ten places the holders’ known departure, and the next ten one refill cycle later', () => {
    // Every holder noticed 0.5 s ago and leaves 1.5 s from now.
    for (const p of [1, 5, 10]) expect(oracleWait(exact, random, T00, now, p, holders)).toBe(1_500);
    // Place 11: the first of ten refills (noticed 0–1 s after 1.5 s, each 2 s then): 3.5 s plus the least of ten uniform seconds (about 0.09 s).
    const p11 = oracleWait(exact, random, T00, now, 11, holders);
    expect(p11).toBeGreaterThan(3_500);
    expect(p11).toBeLessThan(3_800);
    // Place 20: the last of them, 3.5 s plus the greatest of ten (about 0.91 s).
    const p20 = oracleWait(exact, random, T00, now, 20, holders);
    expect(p20).toBeGreaterThan(4_200);
    expect(p20).toBeLessThan(4_500);
    // Fans told to poll in 4 s notice then, not within a second of their admission: 4 s + 2 s.
    const polls = Array.from({ length: 20 }, () => now + 4_000);
    expect(oracleWait(exact, random, T00, now, 11, holders, polls)).toBe(6_000);
    expect(oracleWait(exact, random, T00, now, 20, holders, polls)).toBe(6_000);
  });

  it('tells what the most draws lie within 20% of, nearest their median weighted by 1 ÷ wait', () => {
    // 30 draws of 1 s and 34 of 3 s: the weighted median is 1 s (30 ÷ 1 against 34 ÷ 3), but 2.4–3.6 s is within 20% of 34 draws.
    const bimodal = [...Array<number>(30).fill(1_000), ...Array<number>(34).fill(3_000)];
    expect(mostWithin(bimodal)).toBe(2_400);
    // 1, 1.1, 1.2 and 5 s: 1.2 s is within 20% of the first three, and it is their weighted median too.
    expect(mostWithin([1_000, 1_100, 1_200, 5_000])).toBe(1_100);
    // Two spans cover two draws each (0.8–1.2 s of 1 and 1.1 s is one, 8–12 s of 10 s and 11 s the other): the one nearer the weighted median (1.1 s).
    expect(mostWithin([1_000, 1_100, 10_000, 11_000])).toBe(1_100);
    // Draws 1 and 2 s: no point is within 20% of both, so the weighted median stays (1 s, within 20% of one).
    expect(mostWithin([1_000, 2_000])).toBe(1_000);
  });

  it('draws a holder still there past the think time it was given again, and lets a walk-away lapse at its activeUntil', () => {
    // Noticed 5 s ago with 2 s buyers: it cannot leave in the past; drawn again, it has no later draw and leaves now.
    const late = [{ until: now + 600_000, notice: now - 5_000, noticed: true }];
    expect(oracleWait({ ...exact, slots: 1 }, random, T00, now, 1, late)).toBe(1);
    // Everyone walks away: the slot comes free at activeUntil.
    const away = [{ until: now + 7_000, notice: now - 1_000, noticed: true }];
    expect(oracleWait({ ...exact, walkAway: 1, slots: 1 }, random, T00, now, 1, away)).toBe(7_000);
    // Not yet noticed: the holder's think time starts at the poll it will make (in 3 s).
    const unaware = [{ until: now + 600_000, notice: now + 3_000, noticed: false }];
    expect(oracleWait({ ...exact, slots: 1 }, random, T00, now, 1, unaware)).toBe(5_000);
  });
});
