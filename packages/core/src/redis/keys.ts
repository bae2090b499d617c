/**
 * Every Redis key string is built here. A concert's keys share the hash tag {q:<concertId>},
 * so each Lua script touches one Redis Cluster slot.
 */
export function queueKeys(concertId: number) {
  const tag = `{q:${concertId}}`;
  return {
    /** The line (pre-queued and WAITING tokens), scored by arrival sequence, or by a random draw within the pre-queue's band: rank + 1 is the place. */
    waiting: `${tag}:waiting`,
    /** ACTIVE tokens, scored by activeUntil (ms). */
    active: `${tag}:active`,
    /** WAITING tokens, scored by their last poll (ms): the idle timeout reads this. */
    seen: `${tag}:seen`,
    /** tokenId -> "userId:enteredAtMs" for every live token, ":admittedAtMs" appended once ACTIVE. */
    owners: `${tag}:owners`,
    /** userId -> tokenId of the user's live token. */
    users: `${tag}:users`,
    /** Operator settings that override the environment's defaults. */
    config: `${tag}:config`,
    /** Admissions of the last five minutes (member tokenId, score ms): the observed rate. */
    admits: `${tag}:admits`,
    /** seq (arrival counter), admitted, droppedIdle; the ETA's life table, departure count and cached curve; the line's last state. */
    counters: `${tag}:counters`,
    /** tokenId -> earliest ms of its next allowed status poll (half its pollAfterMs). */
    polls: `${tag}:polls`,
    /** The seats as last read from the database (available, held, nextLapse, at) and the refresh's bookkeeping. */
    inventory: `${tag}:inventory`,
    /** tokenId -> for a waiting token, when it was told to poll next; for an ACTIVE one, when it is expected to notice the admission, or −(when it did): the ETA's slot clocks. */
    slots: `${tag}:slots`,
  };
}

/** Concerts with a waiting room, for the admission ticker. Not slot-bound: one small set. */
export const QUEUE_REGISTRY_KEY = 'q:concerts';

/**
 * The deployment's think-time prior for the waiting room's ETA, one field per activeTtlSeconds (in
 * ms: the survival at the life table's edges; `<ttl>:at`: when it was last blended). Not slot-bound:
 * the ticker reads it and passes it to each line's script.
 */
export const ETA_PRIOR_KEY = 'q:eta-prior';

export const QUEUE_KEY_ORDER = ['waiting', 'active', 'seen', 'owners', 'users', 'config', 'admits', 'counters', 'polls', 'inventory', 'slots'] as const;

export function queueKeyList(concertId: number): string[] {
  const k = queueKeys(concertId);
  return QUEUE_KEY_ORDER.map((name) => k[name]);
}

/** A fixed-window rate-limit counter; the subject's braces keep one subject on one slot. */
export function rateLimitKey(bucket: string, subject: string, window: number): string {
  return `rl:{${bucket}:${subject}}:${window}`;
}

/**
 * The seat-map versions of a concert's schedules (field scheduleId), bumped by every committed
 * hold, payment and release. In the concert's slot, so the gate's check can read one with it.
 */
export function seatMapVersionsKey(concertId: number): string {
  return `{q:${concertId}}:seatmaps`;
}
