import { randomBytes } from 'node:crypto';

/** The waiting room's storage port. Both adapters give every call all-or-nothing semantics. */

export interface QueueSettings {
  maxActive: number;
  activeTtlSeconds: number;
  idleTimeoutSeconds: number;
  paused: boolean;
  /** When the line opens (ms since the epoch); null: open. Before it, entrants are pre-queued. */
  opensAt: number | null;
  /** An operator's choice: admit a fan only while a seat is left for it (see seatBudget); absent: false, by free slots alone. */
  admitBySeats?: boolean;
}

export type QueueSettingsPatch = Partial<QueueSettings>;

/** The phase a line is in, in order of precedence (a sold-out line reads SOLD_OUT even while paused). */
export type LineState = 'PRE_QUEUE' | 'OPEN' | 'PAUSED' | 'ALL_HELD' | 'SOLD_OUT';

export type TicketStatus = 'PRE_QUEUE' | 'WAITING' | 'ACTIVE' | 'EXPIRED' | 'SOLD_OUT';

export interface TokenState {
  status: TicketStatus;
  /** When the client should ask again (see pollAfter). */
  pollAfterMs: number;
  /** 1-based among those waiting; null unless WAITING. */
  position: number | null;
  /** ms since the epoch; null unless ACTIVE. */
  activeUntil: number | null;
  /** Expected wait in ms (see etaCurve); until the opening when PRE_QUEUE; null when nobody is being admitted. */
  etaMs: number | null;
  opensAt: number | null;
  /** An operator has paused admission (the place is kept). */
  paused: boolean;
}

export interface EnterResult extends TokenState {
  tokenId: string;
  enteredAt: number;
  /** False when the user already had a live token, which is returned instead. */
  created: boolean;
  /** False when the line had never read its seats, or its counts are void (see countsVoid; with `unreadSeatsBlock`, nobody was admitted then). */
  seatsRead: boolean;
}

export interface EnterOptions {
  /**
   * A line whose seats were never read admits nobody from this enter on, in any settle (a tick's,
   * a poll's, a leave's), until they are read; a line no enter asked this of admits on no counts.
   */
  unreadSeatsBlock?: boolean;
}

export interface QueueStats extends QueueSettings {
  admitBySeats: boolean;
  state: LineState;
  waiting: number;
  preQueued: number;
  active: number;
  admittedTotal: number;
  admittedLastMinute: number;
  droppedIdleTotal: number;
  /** The expected wait of whoever is last in line (ms); null when nobody waits or nobody is admitted. */
  etaBackMs: number | null;
  /** False when the line had never read its seats, or its counts are void since a show started (its state then rests on no counts). */
  seatsRead: boolean;
}

/** What the database says about a concert's bookable seats, as the line sees it. */
export interface Inventory {
  /** Shows with a seat AVAILABLE (a lapsed hold counts). */
  available: number;
  /** Shows with no seat AVAILABLE and some to come: HELD, or not yet open for booking. */
  held: number;
  /** When the first of those may be AVAILABLE (a hold lapses, a show's booking opens; ms); null when there are none. */
  nextLapse: number | null;
  /**
   * When the first show counted above starts (ms; null or absent: none). Its seats are no longer
   * bookable from then, so the counts say nothing until they are read again (see countsVoid).
   */
  nextStart?: number | null;
  /**
   * AVAILABLE seats across the shows counted in `available` (a lapsed hold's seat included),
   * counted up to the read's cap (seatCountCap): a count at the cap means at least that many, and
   * the line admits against the cap until a read with a higher one (a raised maxActive) counts
   * more; absent: not counted (the reader's line admits by slots), and the room last counted
   * stands (see seatBudget). null: not limited by seats (no reader sends it since 2026-12-05; a
   * process of an earlier version sent it for a count at the cap).
   */
  seats?: number | null;
  /**
   * The users holding seats of the concert's shows now (read when `seats` is counted, at most
   * HOLDERS_READ of them): the store counts those whose own ticket is ACTIVE (see seatBudget).
   */
  holders?: number[];
}

/** At most this many holders are read; past it, fewer ACTIVE fans count as holding, and the line admits fewer, never more. */
export const HOLDERS_READ = 1_000;

/**
 * A line that admits by seats counts AVAILABLE seats up to its maxActive, at least SEAT_COUNT_CAP
 * and at most SEAT_COUNT_MAX (a bounded read per change). A count at the cap is taken as the cap:
 * under the maxActive it was read for, that loses nothing (at most maxActive are ACTIVE); after
 * maxActive is raised, the line admits against it until the next read counts up to the new cap;
 * and a line above SEAT_COUNT_MAX has at most that many ACTIVE fans holding no seat.
 */
export const SEAT_COUNT_CAP = 500;
export const SEAT_COUNT_MAX = 10_000;
export const seatCountCap = (maxActive: number | undefined) => Math.max(SEAT_COUNT_CAP, Math.min(maxActive ?? 0, SEAT_COUNT_MAX));

/**
 * With `admitBySeats` (an operator's choice per line; the contract admits by free slots alone):
 * how many more fans the line may admit on the seats just read, before the next read: the
 * AVAILABLE seats less one for every ACTIVE fan who holds none yet (each may take one), read
 * as the ACTIVE count less the ACTIVE fans whose user holds seats (a user holding seats whose
 * turn ended, or who left the line, is not one of them). A fan is admitted only while a seat is
 * left for it, so a refund that brings one seat back admits the head of the line and nobody
 * else, and the last seats of a sale go to as many fans as there are seats, in the line's order
 * (with slots alone, every free slot admitted a fan, and whoever of them came back first took
 * the seats). Each admission spends one; a departure gives none back until the next read (a
 * payment's departure would otherwise count its seat twice: sold, and free for a new fan), which
 * comes at least every INVENTORY_MAX_AGE_MS while the line exists, and INVENTORY_MIN_GAP_MS after
 * a change of the seats or a lapse. null: no limit (seats sent as null: see Inventory.seats).
 * One seat per fan is the fewest a fan buys: a fan who takes several leaves those behind it
 * admitted to nothing, as before, but only among as many as there were seats.
 */
export function seatBudget(inv: Inventory, liveActive: number, activeHolders: number): number | null {
  if (inv.seats === undefined) throw new Error('seatBudget: the seats were not counted');
  if (inv.seats === null) return null;
  return inv.seats - Math.max(0, liveActive - activeHolders);
}

export type GateState = 'ACTIVE' | 'WAITING' | 'EXPIRED';

/**
 * The time a store call decides with, in ms: undefined (normally) lets the store's own clock
 * decide (Redis's TIME inside the scripts; the process's for the in-process store); a number is
 * a deciding test clock's (FakeClock).
 */
export type StoreNow = number | undefined;

export interface QueueStore {
  /** Joins the back of the line (a random place in the pre-queue before the opening), or returns the user's live token. */
  enter(concertId: number, userId: number, newTokenId: string, now: StoreNow, defaults: QueueSettings, opts?: EnterOptions): Promise<EnterResult>;
  /**
   * The token's state, after settling the line; a waiting token's poll keeps it from going idle.
   * With `limitPolls`, a live token polled sooner than half its last pollAfterMs gets
   * `{ rateLimited: retryAfterMs }` instead (the poll does not count as seen).
   */
  status(concertId: number, tokenId: string, now: StoreNow, defaults: QueueSettings, limitPolls: boolean): Promise<TokenState | { rateLimited: number }>;
  /** Read-only check for the booking gate; with `seatMapOf`, also that schedule's seat-map version (if kept here). */
  check(
    concertId: number,
    tokenId: string,
    now: StoreNow,
    seatMapOf?: number,
  ): Promise<{ state: GateState; seatMapVersion?: { epoch: string; n: number; freed: number } | null }>;
  /** Drops the token (waiting or ACTIVE) and admits whoever is next; false if it was not live. */
  leave(concertId: number, tokenId: string, now: StoreNow, defaults: QueueSettings): Promise<boolean>;
  /**
   * Expires lapsed ACTIVE tokens, drops idle waiting ones and admits from the head, for every
   * concert. Returns the concerts whose inventory this caller must read and `setInventory`: the
   * store hands each refresh to one caller at a time, across processes.
   */
  tick(now: StoreNow, defaults: QueueSettings): Promise<number[]>;
  /** Records the concert's inventory (read from the database after a `tick` claimed it) and settles the line. */
  /**
   * `asOf`: the change number (from `seatsChanged`) the read was started after; without it, the
   * one a `tick` claimed the read at. A read older than the one recorded leaves the counts as they are.
   */
  setInventory(concertId: number, inventory: Inventory, now: StoreNow, defaults: QueueSettings, asOf?: number): Promise<void>;
  /** A committed change moved the concert's seats: returns its change number (a read started after this call sees it). */
  seatsChanged(concertId: number): Promise<number>;
  stats(concertId: number, now: StoreNow, defaults: QueueSettings): Promise<QueueStats>;
  configure(concertId: number, patch: QueueSettingsPatch, now: StoreNow, defaults: QueueSettings): Promise<QueueStats>;
  /** Admissions per bucket of `bucketMs`, oldest first, over the last `buckets` buckets (at most ADMITS_KEPT_MS back). */
  admissions(concertId: number, now: StoreNow, bucketMs: number, buckets: number): Promise<number[]>;
  /**
   * Concerts whose line is settled by `tick`, for metrics and the ticker: every concert entered
   * (or configured, or whose seats changed), until `tick` finds its line quiet for LINE_PRUNE_MS.
   */
  concerts(): Promise<number[]>;
  /** Each line's numbers as this store's last `tick` settled them; null before the first. */
  lastTick(): Map<number, QueueStats> | null;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export const ADMIT_BATCH = 1000;
/** Places at the head of the line that poll every second. */
export const HEAD_PLACES = 10;
export const CLEANUP_BATCH = 500;
export const RATE_WINDOW_MS = 60_000;
export const ADMITS_KEPT_MS = 300_000;
/** Pre-queued clients' first polls after the opening are spread over this long. */
export const OPENING_SPREAD_MS = 5_000;
/** The inventory is read at least this often while a line exists, and at most this often after a change. */
export const INVENTORY_MAX_AGE_MS = 1_000;
export const INVENTORY_MIN_GAP_MS = 100;
/** How long a claimed inventory refresh stays claimed if its claimant never reports back. */
export const INVENTORY_CLAIM_MS = 2_000;
/**
 * A line is quiet when nobody holds an ACTIVE slot, no change of its seats waits to be read,
 * and nobody waits, or those who wait do so for a sold-out line. Settling a
 * quiet line changes nothing: there is nobody to admit, expire or drop, and its inventory is as
 * fresh as the last change. After LINE_PRUNE_MS of quiet the ticker stops settling it (a sale
 * that is over, a line that emptied); entering, configuring or a committed change of its seats
 * (which may bring seats back to a sold-out line) puts it back.
 */
export const LINE_PRUNE_MS = 60_000;

/** A uniformly random number in [0, 1) from 48 random bits: a pre-queued entrant's draw. */
export function randomFraction(): number {
  return randomBytes(6).readUIntBE(0, 6) / 2 ** 48;
}

/** The line's phase from its settings and its seats (see seatsState). */
export function lineState(s: QueueSettings, seats: 'OPEN' | 'ALL_HELD' | 'SOLD_OUT', now: number): LineState {
  if (seats === 'SOLD_OUT') return 'SOLD_OUT';
  if (s.opensAt !== null && now < s.opensAt) return 'PRE_QUEUE';
  if (s.paused) return 'PAUSED';
  return seats;
}

/**
 * Counts read before one of their shows started: they may still say its seats are AVAILABLE. A
 * line nobody is in leaves the ticker (LINE_PRUNE_MS) and is read no more, so its counts can be
 * that old: a fan entering after the last show had started was admitted to nothing.
 */
export function countsVoid(inv: Inventory | null, now: number): boolean {
  return inv?.nextStart != null && now >= inv.nextStart;
}

/**
 * Seats as admission sees them: a hold known to have lapsed counts as a seat back before the next
 * read, unless a committed change is marked and not read yet (`changePending`: a payment of that
 * very hold, committed just before its lapse, whose read would say SOLD_OUT; the lapse admitted
 * the next fan into a sold-out line, 4 of 4 times in an outside check); counts void since a show
 * started admit nobody until read again; an inventory not read yet never blocks admission.
 */
export function seatsState(inv: (Inventory & { at: number }) | null, now: number, changePending: boolean): 'OPEN' | 'ALL_HELD' | 'SOLD_OUT' {
  if (countsVoid(inv, now)) return 'ALL_HELD';
  if (!inv || inv.available > 0) return 'OPEN';
  if (inv.held > 0) return inv.nextLapse !== null && now >= inv.nextLapse && !changePending ? 'OPEN' : 'ALL_HELD';
  return 'SOLD_OUT';
}

/**
 * The ETA is a per-slot admission curve (`etaCurve`, cached ETA_CURVE_MS per line; `curveWaitMs`
 * reads it per poll).
 *
 * A slot is timed from when its holder first notices the admission (the first enter or status
 * answered ACTIVE), not from the admission itself: the server told every waiting fan when to poll
 * next, so an admitted fan who has not polled yet is expected at that instant. The think time
 * (notice to departure: a payment, a leave) is learnt as a life table over ETA_BUCKETS buckets up
 * to the TTL, decayed with LIFE_TAU_MS, with the fans still ACTIVE and the lapses counted as
 * censored (Kaplan–Meier, actuarial): a young line has only seen its quickest fans leave, and
 * censoring is what keeps that from reading as "everyone leaves quickly". Each ACTIVE slot then
 * has a distribution of its next departure given its holder's age (or expected notice), ending
 * at its activeUntil (a lapse); after it, the slot refills, and each refill's holder leaves after
 * a cycle (a head fan's notice plus a think time, one of ETA_QUANTILES quantiles alike: the
 * renewal function m in etaCurve). The curve is the expected count of departures by each instant;
 * place p is admitted at the (p + departures since the curve was drawn)-th, read where the
 * count reaches that less ETA_SHIFT (about the median of the order statistic), and never later
 * than the p-th ACTIVE token's activeUntil. When an operator has lowered maxActive below the
 * ACTIVE count, the first `over` departures admit nobody and refill nothing: place p waits for
 * p + over of them, and for the (p + over)-th activeUntil. The Redis adapter's Lua computes the
 * same; the contract suite holds both to these numbers.
 */
export const ETA_BUCKETS = 48;
export const ETA_GRID = 48;
/** Each life-table bucket and each step of the curve's grid is this much longer than the one before (see lifeEdge, gridTime). */
export const ETA_RATIO = 1.2;
const ETA_SPAN = Math.pow(ETA_RATIO, ETA_BUCKETS) - 1;
const GRID_SPAN = Math.pow(ETA_RATIO, ETA_GRID) - 1;
export const ETA_CURVE_MS = 250;
/** At most this many ACTIVE slots are read to draw the curve (evenly by activeUntil, each weighing active ÷ ETA_SAMPLE). */
export const ETA_SAMPLE = 64;
export const LIFE_TAU_MS = 60_000;
/** A refilled slot goes to the head of the line, which polls every second: noticed half a second later on average. */
export const HEAD_NOTICE_MS = 500;
export const ETA_SHIFT = 0.5;
export const ETA_QUANTILES = 8;
/**
 * The line's overall rate starts from this many pseudo-departures of a think time of coldThink
 * each, so a line with no departure yet still expects some. Until the afternoon of 2026-12-04 that
 * think time was a quarter of the TTL and the rate fell as holders were watched and none left: at
 * the default 600 s TTL, ten holders watched for 20 s each without a departure read as a mean
 * think time of about 950 s with 0.25, 550 s with 0.5; now 20 s (coldThink).
 */
export const ETA_PRIOR = 0.5;
/**
 * Each life-table bucket's hazard is joined by this many pseudo-holders leaving at the line's
 * overall rate, weighed as holders of that age (see survival). It was ETA_PRIOR (0.25): where few
 * holders are left (the oldest ages seen) that pulled a bounded think time toward the overall
 * rate, and a line of 20–80 s buyers read its mean cycle 5–15% long (queue.eta.sim.test.ts). Then
 * 0.1 until 2026-12-06: walk-aways watched for minutes after the buyers' few seconds were worn
 * down at the buyers' pace, and ten of them, none seen to leave, told place 1 23–33 s where
 * their first lapse was 145 s away (queue.store.test.ts; README, "Walk-aways").
 */
export const ETA_PRIOR_HAZARD = 0.03;

/** The prior's think time is ETA_COLD_FACTOR × the oldest age in the life table, at least ETA_COLD_MIN_MS, at most a quarter of the TTL (see coldThink). */
export const ETA_COLD_FACTOR = 1;
export const ETA_COLD_MIN_MS = 10_000;
/** A life-table bucket sets the youngest departure or the oldest age seen only with this share of the table's weight. */
export const ETA_LIFE_WEIGHT = 0.01;
/**
 * The deployment's think-time prior. Every line's first seconds rest on a guess (coldThink) until
 * its own departures come, and a big sale's first minute was told 42–115% off (README). A
 * ticketing company's sales teach the next one: an open line whose life table remembers
 * ETA_PRIOR_DEATHS departures (priorRecent) offers the survival it draws at every tick while that
 * curve is fresh; the deployment keeps one survival per TTL, and at most every
 * ETA_PRIOR_EVERY_MS moves it ETA_PRIOR_BLEND of the way to the mean of a tick's offers
 * (blendPrior); and each line of that TTL takes it as the hazard past the ages its own table has
 * seen, in place of its overall rate, as far as its own departures agree with it (priorTrust: a
 * gap of ETA_PRIOR_GAP between its survival and the prior's, where ETA_PRIOR_RISK holders were at
 * risk, and it is not used at all).
 *
 * How many departures a line's life table must remember to offer its survival: each counted by
 * how long ago it left, e^(−ago/LIFE_TAU_MS) (priorRecent), so about a minute's departures. The
 * table itself weighs a departure by how long ago its holder noticed, which also discounts slow
 * buyers (a 50 s think time weighs e^(−50/60) ≈ 0.43 as it leaves). Until 2026-12-06 a line
 * offered once that weight reached 10: a line of 10 slots of 20–80 s buyers never weighs more
 * than about 5, so it never taught the deployment anything, and its next sale's first 30 s were
 * told as a first sale's (queue.eta.sim.test.ts). Counted by when they left, it remembers about
 * 12. (A first version counted the weight, at least 1, beside 10 departures ever: a line quiet
 * after its tenth then taught from two or three; and quick lines with lapses offered their first
 * curves a few departures sooner: the API test's 6 s TTL steady phase read 22–24% in three runs,
 * told too long, against 11–21% in three of the old rule's and 11–18% in two of this one's.)
 */
export const ETA_PRIOR_DEATHS = 10;
export const ETA_PRIOR_EVERY_MS = 10_000;
export const ETA_PRIOR_BLEND = 0.2;
export const ETA_PRIOR_GAP = 0.25;
export const ETA_PRIOR_RISK = 2;
/**
 * A line offers its survival only once at most this much of it is left where its table's own ages
 * end (the survival at the end of its oldest bucket; none once they reach the last bucket, where
 * slots lapse): the rest of the curve is the straight line's guess, and a guess
 * offered teaches the prior, which the same line then takes past its ages in place of its own
 * tail. Under a 300 s TTL with a tenth of the fans walking away, the first curves (everyone gone
 * by about 20 s but the walk-aways, and those read as about to leave) taught the prior that
 * nobody stays past a minute, and it kept the walk-aways' slots freeing within a minute until
 * the first lapse (README, "Walk-aways").
 */
export const ETA_PRIOR_OPEN = 0.05;

/** The departures a life table remembers, each counted e^(−(now − when it left)/LIFE_TAU_MS): a bucket's weight undoes the think-time part of addLife's (at the bucket's middle). */
export function priorRecent(d: number[], ttlMs: number): number {
  let n = 0;
  for (let b = 0; b < ETA_BUCKETS; b++) n += d[b]! * Math.exp((lifeEdge(b, ttlMs) + lifeEdge(b + 1, ttlMs)) / 2 / LIFE_TAU_MS);
  return n;
}

/**
 * The think time the line's overall rate starts from (ETA_PRIOR pseudo-departures of it), before
 * its departures say otherwise: as long again as the oldest age its table holds (current holders
 * included: a holder watched for 20 s is expected to take about 20 s more), at least 10 s, at most
 * a quarter of the TTL. It was a quarter of the TTL from the first second,
 * and every second without a departure added its holders' whole ages to the time watched, so a
 * line whose first buyers had thought 20 s read as a mean think time near 10 minutes: at the
 * default 600 s TTL, buyers of 20–80 s were told their first 40 s 383–639% too long
 * (queue.eta.sim.test.ts). Nothing tells 20 s from 10 minutes before the first departure; until
 * it, a guess that grows with what has been watched is wrong by a bounded factor either way. The
 * time before the youngest departure seen is not counted as time at risk (see survival); after an
 * early departure (2 s, while the others take minutes) the time watched past it counts again, and
 * the line reads slower (README: not fixed).
 */
export function coldThink(oldestMs: number, ttlMs: number): number {
  return Math.min(ttlMs / 4, Math.max(ETA_COLD_MIN_MS, ETA_COLD_FACTOR * oldestMs));
}

/**
 * The survivals offered by a tick's lines of one TTL (in ascending concert id: both stores add them
 * up in that order), averaged, blended into the deployment's prior of that TTL: taken whole when
 * there is none, else ETA_PRIOR_BLEND of the way, at most every ETA_PRIOR_EVERY_MS. Lines offer at
 * every tick while their curve is fresh, so several sales of one TTL all teach it.
 */
export function blendPrior(prior: { s: number[]; at: number } | null, offers: number[][], now: number): { s: number[]; at: number } {
  // (A time ahead of now, edited by hand, would keep the prior from ever moving again.)
  if (prior && now - prior.at < ETA_PRIOR_EVERY_MS && prior.at <= now) return prior;
  const mean = offers[0]!.map((_, i) => {
    let sum = 0;
    for (const o of offers) sum += o[i]!;
    return sum / offers.length;
  });
  if (!prior) return { s: mean.map(round6), at: now };
  return { s: prior.s.map((v, i) => round6(v + ETA_PRIOR_BLEND * (mean[i]! - v))), at: now };
}

/** Rounded to a millionth: both adapters store the same decimals (Redis keeps numbers as text). */
export function round6(x: number): number {
  return Math.floor(x * 1e6 + 0.5) / 1e6;
}

/**
 * The life table's buckets grow geometrically (each ETA_RATIO times the one before, the last
 * ending at the TTL): a fifth of a think time wide wherever it lies, so a line whose fans go in
 * two seconds reads those two seconds as finely under a 600 s TTL as under a 6 s one. (They
 * were ttl × (b/B)² wide: under the default 600 s TTL the second bucket spanned 1.0–4.2 s, and
 * every ETA read a quick line's think time as about the middle of it.)
 */
export function lifeEdge(b: number, ttlMs: number): number {
  return (ttlMs * (Math.pow(ETA_RATIO, b) - 1)) / ETA_SPAN;
}

/** The bucket of a think time: the b with lifeEdge(b) ≤ age < lifeEdge(b + 1), the last one open-ended. */
export function lifeBucket(ageMs: number, ttlMs: number): number {
  return edgeIndex(Math.max(0, ageMs), ETA_BUCKETS - 1, (b) => lifeEdge(b, ttlMs), Math.log(1 + (Math.max(0, ageMs) * ETA_SPAN) / ttlMs));
}

/** The curve's grid: point j is at H × (ETA_RATIO^j − 1) / (ETA_RATIO^J − 1) after it is drawn (H = 2 × ttl), as fine near now as the life table. */
export function gridTime(j: number, horizon: number): number {
  return (horizon * (Math.pow(ETA_RATIO, j) - 1)) / GRID_SPAN;
}

/** The grid step holding `x` ms after the draw: the j < J with gridTime(j) ≤ x < gridTime(j + 1), J − 1 past the end. */
function gridStep(x: number, horizon: number): number {
  return edgeIndex(x, ETA_GRID - 1, (j) => gridTime(j, horizon), Math.log(1 + (x * GRID_SPAN) / horizon));
}

/** The i in [0, last] with edge(i) ≤ x < edge(i + 1), from logApprox ≈ ln(ETA_RATIO) × i; checked against the edges so both adapters agree whatever their log's last bit. */
function edgeIndex(x: number, last: number, edge: (i: number) => number, logApprox: number): number {
  let i = Math.max(0, Math.min(last, Math.floor(logApprox / Math.log(ETA_RATIO))));
  while (i < last && x >= edge(i + 1)) i++;
  while (i > 0 && x < edge(i)) i--;
  return i;
}

/** The life table ([deaths, censored] per bucket, decayed to `lifeAt`) with a departure at think time `ageMs` added, decayed to now. */
export function addLife(life: number[], lifeAt: number | null, now: number, ageMs: number, ttlMs: number, died: boolean): number[] {
  const f = lifeAt === null || now <= lifeAt ? 1 : Math.exp((lifeAt - now) / LIFE_TAU_MS);
  const out: number[] = [];
  for (let i = 0; i < 2 * ETA_BUCKETS; i++) out.push((life[i] ?? 0) * f);
  const b = lifeBucket(ageMs, ttlMs);
  // Weighed by when the holder noticed (not when they left), so quick and slow holders of the same age weigh alike.
  out[2 * b + (died ? 0 : 1)]! += Math.exp(-ageMs / LIFE_TAU_MS);
  return out.map(round6);
}

/**
 * Survival at the buckets' edges (B + 1 values), from deaths and censorings per bucket (actuarial
 * Kaplan–Meier), each bucket's hazard joined by ETA_PRIOR_HAZARD pseudo-holders leaving at the
 * line's overall rate (its departures, plus ETA_PRIOR, over the time its holders were watched
 * past the youngest age anyone has left at, plus ETA_PRIOR × coldThink). Where the table has data
 * the data decide. Before the first departure, the rate does. Past the oldest holder seen, once
 * someone has left, departures go on at the density seen since the youngest departure: the
 * survival falls on a straight line from where the data end, reaching 0 as far past them as the
 * data's own span would take at that pace.
 *
 * (That was the constant hazard of the overall rate until 2026-12-05: it reads a bounded think
 * time as a long-tailed one. In a sale's first minute the first wave is the oldest age seen,
 * and its holders' remaining time was read as the mean of an exponential: a big sale of 20–80 s
 * buyers was told its 30–60 s 59–109% too long, where the straight line reads 9–40% over four
 * seeds (queue.eta.sim.test.ts asserts seed 1's within 35%). A long-tailed think time (log-normal, σ 0.8) is read shorter than it
 * is by the straight line at those ages, and was told about as far off either way.)
 */
function survival(d: number[], c: number[], ttlMs: number, prior: number[] | null): { s: number[]; open: number } {
  let total = 0;
  for (let b = 0; b < ETA_BUCKETS; b++) total += d[b]! + c[b]!;
  // The youngest departure and the oldest age are read among buckets of some weight: a wave long
  // decayed (down to 1e-78 after 3 h, 0 only after 12 h) must not set them for the one now.
  const least = ETA_LIFE_WEIGHT * total;
  let first = -1;
  let last = -1;
  for (let b = 0; b < ETA_BUCKETS; b++) {
    if (first < 0 && d[b]! > 0 && d[b]! >= least) first = b;
    if (d[b]! + c[b]! > 0 && d[b]! + c[b]! >= least) last = b;
  }
  const mid = (b: number) => (lifeEdge(b, ttlMs) + lifeEdge(b + 1, ttlMs)) / 2;
  // Time before the youngest age anyone left at is not time at risk: nobody has been seen to go that
  // soon. The departures before it (too light to count) are left out with it.
  const from = first < 0 ? Infinity : lifeEdge(first, ttlMs);
  let risk = 0;
  let deaths = ETA_PRIOR;
  let watched = ETA_PRIOR * coldThink(last < 0 ? 0 : mid(last), ttlMs);
  for (let b = 0; b < ETA_BUCKETS; b++) {
    risk += d[b]! + c[b]!;
    if (first >= 0 && b >= first) deaths += d[b]!;
    watched += (d[b]! + c[b]!) * Math.max(0, mid(b) - from);
  }
  const rate = deaths / watched;
  const trust = prior ? priorTrust(d, c, risk, prior) : 0;
  const s = [1];
  // Past the oldest age the table holds, departures go on at the density seen since the youngest
  // departure: survival falls on a straight line from where the data end (see the doc above),
  // unless nobody left in the latter half of the ages it holds (a plateau: see below).
  let endS = 1;
  let endAt = 0;
  let density = 0;
  for (let b = 0; b < ETA_BUCKETS; b++) {
    let pace = 1 - Math.exp(-rate * (lifeEdge(b + 1, ttlMs) - lifeEdge(b, ttlMs)));
    if (first >= 0 && b > last) {
      if (b === last + 1) {
        // From the middle of the oldest bucket: its upper edge, up to a fifth past the oldest age,
        // made the line start up to that much late (a big sale's 30–60 s read 5–9% or 28–31% by
        // where the first wave's age fell in its bucket, 19–25% from the middle).
        endS = (s[b - 1]! + s[b]!) / 2;
        endAt = mid(b - 1);
        // A plateau: holders watched through the latter half of the table's ages and none of them
        // left (admitted fans who walked away, their slots lapsing only at activeUntil). Its tail
        // stays flat: those still there hold on until their slot lapses. (The straight line read
        // them as about to leave: under a 300 s TTL with a tenth walking away, places 11–50 were
        // told 56–59% too short in minutes 1–3, in three seeds of four; README, "Walk-aways".)
        density = plateau(d, lifeBucket((from + endAt) / 2, ttlMs), b - 1, least) ? 0 : (1 - endS) / (endAt - from);
      }
      const lo = endS - density * (lifeEdge(b, ttlMs) - endAt);
      pace = lo > 1e-12 ? 1 - Math.max(0, endS - density * (lifeEdge(b + 1, ttlMs) - endAt)) / lo : 1;
    }
    if (prior) pace = trust * priorHazard(prior, b) + (1 - trust) * pace;
    // The pseudo-holders weigh as holders of this age do (see addLife), so they do not outweigh the
    // few old holders a table keeps at the ages past most departures.
    // (Past about 12 h of age they weigh nothing at all: where nobody is at risk either, the
    // hazard is their pace, as it was when they weighed the same at every age.)
    const pseudo = ETA_PRIOR_HAZARD * Math.exp(-mid(b) / LIFE_TAU_MS);
    const atRisk = Math.max(risk - c[b]! / 2, d[b]!) + pseudo;
    const h = atRisk > 0 ? Math.min(1, (d[b]! + pseudo * pace) / atRisk) : Math.min(1, pace);
    s.push(s[b]! * (1 - h));
    risk -= d[b]! + c[b]!;
  }
  // What is left to guess: the survival at the end of the oldest bucket the table holds (1 before
  // any departure, 0 once its ages reach the last bucket, where slots lapse).
  const open = first < 0 ? 1 : last >= ETA_BUCKETS - 1 ? 0 : s[last + 1]!;
  return { s, open };
}

/** No departure of weight (`least`) in buckets `from`..`to`. */
function plateau(d: number[], from: number, to: number, least: number): boolean {
  for (let b = from; b <= to; b++) if (d[b]! > 0 && d[b]! >= least) return false;
  return true;
}

/**
 * How far a line's own departures agree with the deployment's prior: 1 less the square of the widest
 * gap between its own survival (actuarial, where at least ETA_PRIOR_RISK holders were at risk) and
 * the prior's over ETA_PRIOR_GAP, at least 0 (squared: the noise of a few departures costs little). A line that has seen nobody leave yet trusts the prior whole; one
 * whose fans leave at ages the prior says nobody does stops trusting it as soon as they do.
 */
function priorTrust(d: number[], c: number[], total: number, prior: number[]): number {
  let risk = total;
  let own = 1;
  let gap = 0;
  for (let b = 0; b < ETA_BUCKETS; b++) {
    const at = Math.max(risk - c[b]! / 2, d[b]!);
    if (at >= ETA_PRIOR_RISK) {
      own *= 1 - d[b]! / at;
      gap = Math.max(gap, Math.abs(own - prior[b + 1]!));
    }
    risk -= d[b]! + c[b]!;
  }
  const q = gap / ETA_PRIOR_GAP;
  return Math.max(0, 1 - q * q);
}

/** Bucket b's hazard in a survival curve at the buckets' edges (the deployment's prior, see ETA_PRIOR_EVERY_MS). */
function priorHazard(prior: number[], b: number): number {
  const hi = prior[b]!;
  return hi > 1e-12 ? Math.min(1, Math.max(0, 1 - prior[b + 1]! / hi)) : 1;
}

function surviving(s: number[], x: number, ttlMs: number): number {
  if (x <= 0) return 1;
  if (x >= ttlMs) return s[ETA_BUCKETS]!;
  const b = lifeBucket(x, ttlMs);
  const lo = lifeEdge(b, ttlMs);
  const hi = lifeEdge(b + 1, ttlMs);
  return s[b]! + ((s[b + 1]! - s[b]!) * (x - lo)) / (hi - lo);
}

export interface EtaSlot {
  /** activeUntil (ms). */
  until: number;
  /** Positive: when the holder is expected to notice the admission; negative: −(when they did). */
  notice: number;
}

export interface EtaCurve {
  at: number;
  /** The line's departure count when drawn. */
  dep: number;
  maxActive: number;
  ttlMs: number;
  /** Mean cycle of a refilled slot (ms). */
  cycle: number;
  /** ACTIVE slots over maxActive when drawn (an operator lowered it): their departures admit nobody. */
  over: number;
  /** Expected departures by at + gridTime(j, H), H = 2 × ttl, j = 0..ETA_GRID. */
  n: number[];
  /** The think time's survival at the life table's edges, once the table remembers ETA_PRIOR_DEATHS departures (priorRecent): what the line offers the deployment's prior. */
  survival?: number[] | null;
}

/** Draws the admission curve (see above) from the ACTIVE slots (a sample, each weighing `weight`), the life table and the empty slots. */
export function etaCurve(e: {
  now: number;
  dep: number;
  maxActive: number;
  ttlMs: number;
  slots: EtaSlot[];
  weight: number;
  active: number;
  life: number[];
  lifeAt: number | null;
  /** How late holders notice, on average, after the poll they were told to make (see noticeLate). */
  late: number;
  prior?: number[] | null;
}): EtaCurve {
  const { now, ttlMs } = e;
  const late = Math.max(0, e.late);
  const headNotice = HEAD_NOTICE_MS + late;
  const f = e.lifeAt === null || now <= e.lifeAt ? 1 : Math.exp((e.lifeAt - now) / LIFE_TAU_MS);
  const d: number[] = [];
  const c: number[] = [];
  for (let b = 0; b < ETA_BUCKETS; b++) {
    d.push((e.life[2 * b] ?? 0) * f);
    c.push((e.life[2 * b + 1] ?? 0) * f);
  }
  const starts: number[] = [];
  const ages: number[] = [];
  for (const slot of e.slots) {
    const noticed = slot.notice < 0;
    const start = noticed ? -slot.notice : Math.max(slot.notice + late, now);
    starts.push(start);
    ages.push(noticed ? now - start : 0);
    if (noticed) c[lifeBucket(now - start, ttlMs)]! += e.weight * Math.exp((start - now) / LIFE_TAU_MS);
  }
  const { s, open } = survival(d, c, ttlMs, e.prior ?? null);
  const s0 = ages.map((a) => surviving(s, a, ttlMs));
  // A refill's holder thinks at most until its slot lapses, a TTL after the admission.
  const most = ttlMs - headNotice;
  let think = 0;
  for (let b = 0; b < ETA_BUCKETS && lifeEdge(b, ttlMs) < most; b++) {
    const hi = Math.min(lifeEdge(b + 1, ttlMs), most);
    think += ((hi - lifeEdge(b, ttlMs)) * (s[b]! + surviving(s, hi, ttlMs))) / 2;
  }
  const horizon = 2 * ttlMs;
  const cycle = round6(Math.min(ttlMs, headNotice + think));
  const empty = Math.max(0, e.maxActive - e.active);
  const over = Math.max(0, e.active - e.maxActive);
  const grid: number[] = [];
  for (let j = 0; j <= ETA_GRID; j++) {
    const t = now + gridTime(j, horizon);
    let sum = 0;
    e.slots.forEach((slot, i) => {
      if (t >= slot.until) sum += e.weight;
      else {
        const x = t - starts[i]!;
        if (x > ages[i]! && s0[i]! > 1e-9) sum += e.weight * (1 - surviving(s, x, ttlMs) / s0[i]!);
      }
    });
    if (empty > 0) {
      if (t >= now + ttlMs) sum += empty;
      else if (t > now + headNotice) sum += empty * (1 - surviving(s, t - now - headNotice, ttlMs));
    }
    grid.push(sum);
  }
  // Linear between the grid's points.
  // x ms after now (not now + x: at 1.8e12 ms the sum rounds to a 4,096th of a ms, and the
  // renewal function below, read just under a step it has not drawn yet, read past its end).
  const linear = (g: number[], x: number) => {
    if (x <= 0) return 0;
    if (x >= horizon) return g[ETA_GRID]!;
    const i = gridStep(x, horizon);
    const lo = gridTime(i, horizon);
    return g[i]! + ((g[i + 1]! - g[i]!) * (x - lo)) / (gridTime(i + 1, horizon) - lo);
  };
  // Only admissions refill: the first `over` departures of a line whose maxActive was lowered admit nobody.
  const admitted = grid.map((v) => Math.max(0, v - over));
  // A refill's cycle (its holder's notice and think time) is skewed, and under a TTL of minutes
  // with fans who walk away it is a mixture of seconds and the whole TTL: ETA_QUANTILES quantiles
  // of it, each alike.
  const cycles: number[] = [];
  for (let q = 0; q < ETA_QUANTILES; q++) {
    const target = 1 - (q + 0.5) / ETA_QUANTILES;
    let x = most;
    for (let b = 0; b < ETA_BUCKETS; b++) {
      if (s[b + 1]! <= target) {
        const lo = lifeEdge(b, ttlMs);
        x = lo + ((lifeEdge(b + 1, ttlMs) - lo) * (s[b]! - target)) / (s[b]! - s[b + 1]!);
        break;
      }
    }
    cycles.push(headNotice + Math.max(0, Math.min(x, most)));
  }
  // The renewal function of a refilled slot, m[j]: the admissions its holders' departures make
  // within gridTime(j) of its own admission, every cycle drawn from the quantiles:
  // m(t) = mean over q of [c_q <= t] (1 + m(t − c_q)), linear between the grid's points. Where
  // t − c_q falls in the step being drawn, that step's own end enters the mean, and the step is
  // solved for it (a step of minutes holds many quick cycles: m then grows by step ÷ mean cycle).
  // Until 2026-12-06 a refill took the quantiles for its first cycle and the mean for the rest,
  // which reads a slot that cycles in seconds but now and then holds a walk-away for the whole
  // TTL as cycling at the mean: places 11–50 of a 120 s TTL with a tenth walking away were told
  // 24–48% too long (README, "Walk-aways").
  const m = [0];
  const mAt = (x: number) => linear(m, x);
  for (let j = 1; j <= ETA_GRID; j++) {
    const hi = gridTime(j, horizon);
    const lo = gridTime(j - 1, horizon);
    let known = 0;
    let self = 0;
    for (const g of cycles) {
      if (g > hi) continue;
      const x = hi - g;
      if (x >= lo) {
        const w = (x - lo) / (hi - lo);
        known += 1 + m[j - 1]! * (1 - w);
        self += w;
      } else known += 1 + mAt(x);
    }
    m.push(known / (ETA_QUANTILES - self));
  }
  // Every admission by t (at) and the refills after each: those made at now (admitted[0]), and
  // over each step of the grid, its admissions' refills by t (trapezoids).
  const n: number[] = [];
  for (let j = 0; j <= ETA_GRID; j++) {
    const t = gridTime(j, horizon);
    let edge = mAt(t);
    let sum = linear(grid, t) + admitted[0]! * edge;
    for (let i = 1; i <= j; i++) {
      const next = mAt(t - gridTime(i, horizon));
      sum += ((admitted[i]! - admitted[i - 1]!) * (edge + next)) / 2;
      edge = next;
    }
    n.push(round6(sum));
  }
  return { at: now, dep: e.dep, maxActive: e.maxActive, ttlMs, cycle, over, n, survival: priorRecent(d, ttlMs) >= ETA_PRIOR_DEATHS && open <= ETA_PRIOR_OPEN ? s.map(round6) : null };
}

/** How late holders notice: a moving average (a tenth of each new one) of notice − the poll they were told to make. */
export function noticeLate(late: number, lateMs: number): number {
  return round6(late + (lateMs - late) / 10);
}

/**
 * The wait (ms) of place `position` read from the curve, `dep` being the line's departure count
 * now (every departure from ACTIVE, those that admitted nobody too). Of the `d` departures since
 * the curve was drawn, the first `over` admitted nobody: place p is admitted at the curve's
 * (p + d + the over departures still to come)-th. `pthActiveUntil`: the activeUntil of the
 * (p + over now)-th ACTIVE token, by which that many have left.
 */
export function curveWaitMs(curve: EtaCurve, position: number, dep: number, now: number, pthActiveUntil: number | null): number {
  const d = dep - curve.dep;
  const q = position + d + Math.max(0, curve.over - d) - ETA_SHIFT;
  const horizon = 2 * curve.ttlMs;
  const n = curve.n;
  let t = curve.at + horizon + ((q - n[ETA_GRID]!) * curve.cycle) / curve.maxActive;
  for (let j = 0; j <= ETA_GRID; j++) {
    if (n[j]! >= q) {
      const hi = curve.at + gridTime(j, horizon);
      if (j === 0) t = hi;
      else {
        const lo = curve.at + gridTime(j - 1, horizon);
        t = lo + ((hi - lo) * (q - n[j - 1]!)) / (n[j]! - n[j - 1]!);
      }
      break;
    }
  }
  let wait = Math.max(0, t - now);
  if (pthActiveUntil !== null) wait = Math.min(wait, Math.max(0, pthActiveUntil - now));
  return Math.floor(wait);
}

/**
 * Departures a line must have seen (or as many as it has slots, if fewer) before its ETA sets
 * how long a client waits to poll. Before them the ETA rests on the life table's prior, a guess
 * (coldThink): at an opening with quick buyers the prior of the time (a quarter of the TTL) told
 * place 11 of 40 (5 slots) 524 s and to poll after 20 s, and the fans admitted a second later sat
 * on their slots unaware for those 20 s (a rehearsal's line stood still 17 s of its 44).
 */
export const ETA_EVIDENCE = 10;

/**
 * When an EXPIRED or SOLD_OUT ticket is told to look again. A line that reopens (seats came back)
 * drops nobody as idle until this plus the idle timeout has passed since, so a fan who obeyed a
 * SOLD_OUT ticket's pollAfterMs is back in time whatever the line's idle timeout (with a grace
 * of the idle timeout alone, a line with one under a minute dropped every such fan).
 */
export const SOLD_OUT_POLL_MS = 60_000;
// BACK: a ticket told SOLD_OUT is told to look again in SOLD_OUT_POLL_MS. If seats come back and
// it is admitted before then, its turn (activeUntil) runs a whole activeTtlSeconds from that
// moment, not from the admission, which it cannot know of: a short turn lapsed before it came
// back, and the reopened line's seats went to fans behind it. Both adapters keep that moment per
// ticket (the Redis one in the slots hash, field `<token>~`).

/**
 * The longest `pollAfterMs` a waiting or pre-queued ticket is told under this idle timeout. An
 * operator who lowers the timeout leaves tickets in hands that were told up to this of the old
 * one: the line drops nobody as idle until this (of the old timeout) plus the new timeout has
 * passed since the change, as after a reopening (a fan at place 250, told to come back in 12.5 s
 * under 60 s, was dropped at 10 s when the operator set 10 s, though it came back when told).
 */
export const pollCeiling = (idleTimeoutSeconds: number) => Math.min(30_000, Math.floor((idleTimeoutSeconds * 1000) / 3));

/**
 * Whether a line's ETA has learnt enough to pace the polls (see ETA_EVIDENCE): `departed` is the
 * departure count the curve was drawn at, not the line's count now. A curve drawn before the
 * evidence came (it is kept ETA_CURVE_MS) still rests on the prior: read against the count now,
 * it told a fan at place 25 to come back in 20 s just after the fifth departure of a 5-slot line
 * with the default TTL, and that fan's slot stood unused for 9 s once it was admitted.
 */
export const etaLearnt = (departed: number, maxActive: number) => departed >= Math.min(maxActive, ETA_EVIDENCE);

/**
 * When a client should poll again: every second in the first ten places, backing off with the
 * distance (50 ms per place, or a quarter of the ETA once it has learnt from departures, see
 * ETA_EVIDENCE) up to 30 s, never more than a third of
 * the idle timeout (so an obedient client is never dropped as idle). Pre-queued clients are
 * spread at random (`jitter` in [0, 1)) over half to all of that ceiling, and, near the opening,
 * over OPENING_SPREAD_MS after it, so the pre-queue never polls as one. The Redis adapter's Lua
 * computes the same; the contract suite holds both to these numbers.
 */
export function pollAfter(
  s: { status: TicketStatus; position: number | null; activeUntil: number | null; etaMs: number | null; opensAt: number | null },
  idleTimeoutSeconds: number,
  jitter: number,
  now: number,
  learnt: boolean,
): number {
  if (s.status === 'EXPIRED' || s.status === 'SOLD_OUT') return SOLD_OUT_POLL_MS;
  if (s.status === 'ACTIVE') return Math.max(1_000, Math.min(30_000, Math.floor(((s.activeUntil ?? now) - now) / 2)));
  const ceiling = pollCeiling(idleTimeoutSeconds);
  const floor = Math.min(1_000, ceiling);
  if (s.status === 'PRE_QUEUE') {
    const untilOpen = Math.max(0, (s.opensAt ?? now) - now);
    const hi = Math.min(ceiling, untilOpen + OPENING_SPREAD_MS);
    const lo = Math.max(floor, Math.min(untilOpen, Math.floor(hi / 2)));
    return Math.max(floor, lo + Math.floor(jitter * Math.max(0, hi - lo)));
  }
  const position = s.position ?? 1;
  // The first few places are one admission away: they poll every second whatever the ETA says.
  if (position <= HEAD_PLACES) return floor;
  const byEta = s.etaMs === null || !learnt ? 0 : Math.floor(s.etaMs / 4);
  return Math.max(floor, Math.min(ceiling, Math.max(position * 50, byEta)));
}
