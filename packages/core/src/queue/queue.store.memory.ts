import {
  ADMIT_BATCH,
  ADMITS_KEPT_MS,
  CLEANUP_BATCH,
  type EnterResult,
  type GateState,
  type QueueSettings,
  type QueueSettingsPatch,
  type QueueStats,
  type QueueStore,
  RATE_WINDOW_MS,
  type TokenState,
  pollAfter,
} from './queue.store.ts';

interface Line {
  seq: number;
  /** WAITING tokens in arrival order (Map keeps insertion order) -> last poll time. */
  waiting: Map<string, { seq: number; seen: number }>;
  /** ACTIVE tokens -> activeUntil. */
  active: Map<string, number>;
  owners: Map<string, { userId: number; enteredAt: number }>;
  users: Map<number, string>;
  config: QueueSettingsPatch;
  admits: number[];
  admittedTotal: number;
  /** tokenId -> earliest next status poll. */
  polls: Map<string, number>;
}

/**
 * The embedded queue store for one process (REDIS_URL unset). Each method runs to completion
 * without awaiting, so it is as atomic as the Redis scripts it mirrors.
 */
export class MemoryQueueStore implements QueueStore {
  private readonly lines = new Map<number, Line>();

  private line(concertId: number): Line {
    let l = this.lines.get(concertId);
    if (!l) {
      l = { seq: 0, waiting: new Map(), active: new Map(), owners: new Map(), users: new Map(), config: {}, admits: [], admittedTotal: 0, polls: new Map() };
      this.lines.set(concertId, l);
    }
    return l;
  }

  private settings(l: Line, defaults: QueueSettings): QueueSettings {
    return { ...defaults, ...l.config };
  }

  private drop(l: Line, tokenId: string): boolean {
    const live = l.waiting.delete(tokenId) || l.active.delete(tokenId);
    l.polls.delete(tokenId);
    const owner = l.owners.get(tokenId);
    if (owner) {
      if (l.users.get(owner.userId) === tokenId) l.users.delete(owner.userId);
      l.owners.delete(tokenId);
    }
    return live;
  }

  private settle(l: Line, now: number, defaults: QueueSettings): void {
    const s = this.settings(l, defaults);
    let n = 0;
    for (const [t, until] of l.active) {
      if (until <= now && n++ < CLEANUP_BATCH) this.drop(l, t);
    }
    n = 0;
    const idleBefore = now - s.idleTimeoutSeconds * 1000;
    for (const [t, w] of l.waiting) {
      if (w.seen <= idleBefore && n++ < CLEANUP_BATCH) this.drop(l, t);
    }
    if (!s.paused) {
      let free = Math.min(s.maxActive - l.active.size, ADMIT_BATCH);
      for (const t of l.waiting.keys()) {
        if (free-- <= 0) break;
        l.waiting.delete(t);
        l.active.set(t, now + s.activeTtlSeconds * 1000);
        l.admits.push(now);
        l.admittedTotal++;
      }
    }
    const keepFrom = now - ADMITS_KEPT_MS;
    while (l.admits.length && l.admits[0]! <= keepFrom) l.admits.shift();
  }

  private state(l: Line, tokenId: string, now: number, defaults: QueueSettings): TokenState {
    const s = this.settings(l, defaults);
    const admittedLastMinute = l.admits.filter((t) => t > now - RATE_WINDOW_MS).length;
    const common = { admittedLastMinute, paused: s.paused, idleTimeoutSeconds: s.idleTimeoutSeconds };
    const withPoll = (st: Omit<TokenState, 'pollAfterMs'>): TokenState => ({ ...st, pollAfterMs: pollAfter(st, now) });
    const until = l.active.get(tokenId);
    if (until !== undefined) return withPoll({ status: 'ACTIVE', position: null, activeUntil: until, ...common });
    const w = l.waiting.get(tokenId);
    if (w) {
      let position = 1;
      for (const other of l.waiting.values()) if (other.seq < w.seq) position++;
      return withPoll({ status: 'WAITING', position, activeUntil: null, ...common });
    }
    return withPoll({ status: 'EXPIRED', position: null, activeUntil: null, ...common });
  }

  async enter(concertId: number, userId: number, newTokenId: string, now: number, defaults: QueueSettings): Promise<EnterResult> {
    const l = this.line(concertId);
    this.settle(l, now, defaults);
    let tokenId = l.users.get(userId);
    let created = false;
    if (tokenId === undefined || !(l.waiting.has(tokenId) || l.active.has(tokenId))) {
      tokenId = newTokenId;
      created = true;
      l.waiting.set(tokenId, { seq: ++l.seq, seen: now });
      l.owners.set(tokenId, { userId, enteredAt: now });
      l.users.set(userId, tokenId);
      this.settle(l, now, defaults);
    } else {
      const w = l.waiting.get(tokenId);
      if (w) w.seen = now;
    }
    return { ...this.state(l, tokenId, now, defaults), tokenId, enteredAt: l.owners.get(tokenId)!.enteredAt, created };
  }

  async status(concertId: number, tokenId: string, now: number, defaults: QueueSettings, limitPolls: boolean): Promise<TokenState | { rateLimited: number }> {
    const l = this.line(concertId);
    this.settle(l, now, defaults);
    const earliest = l.polls.get(tokenId) ?? 0;
    if (limitPolls && now < earliest) return { rateLimited: earliest - now };
    const w = l.waiting.get(tokenId);
    if (w) w.seen = now;
    const state = this.state(l, tokenId, now, defaults);
    if (state.status !== 'EXPIRED') l.polls.set(tokenId, now + Math.floor(state.pollAfterMs / 2));
    return state;
  }

  async check(concertId: number, tokenId: string, now: number): Promise<{ state: GateState }> {
    const l = this.lines.get(concertId);
    const until = l?.active.get(tokenId);
    if (until !== undefined && until > now) return { state: 'ACTIVE' };
    if (l?.waiting.has(tokenId)) return { state: 'WAITING' };
    return { state: 'EXPIRED' };
  }

  async leave(concertId: number, tokenId: string, now: number, defaults: QueueSettings): Promise<boolean> {
    const l = this.line(concertId);
    const live = this.drop(l, tokenId);
    this.settle(l, now, defaults);
    return live;
  }

  async tick(now: number, defaults: QueueSettings): Promise<void> {
    for (const l of this.lines.values()) this.settle(l, now, defaults);
  }

  async stats(concertId: number, now: number, defaults: QueueSettings): Promise<QueueStats> {
    const l = this.line(concertId);
    this.settle(l, now, defaults);
    return {
      ...this.settings(l, defaults),
      waiting: l.waiting.size,
      active: l.active.size,
      admittedTotal: l.admittedTotal,
      admittedLastMinute: l.admits.filter((t) => t > now - RATE_WINDOW_MS).length,
    };
  }

  async configure(concertId: number, patch: QueueSettingsPatch, now: number, defaults: QueueSettings): Promise<QueueStats> {
    const l = this.line(concertId);
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) (l.config as Record<string, unknown>)[k] = v;
    return this.stats(concertId, now, defaults);
  }

  async concerts(): Promise<number[]> {
    return [...this.lines.keys()];
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}
