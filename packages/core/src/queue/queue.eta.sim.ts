import type { QueueSettings, TokenState } from './queue.store.ts';
import { MemoryQueueStore } from './queue.store.memory.ts';

/**
 * A sale on the memory store and the test clock, for measuring the ETA without machine noise
 * (queue.eta.sim.test.ts, `pnpm eta-sim`). The memory store runs the same estimator as the Redis
 * store; the contract suite holds the two to the same numbers.
 *
 * 10 slots (`slots`); 100 fans (`prequeued`) pre-queued over 3 s before the opening, then one every 1000 / `perSecond` ms
 * for `arrivalsMs`. Each fan polls when told (pollAfterMs); an admitted fan notices at that poll,
 * then walks away and lets the slot lapse (`walkAway` of them), or thinks (`think`, 0.5–2 s unless
 * said) and leaves (40% of the rest) or pays (60%, after `latency` ms of holding and paying).
 */
export interface SimSale {
  ttlSeconds: number;
  walkAway: number;
  perSecond: number;
  /** Holding and paying, ms, by the time since the start. */
  latency: (sinceStartMs: number) => number;
  think?: (random: () => number) => number;
  arrivalsMs: number;
  /** The line's maxActive (10 unless said). */
  slots?: number;
  /** Fans in line before the opening (100 unless said), arriving over its last 3 s. */
  prequeued?: number;
  /** No opening time: the line is open from the start, and the `prequeued` fans come into it over the first 3 s (the first `slots` admitted on entering). */
  open?: boolean;
}

/** Places up to which the oracle (see oracleWait) is asked, when simulateSale is told to ask it. */
export const ORACLE_PLACES = 50;
const ORACLE_DRAWS = 64;
/** A refilled slot's holder whose next poll is already past polls every second at the head of the line: noticed up to a second after the admission. */
const HEAD_POLL_MS = 1_000;

/** One holder's departure as the sale draws it (the fans below and the oracle alike): `notice` when it notices ACTIVE, `until` its activeUntil (a walk-away leaves then). */
function drawLeave(o: SimSale, random: () => number, notice: number, until: number, sinceStart: number): number {
  const x = random();
  const think = (o.think ?? ((g) => 500 + g() * 1500))(random);
  if (x < o.walkAway) return until;
  return Math.min(until, notice + think + (x < o.walkAway + 0.4 * (1 - o.walkAway) ? 0 : o.latency(sinceStart)));
}

/**
 * A floor under an estimator's error: the wait of place `position` as a forecaster would tell it
 * who knows everything the line knows and the sale's own rules (how its fans think, walk away and
 * pay) but not the draws to come. It draws the line's future ORACLE_DRAWS times from the holders
 * now ACTIVE (a noticed one's departure drawn again until it falls after now; one yet to notice,
 * from when it will poll) and the refills behind them: the k-th departure admits the fan at place
 * k, who notices at the poll it was told to make (`polls[k − 1]`) if that is still to come, else
 * within a second (the head polls every second). It tells what the most draws lie within
 * ETA_TOLERANCE of (mostWithin).
 */
export function oracleWait(
  o: SimSale,
  random: () => number,
  start: number,
  now: number,
  position: number,
  holders: Array<{ until: number; notice: number; noticed: boolean }>,
  polls: number[] = [],
): number {
  const ttlMs = o.ttlSeconds * 1000;
  const waits: number[] = [];
  for (let k = 0; k < ORACLE_DRAWS; k++) {
    const leaves = holders.map((h) => {
      if (!h.noticed) return drawLeave(o, random, Math.max(h.notice, now), h.until, Math.max(h.notice, now) - start);
      for (let tries = 0; tries < 100; tries++) {
        const t = drawLeave(o, random, h.notice, h.until, h.notice - start);
        if (t > now) return t;
      }
      return now;
    });
    // Empty slots (none in a standing line) admit at once.
    while (leaves.length < (o.slots ?? 10)) leaves.push(now);
    let t = now;
    for (let p = 0; p < position; p++) {
      let i = 0;
      for (let j = 1; j < leaves.length; j++) if (leaves[j]! < leaves[i]!) i = j;
      t = leaves[i]!;
      const poll = polls[p];
      const notice = poll !== undefined && poll >= t ? poll : t + random() * HEAD_POLL_MS;
      leaves[i] = drawLeave(o, random, notice, t + ttlMs, notice - start);
    }
    waits.push(Math.max(1, t - now));
  }
  return mostWithin(waits);
}

/** The ETA's goal: a median |told − real| ÷ real of at most this (issue 12). */
export const ETA_TOLERANCE = 0.2;

/**
 * The wait to tell of `waits` (equally likely draws) that the most of them lie within
 * ETA_TOLERANCE of: told t is within it of real w when (1 − tol)·w ≤ t ≤ (1 + tol)·w. A median
 * |told − real| ÷ real is at most the tolerance exactly when at least half the tellings are
 * within it, so for each telling this is the best a forecaster can do toward the goal, and the
 * share of the oracle's tellings within it bounds any estimator's with no more knowledge. Of the
 * spans that cover the most, the one nearest the draws' median weighted by 1 ÷ wait (which
 * minimises the mean |told − real| ÷ real), and the point in it nearest that median.
 */
export function mostWithin(waits: number[]): number {
  const sorted = [...waits].sort((a, b) => a - b);
  let half = sorted.reduce((sum, w) => sum + 1 / w, 0) / 2;
  let median = sorted.at(-1)!;
  for (const w of sorted) {
    if ((half -= 1 / w) <= 0) {
      median = w;
      break;
    }
  }
  // Each draw covers [(1 − tol)·w, (1 + tol)·w]; opening edges before closing ones at a tie (closed spans).
  const edges = sorted.flatMap((w) => [[(1 - ETA_TOLERANCE) * w, 1] as const, [(1 + ETA_TOLERANCE) * w, -1] as const]).sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let covered = 0;
  let most = 0;
  let best = median;
  edges.forEach(([at, step], i) => {
    covered += step;
    if (step < 0 || covered < most) return;
    const t = Math.min(Math.max(median, at), edges[i + 1]![0]);
    if (covered > most || Math.abs(t - median) < Math.abs(best - median)) best = t;
    most = covered;
  });
  return best;
}

/** The windows after the opening that `pnpm eta-sim` (DETAIL=1) and the big sale's test report the error in: label, from, to (ms). */
export const SALE_WINDOWS: ReadonlyArray<readonly [string, number, number]> = [
  ['0–10 s', 0, 10_000],
  ['10–30 s', 10_000, 30_000],
  ['30–60 s', 30_000, 60_000],
  ['1–3 min', 60_000, 180_000],
  ['3 min on', 180_000, Infinity],
];

export const T00 = Date.UTC(2026, 10, 23, 12, 0, 0);
const STEP_MS = 10;
const tid = (n: number) => `tok${String(n).padStart(19, '0')}`;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;

/** Fans by the time of their next step; popUpTo gives those due by then, in arrival order. */
class MinHeap {
  private readonly at: number[] = [];
  private readonly fan: number[] = [];

  push(at: number, fan: number): void {
    let i = this.at.length;
    this.at.push(at);
    this.fan.push(fan);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.at[p]! <= at) break;
      this.swap(i, p);
      i = p;
    }
  }

  popUpTo(now: number): number[] {
    const out: number[] = [];
    while (this.at.length > 0 && this.at[0]! <= now) out.push(this.pop());
    return out.sort((a, b) => a - b);
  }

  private pop(): number {
    const top = this.fan[0]!;
    const lastAt = this.at.pop()!;
    const lastFan = this.fan.pop()!;
    if (this.at.length > 0) {
      this.at[0] = lastAt;
      this.fan[0] = lastFan;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.at.length && this.at[l]! < this.at[m]!) m = l;
        if (r < this.at.length && this.at[r]! < this.at[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private swap(i: number, j: number): void {
    [this.at[i], this.at[j]] = [this.at[j]!, this.at[i]!];
    [this.fan[i], this.fan[j]] = [this.fan[j]!, this.fan[i]!];
  }
}

/** A seeded generator (LCG), so the fans do the same in every run; the store's own jitter still varies. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0), s / 2 ** 32);
}

export async function simulateSale(seed: number, o: SimSale, on?: { store?: MemoryQueueStore; concertId?: number; startMs?: number; oracle?: boolean }) {
  const random = seeded(seed);
  const store = on?.store ?? new MemoryQueueStore();
  const C = on?.concertId ?? 1;
  const T0 = T00 + (on?.startMs ?? 0);
  const openedAt = o.open ? T0 : T0 + 4_000;
  const s: QueueSettings = { maxActive: o.slots ?? 10, activeTtlSeconds: o.ttlSeconds, idleTimeoutSeconds: 30, paused: false, opensAt: o.open ? null : openedAt };
  const fans: Array<{ u: number; next: number; admitted: number | null; noticed: number | null; leaveAt: number | null; told: Array<{ at: number; etaMs: number; position: number; oracleMs?: number }> }> = [];
  // The oracle's own draws, apart from the fans' (asking it must not change the sale).
  const oracleRandom = seeded(seed + 7919);
  const lines = (store as unknown as { lines: Map<number, { active: Map<string, { until: number }>; waiting: Map<string, { score: number }> }> }).lines;
  // Each fan's next step (a poll while waiting, its leave once admitted), soonest first: a step of
  // the clock looks at the fans due then, in arrival order, rather than at every fan (a big sale's
  // 3,800 fans over some 150,000 steps were a quarter of its run).
  const due = new MinHeap();
  let unadmitted = 0;
  const arrive = async (now: number) => {
    const u = fans.length + 1;
    const r = await store.enter(C, u, tid(u), now, s);
    const f = { u, next: now + r.pollAfterMs, admitted: null as number | null, noticed: null as number | null, leaveAt: null as number | null, told: [] };
    fans.push(f);
    if (r.status === 'ACTIVE') {
      // Admitted on entering (an open line with a slot free): the fan goes on to pick a seat at once.
      f.admitted = f.noticed = now;
      f.leaveAt = drawLeave(o, random, now, Infinity, now - T0);
      if (f.leaveAt !== Infinity) due.push(f.leaveAt, u - 1);
      return;
    }
    due.push(now + r.pollAfterMs, u - 1);
    unadmitted++;
  };
  const early = o.prequeued ?? 100;
  const earlyAt = (i: number) => T0 + Math.floor((i * 3000) / early);
  // Pre-queued fans come before the clock runs (none can be admitted yet); into an open line they
  // come as it runs, so that those admitted on entering leave when they drew.
  let arrived = 0;
  if (!o.open) for (; arrived < early; arrived++) await arrive(earlyAt(arrived));
  let nextArrival = Math.max(openedAt, T0 + 3_000);
  for (let now = o.open ? T0 : T0 + 3_000; now < openedAt + 10 * o.arrivalsMs; now += STEP_MS) {
    for (; arrived < early && earlyAt(arrived) <= now; arrived++) await arrive(now);
    if (now < openedAt + o.arrivalsMs && now >= nextArrival) {
      await arrive(now);
      nextArrival += 1000 / o.perSecond;
    }
    if (now % 250 === 0) await store.tick(now, s);
    for (const i of due.popUpTo(now)) {
      const f = fans[i]!;
      if (f.leaveAt !== null) {
        if (f.leaveAt === Infinity) continue;
        await store.leave(C, tid(f.u), now, s);
        f.leaveAt = Infinity;
        continue;
      }
      const r = (await store.status(C, tid(f.u), now, s, false)) as TokenState;
      if (r.status === 'ACTIVE') {
        f.admitted = r.activeUntil! - o.ttlSeconds * 1000;
        f.noticed = now;
        unadmitted--;
        // A walk-away leaves at Infinity: never, its slot lapses.
        f.leaveAt = drawLeave(o, random, now, Infinity, now - T0);
        if (f.leaveAt !== Infinity) due.push(f.leaveAt, i);
      } else {
        if (r.status !== 'WAITING' && r.status !== 'PRE_QUEUE') throw new Error(`fan ${f.u} ended ${r.status}`);
        if (r.status === 'WAITING' && r.etaMs !== null) {
          const position = r.position ?? 0;
          let oracleMs: number | undefined;
          if (on?.oracle && position <= ORACLE_PLACES) {
            const holders = [...lines.get(C)!.active].map(([t, a]) => {
              const h = fans[Number(t.slice(3)) - 1]!;
              return { until: a.until, notice: h.noticed ?? h.next, noticed: h.noticed !== null };
            });
            // The line in the order it admits (the store's own: scores, the pre-queue's drawn ones included), and when each will poll.
            const polls = [...lines.get(C)!.waiting]
              .sort(([a, x], [b, y]) => x.score - y.score || (a < b ? -1 : 1))
              .slice(0, position)
              .map(([t]) => fans[Number(t.slice(3)) - 1]!.next);
            oracleMs = oracleWait(o, oracleRandom, T0, now, position, holders, polls);
          }
          f.told.push({ at: now, etaMs: r.etaMs, position, oracleMs });
        }
        f.next = now + r.pollAfterMs;
        due.push(f.next, i);
      }
    }
    if (now > openedAt + o.arrivalsMs && unadmitted === 0) break;
  }
  return {
    endedAt: Math.max(...fans.map((f) => f.admitted ?? 0)),
    unadmitted: fans.filter((f) => f.admitted === null).length,
    /**
     * Medians of |told − real| ÷ real and (told − real) ÷ real over what was told from `fromMs` to
     * `toMs` after the opening, to places `places` (all unless said), the share of them within
     * ETA_TOLERANCE, and how many predictions; of what the oracle told instead with `oracle`
     * (asked up to ORACLE_PLACES, if the sale asked it).
     */
    error(fromMs: number, toMs: number, places: [number, number] = [1, Infinity], oracle = false): { abs: number; signed: number; within: number; n: number } {
      const abs: number[] = [];
      const signed: number[] = [];
      for (const f of fans) {
        for (const p of f.told) {
          if (f.admitted === null || p.at < openedAt + fromMs || p.at >= openedAt + toMs || f.admitted <= p.at) continue;
          if (p.position < places[0] || p.position > places[1]) continue;
          const told = oracle ? p.oracleMs : p.etaMs;
          if (told === undefined) continue;
          const real = f.admitted - p.at;
          abs.push(Math.abs(told - real) / real);
          signed.push((told - real) / real);
        }
      }
      return { abs: median(abs), signed: median(signed), within: abs.filter((e) => e <= ETA_TOLERANCE).length / abs.length, n: abs.length };
    },
  };
}
