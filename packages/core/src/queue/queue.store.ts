import { randomBytes } from 'node:crypto';

/** The waiting room's storage port. Both adapters give every call all-or-nothing semantics. */

export interface QueueSettings {
  maxActive: number;
  activeTtlSeconds: number;
  idleTimeoutSeconds: number;
  paused: boolean;
  /** When the line opens (ms since the epoch); null: open. Before it, entrants are pre-queued. */
  opensAt: number | null;
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
  /** Expected wait in ms (see estimateWaitMs); until the opening when PRE_QUEUE; null when nobody is being admitted. */
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
}

export interface QueueStats extends QueueSettings {
  state: LineState;
  waiting: number;
  preQueued: number;
  active: number;
  admittedTotal: number;
  admittedLastMinute: number;
  droppedIdleTotal: number;
  /** The expected wait of whoever is last in line (ms); null when nobody waits or nobody is admitted. */
  etaBackMs: number | null;
}

/** What the database says about a concert's bookable seats, as the line sees it. */
export interface Inventory {
  /** Shows with a seat AVAILABLE (a lapsed hold counts). */
  available: number;
  /** Shows with no seat AVAILABLE and at least one HELD. */
  held: number;
  /** When the first live hold lapses (ms); null when nothing is held. */
  nextLapse: number | null;
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
  enter(concertId: number, userId: number, newTokenId: string, now: StoreNow, defaults: QueueSettings): Promise<EnterResult>;
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
/** Time constant of the decayed departure and exposure sums behind the ETA. */
export const ETA_TAU_MS = 30_000;
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
/** Admission times are summed relative to this instant (2026-01-01), keeping the sums exact in doubles. */
export const AGE_EPOCH_MS = 1_767_225_600_000;

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
 * Seats as admission sees them: a hold known to have lapsed counts as a seat back before the next
 * read; an inventory not read yet never blocks admission.
 */
export function seatsState(inv: (Inventory & { at: number }) | null, now: number): 'OPEN' | 'ALL_HELD' | 'SOLD_OUT' {
  if (!inv || inv.available > 0) return 'OPEN';
  if (inv.held > 0) return inv.nextLapse !== null && now >= inv.nextLapse ? 'OPEN' : 'ALL_HELD';
  return 'SOLD_OUT';
}

/**
 * The expected wait (ms) of place `position`, from the slots' observed turnover.
 *
 * `departures` and `exposureSeconds` are sums decayed with ETA_TAU_MS: departures from ACTIVE (a
 * payment, a leave, a lapse) and slot-seconds spent ACTIVE. Their ratio is the mean time a fan
 * keeps a slot, the maximum-likelihood estimate that counts the fans still ACTIVE, so it holds
 * from the first seconds after an opening or a resume (a burst that fills empty slots is not
 * turnover and does not count) and through a line that is not full. While fewer than half a line
 * of departures has been seen, the fans still ACTIVE bound it: a slot is expected to be kept about
 * twice the mean age of those holding one (a young line has seen only its quickest fans leave).
 * Place p is then admitted after p slots turn over, p × hold / maxActive, and never later than
 * the p-th ACTIVE token reaches its activeUntil (`pthActiveUntil`, when p ≤ active).
 */
export function estimateWaitMs(e: {
  position: number;
  departures: number;
  exposureSeconds: number;
  maxActive: number;
  active: number;
  meanAgeMs: number;
  pthActiveUntil: number | null;
  now: number;
}): number {
  const lindy = Math.max(1_000, 2 * e.meanAgeMs);
  const observed = e.departures > 0 ? (e.exposureSeconds * 1000) / e.departures : Infinity;
  const hold = e.departures >= Math.max(1, e.maxActive / 2) ? observed : Math.min(observed, lindy);
  let wait = (e.position * hold) / e.maxActive;
  if (e.pthActiveUntil !== null) wait = Math.min(wait, Math.max(0, e.pthActiveUntil - e.now));
  return Math.floor(wait);
}

/**
 * When a client should poll again: every second in the first ten places, backing off with the
 * distance (50 ms per place, or a quarter of the ETA) up to 30 s, never more than a third of
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
): number {
  if (s.status === 'EXPIRED' || s.status === 'SOLD_OUT') return 60_000;
  if (s.status === 'ACTIVE') return Math.max(1_000, Math.min(30_000, Math.floor(((s.activeUntil ?? now) - now) / 2)));
  const ceiling = Math.min(30_000, Math.floor((idleTimeoutSeconds * 1000) / 3));
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
  const byEta = s.etaMs === null ? 0 : Math.floor(s.etaMs / 4);
  return Math.max(floor, Math.min(ceiling, Math.max(position * 50, byEta)));
}
