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
  /** The token's state, after settling the line; a WAITING token's poll keeps it from going idle. */
  status(concertId: number, tokenId: string, now: number, defaults: QueueSettings): Promise<TokenState>;
  /** Read-only check for the booking gate. */
  check(concertId: number, tokenId: string, now: number): Promise<GateState>;
  /** Drops the token (WAITING or ACTIVE) and admits whoever is next; false if it was not live. */
  leave(concertId: number, tokenId: string, now: number, defaults: QueueSettings): Promise<boolean>;
  /** Drops the user's live token for the concert (after a payment); false if none was live. */
  expireUser(concertId: number, userId: number, now: number, defaults: QueueSettings): Promise<boolean>;
  /** Expires lapsed ACTIVE tokens, drops idle WAITING ones and admits from the head, for every concert. */
  tick(now: number, defaults: QueueSettings): Promise<void>;
  stats(concertId: number, now: number, defaults: QueueSettings): Promise<QueueStats>;
  configure(concertId: number, patch: QueueSettingsPatch, now: number, defaults: QueueSettings): Promise<QueueStats>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export const ADMIT_BATCH = 1000;
export const CLEANUP_BATCH = 500;
export const RATE_WINDOW_MS = 60_000;
export const ADMITS_KEPT_MS = 300_000;
