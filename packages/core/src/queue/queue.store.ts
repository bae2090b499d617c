/** The waiting room's storage port. Both adapters give every call all-or-nothing semantics. */

export interface QueueSettings {
  maxActive: number;
  activeTtlSeconds: number;
  idleTimeoutSeconds: number;
  paused: boolean;
}

export type QueueSettingsPatch = Partial<QueueSettings>;

export interface TokenState {
  status: 'WAITING' | 'ACTIVE' | 'EXPIRED';
  /** When the client should ask again (see pollAfter). */
  pollAfterMs: number;
  /** 1-based among those waiting; null unless WAITING. */
  position: number | null;
  /** ms since the epoch; null unless ACTIVE. */
  activeUntil: number | null;
  /** Admissions to this concert in the last 60 s, for the ETA. */
  admittedLastMinute: number;
  paused: boolean;
  /** The line's idle timeout: a client told to poll later than this would be dropped. */
  idleTimeoutSeconds: number;
}

export interface EnterResult extends TokenState {
  tokenId: string;
  enteredAt: number;
  /** False when the user already had a live token, which is returned instead. */
  created: boolean;
}

export interface QueueStats extends QueueSettings {
  waiting: number;
  active: number;
  admittedTotal: number;
  admittedLastMinute: number;
}

export type GateState = 'ACTIVE' | 'WAITING' | 'EXPIRED';

export interface QueueStore {
  /** Joins the back of the line, or returns the user's live token (WAITING or ACTIVE). */
  enter(concertId: number, userId: number, newTokenId: string, now: number, defaults: QueueSettings): Promise<EnterResult>;
  /**
   * The token's state, after settling the line; a WAITING token's poll keeps it from going idle.
   * With `limitPolls`, a live token polled sooner than half its last pollAfterMs gets
   * `{ rateLimited: retryAfterMs }` instead (the poll does not count as seen).
   */
  status(concertId: number, tokenId: string, now: number, defaults: QueueSettings, limitPolls: boolean): Promise<TokenState | { rateLimited: number }>;
  /** Read-only check for the booking gate; with `seatMapOf`, also that schedule's seat-map version (if kept here). */
  check(
    concertId: number,
    tokenId: string,
    now: number,
    seatMapOf?: number,
  ): Promise<{ state: GateState; seatMapVersion?: { epoch: string; n: number } | null }>;
  /** Drops the token (WAITING or ACTIVE) and admits whoever is next; false if it was not live. */
  leave(concertId: number, tokenId: string, now: number, defaults: QueueSettings): Promise<boolean>;
  /** Expires lapsed ACTIVE tokens, drops idle WAITING ones and admits from the head, for every concert. */
  tick(now: number, defaults: QueueSettings): Promise<void>;
  stats(concertId: number, now: number, defaults: QueueSettings): Promise<QueueStats>;
  configure(concertId: number, patch: QueueSettingsPatch, now: number, defaults: QueueSettings): Promise<QueueStats>;
  /** Concerts that have a line, for metrics and the ticker. */
  concerts(): Promise<number[]>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export const ADMIT_BATCH = 1000;
/** Places at the head of the line that poll every second. */
export const HEAD_PLACES = 10;
export const CLEANUP_BATCH = 500;
export const RATE_WINDOW_MS = 60_000;
export const ADMITS_KEPT_MS = 300_000;

/**
 * When a client should poll again: every second in the first ten places, backing off with the
 * distance (50 ms per place, or a quarter of the ETA) up to 30 s, never more than a third of
 * the idle timeout (so an obedient client is never dropped as idle). The Redis adapter's Lua
 * computes the same; the contract suite holds both to these numbers.
 */
export function pollAfter(s: Omit<TokenState, 'pollAfterMs'>, now: number): number {
  if (s.status === 'EXPIRED') return 60_000;
  if (s.status === 'ACTIVE') return Math.max(1_000, Math.min(30_000, Math.floor(((s.activeUntil ?? now) - now) / 2)));
  const position = s.position ?? 1;
  const ceiling = Math.min(30_000, Math.floor((s.idleTimeoutSeconds * 1000) / 3));
  // The first few places are one admission away: they poll every second whatever the ETA says.
  if (position <= HEAD_PLACES) return Math.min(1_000, ceiling);
  const byEta = !s.paused && s.admittedLastMinute > 0 ? etaSeconds(position, s.admittedLastMinute) * 250 : 0;
  return Math.max(Math.min(1_000, ceiling), Math.min(ceiling, Math.max(position * 50, byEta)));
}

/** Seconds until admission at the rate observed over the last minute. */
export function etaSeconds(position: number, admittedLastMinute: number): number {
  return Math.ceil((position * 60) / admittedLastMinute);
}
