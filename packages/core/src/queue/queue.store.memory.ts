import {
  ADMIT_BATCH,
  ADMITS_KEPT_MS,
  addLife,
  CLEANUP_BATCH,
  countsVoid,
  curveWaitMs,
  type EnterOptions,
  type EnterResult,
  ETA_CURVE_MS,
  blendPrior,
  ETA_SAMPLE,
  SOLD_OUT_POLL_MS,
  pollCeiling,
  type EtaCurve,
  etaCurve,
  type GateState,
  INVENTORY_CLAIM_MS,
  INVENTORY_MAX_AGE_MS,
  INVENTORY_MIN_GAP_MS,
  LINE_PRUNE_MS,
  type Inventory,
  type LineState,
  lineState,
  noticeLate,
  etaLearnt,
  pollAfter,
  type QueueSettings,
  type QueueSettingsPatch,
  type QueueStats,
  type QueueStore,
  randomFraction,
  RATE_WINDOW_MS,
  seatBudget,
  seatsState,
  type TicketStatus,
  type TokenState,
  type StoreNow,
} from './queue.store.ts';

interface Line {
  seq: number;
  /** The line (pre-queued and WAITING tokens): score (arrival sequence or pre-queue draw) and last poll time. */
  waiting: Map<string, { score: number; seen: number }>;
  /**
   * Places in line (1 for the head) while `waiting` keeps its order: dropped on a removal, an
   * admission or an entry that is not the new last; `last`: the score of the last. A poll read its
   * place by counting every token ahead of it, which was most of a big line's polls.
   */
  ranks: { of: Map<string, number>; last: number } | null;
  /** No waiting token was seen before this (a lower bound): until `now − idleTimeout` passes it, none can be idle, and settle looks at none. */
  seenFloor: number;
  /** ACTIVE tokens -> activeUntil and admission time. */
  active: Map<string, { until: number; admittedAt: number }>;
  owners: Map<string, { userId: number; enteredAt: number }>;
  users: Map<number, string>;
  config: QueueSettingsPatch;
  admits: number[];
  admittedTotal: number;
  droppedIdle: number;
  /** tokenId -> earliest next status poll. */
  polls: Map<string, number>;
  drawBase: number;
  /** tokenId -> when a waiting token was told to poll next; for an ACTIVE one, when it is expected to notice, or −(when it did). */
  slots: Map<string, number>;
  /** tokenId -> when a ticket last told SOLD_OUT was told to look again (see BACK in queue.store.ts). */
  back: Map<string, number>;
  /** The ETA's life table and departure count, and its cached curve (see etaCurve). */
  eta: { life: number[]; lifeAt: number | null; departed: number; late: number; curve: EtaCurve | null; prior: { ttlMs: number; s: number[] } | null };
  state: LineState | null;
  reopenedAt: number;
  /** When a lowered idle timeout's grace starts (see pollCeiling): no idle drop until a new timeout after it. */
  idleGraceAt: number;
  inventory: (Inventory & { at: number }) | null;
  /** Admissions the seats last counted leave room for (see seatBudget); null: no limit. */
  budget: number | null;
  /** The change number of the read that last counted the seats (counted reads are ordered among themselves). */
  budgetSeen: number;
  /** Set by an enter that asked for it: while the seats are unread, every settle admits nobody. */
  unreadBlocks: boolean;
  dirty: number;
  seenDirty: number;
  claimed: number;
  claimUntil: number;
  /** Since when the line has been quiet (see LINE_PRUNE_MS); null when it is not. */
  quietSince: number | null;
}

/**
 * The embedded queue store for one process (REDIS_URL unset). Each method runs to completion
 * without awaiting, so it is as atomic as the Redis scripts it mirrors.
 */
export class MemoryQueueStore implements QueueStore {
  private readonly lines = new Map<number, Line>();
  /** The lines `tick` settles (see LINE_PRUNE_MS). */
  private readonly ticking = new Set<number>();
  /** The deployment's think-time prior per TTL (ms): a survival curve blended from its lines' (see ETA_PRIOR_EVERY_MS). */
  private readonly priors = new Map<number, { s: number[]; at: number }>();
  private last: Map<number, QueueStats> | null = null;

  /** `etaPrior: false`: no line offers or takes the deployment's think-time prior (QUEUE_ETA_PRIOR=off). */
  constructor(private readonly opts: { etaPrior?: boolean } = {}) {}

  private line(concertId: number): Line {
    let l = this.lines.get(concertId);
    if (!l) {
      l = {
        seq: 0,
        waiting: new Map(),
        ranks: null,
        seenFloor: -Infinity,
        active: new Map(),
        owners: new Map(),
        users: new Map(),
        config: {},
        admits: [],
        admittedTotal: 0,
        droppedIdle: 0,
        polls: new Map(),
        drawBase: 0,
        slots: new Map(),
        back: new Map(),
        eta: { life: [], lifeAt: null, departed: 0, late: 0, curve: null, prior: null },
        state: null,
        reopenedAt: 0,
        idleGraceAt: 0,
        inventory: null,
        budget: null,
        budgetSeen: 0,
        unreadBlocks: false,
        dirty: 0,
        seenDirty: 0,
        claimed: 0,
        claimUntil: 0,
        quietSince: null,
      };
      this.lines.set(concertId, l);
    }
    return l;
  }

  private settings(l: Line, defaults: QueueSettings): QueueSettings {
    return { ...defaults, ...l.config };
  }

  /** Drops the token; an ACTIVE one's departure (or lapse, at its activeUntil) goes into the ETA's life table. */
  private drop(l: Line, tokenId: string, now: number, ttlMs: number): boolean {
    const a = l.active.get(tokenId);
    const wasActive = l.active.delete(tokenId);
    const wasWaiting = l.waiting.delete(tokenId);
    if (wasWaiting) l.ranks = null;
    const live = wasWaiting || wasActive;
    if (a) {
      const notice = l.slots.get(tokenId);
      if (notice !== undefined && notice < 0) {
        const e = l.eta;
        e.life = a.until <= now ? addLife(e.life, e.lifeAt, now, a.until + notice, ttlMs, false) : addLife(e.life, e.lifeAt, now, now + notice, ttlMs, true);
        e.lifeAt = now;
      }
      l.eta.departed++;
    }
    l.slots.delete(tokenId);
    l.back.delete(tokenId);
    l.polls.delete(tokenId);
    const owner = l.owners.get(tokenId);
    if (owner) {
      if (l.users.get(owner.userId) === tokenId) l.users.delete(owner.userId);
      l.owners.delete(tokenId);
    }
    return live;
  }

  private settle(l: Line, now: number, defaults: QueueSettings): { state: LineState; s: QueueSettings } {
    const s = this.settings(l, defaults);
    const state = lineState(s, !l.inventory && l.unreadBlocks ? 'ALL_HELD' : seatsState(l.inventory, now, l.dirty !== l.seenDirty), now);
    if (l.state !== state) {
      if (l.state === 'SOLD_OUT') l.reopenedAt = now;
      l.state = state;
    }
    let n = 0;
    for (const [t, a] of l.active) {
      if (a.until <= now && n++ < CLEANUP_BATCH) this.drop(l, t, now, s.activeTtlSeconds * 1000);
    }
    const cutoff = now - s.idleTimeoutSeconds * 1000;
    if (state !== 'SOLD_OUT' && Math.max(l.reopenedAt + SOLD_OUT_POLL_MS, l.idleGraceAt) <= cutoff && l.seenFloor <= cutoff) {
      n = 0;
      let floor = Infinity;
      for (const [t, w] of l.waiting) {
        if (w.seen <= cutoff && n++ < CLEANUP_BATCH) {
          this.drop(l, t, now, s.activeTtlSeconds * 1000);
          l.droppedIdle++;
        } else floor = Math.min(floor, w.seen);
      }
      l.seenFloor = floor;
    }
    if (state === 'OPEN') {
      // The operator's choice lives in the line's own settings, as in the Redis adapter's hash (no process default).
      const budget = l.config.admitBySeats === true ? l.budget : null;
      let free = Math.min(s.maxActive - l.active.size, ADMIT_BATCH, budget ?? Infinity);
      for (const t of free > 0 ? this.ordered(l) : []) {
        if (free-- <= 0) break;
        l.waiting.delete(t);
        l.ranks = null;
        // A ticket last told SOLD_OUT starts its turn when it was told to look again (BACK).
        const from = Math.max(now, l.back.get(t) ?? 0);
        l.back.delete(t);
        l.active.set(t, { until: from + s.activeTtlSeconds * 1000, admittedAt: now });
        // Expected to notice when it was told to poll next (at once if it never polled).
        l.slots.set(t, Math.max(from, l.slots.get(t) ?? now));
        l.admits.push(now);
        l.admittedTotal++;
        if (budget !== null) l.budget!--;
      }
    }
    const keepFrom = now - ADMITS_KEPT_MS;
    while (l.admits.length && l.admits[0]! <= keepFrom) l.admits.shift();
    return { state, s };
  }

  /** The line in order (a sorted set's order: score, then token id). */
  private ordered(l: Line): string[] {
    return [...l.waiting.entries()].sort(([a, x], [b, y]) => x.score - y.score || (a < b ? -1 : a > b ? 1 : 0)).map(([t]) => t);
  }

  private place(l: Line, tokenId: string): number {
    if (!l.ranks) {
      const order = this.ordered(l);
      l.ranks = { of: new Map(order.map((t, i) => [t, i + 1])), last: order.length > 0 ? l.waiting.get(order.at(-1)!)!.score : -Infinity };
    }
    return l.ranks.of.get(tokenId)!;
  }

  private eta(l: Line, position: number, s: QueueSettings, now: number): number {
    const e = l.eta;
    const ttlMs = s.activeTtlSeconds * 1000;
    // The ACTIVE tokens in the sorted set's order (activeUntil, then id), sorted only when needed.
    let order: Array<[string, { until: number }]> | null = null;
    const sorted = () => (order ??= [...l.active.entries()].sort(([a, x], [b, y]) => x.until - y.until || (a < b ? -1 : a > b ? 1 : 0)));
    const c = e.curve;
    if (c === null || now - c.at >= ETA_CURVE_MS || now < c.at || c.maxActive !== s.maxActive || c.ttlMs !== ttlMs) {
      const n = l.active.size;
      const take = Math.min(n, ETA_SAMPLE);
      const slots = [];
      for (let i = 0; i < take; i++) {
        const [t, a] = sorted()[n > ETA_SAMPLE ? Math.floor((i * n) / ETA_SAMPLE) : i]!;
        slots.push({ until: a.until, notice: l.slots.get(t) ?? now });
      }
      e.curve = etaCurve({ now, dep: e.departed, maxActive: s.maxActive, ttlMs, slots, weight: n > ETA_SAMPLE ? n / ETA_SAMPLE : 1, active: n, life: e.life, lifeAt: e.lifeAt, late: e.late, prior: e.prior?.ttlMs === ttlMs ? e.prior.s : null });
    }
    // Over maxActive (an operator lowered it), the first departures admit nobody: place p waits for the (p + over)-th.
    const k = position + Math.max(0, l.active.size - s.maxActive);
    const pth = k <= l.active.size ? sorted()[k - 1]![1].until : null;
    return curveWaitMs(e.curve!, position, e.departed, now, pth);
  }

  private state(l: Line, tokenId: string, now: number, line: { state: LineState; s: QueueSettings }, jitter = Math.random()): TokenState {
    const { state, s } = line;
    let status: TicketStatus = 'EXPIRED';
    let position: number | null = null;
    let etaMs: number | null = null;
    const a = l.active.get(tokenId);
    if (a) {
      status = 'ACTIVE';
      // The holder notices the admission now (see etaCurve), this late after the poll it was told to make.
      const expected = l.slots.get(tokenId) ?? now;
      if (expected >= 0) {
        l.slots.set(tokenId, -now);
        l.eta.late = noticeLate(l.eta.late, now - expected);
      }
    }
    else if (l.waiting.has(tokenId)) {
      if (state === 'SOLD_OUT') status = 'SOLD_OUT';
      else if (state === 'PRE_QUEUE') {
        status = 'PRE_QUEUE';
        etaMs = s.opensAt! - now;
      } else {
        status = 'WAITING';
        position = this.place(l, tokenId);
        if (state === 'OPEN') etaMs = this.eta(l, position, s, now);
      }
    }
    const st = { status, position, activeUntil: a ? a.until : null, etaMs, opensAt: s.opensAt };
    const pollAfterMs = pollAfter(st, s.idleTimeoutSeconds, jitter, now, etaLearnt(l.eta.curve?.dep ?? 0, s.maxActive));
    if (status === 'WAITING' || status === 'PRE_QUEUE') {
      l.slots.set(tokenId, now + pollAfterMs);
      l.back.delete(tokenId);
    } else if (status === 'SOLD_OUT') {
      // Told to look again in a minute: if seats come back meanwhile, its turn starts then (BACK).
      l.back.set(tokenId, now + pollAfterMs);
    }
    return { ...st, pollAfterMs, paused: s.paused };
  }

  async enter(concertId: number, userId: number, newTokenId: string, at: StoreNow, defaults: QueueSettings, opts: EnterOptions = {}): Promise<EnterResult> {
    const now = at ?? Date.now();
    const l = this.line(concertId);
    this.ticking.add(concertId);
    if (opts.unreadSeatsBlock === true && !l.inventory) l.unreadBlocks = true;
    let line = this.settle(l, now, defaults);
    let tokenId = l.users.get(userId);
    let created = false;
    if (tokenId === undefined || !(l.waiting.has(tokenId) || l.active.has(tokenId))) {
      tokenId = newTokenId;
      created = true;
      const opensAt = line.s.opensAt;
      const score = opensAt !== null && now < opensAt ? l.drawBase + randomFraction() : ++l.seq;
      l.waiting.set(tokenId, { score, seen: now });
      l.seenFloor = Math.min(l.seenFloor, now);
      // The new last (an entry after the opening): its place is the line's length; else places are counted again.
      if (l.ranks && score > l.ranks.last) {
        l.ranks.of.set(tokenId, l.waiting.size);
        l.ranks.last = score;
      } else l.ranks = null;
      l.owners.set(tokenId, { userId, enteredAt: now });
      l.users.set(userId, tokenId);
      line = this.settle(l, now, defaults);
    } else {
      const w = l.waiting.get(tokenId);
      if (w) seen(l, w, now);
    }
    const seatsRead = l.inventory !== null && !countsVoid(l.inventory, now);
    return { ...this.state(l, tokenId, now, line), tokenId, enteredAt: l.owners.get(tokenId)!.enteredAt, created, seatsRead };
  }

  async status(concertId: number, tokenId: string, at: StoreNow, defaults: QueueSettings, limitPolls: boolean): Promise<TokenState | { rateLimited: number }> {
    const now = at ?? Date.now();
    const l = this.line(concertId);
    const line = this.settle(l, now, defaults);
    const earliest = l.polls.get(tokenId) ?? 0;
    if (limitPolls && now < earliest) return { rateLimited: earliest - now };
    const w = l.waiting.get(tokenId);
    if (w) seen(l, w, now);
    const state = this.state(l, tokenId, now, line);
    if (state.status !== 'EXPIRED') l.polls.set(tokenId, now + Math.floor(state.pollAfterMs / 2));
    return state;
  }

  async check(concertId: number, tokenId: string, at: StoreNow): Promise<{ state: GateState }> {
    const now = at ?? Date.now();
    const l = this.lines.get(concertId);
    const a = l?.active.get(tokenId);
    if (a !== undefined && a.until > now) return { state: 'ACTIVE' };
    if (l?.waiting.has(tokenId)) return { state: 'WAITING' };
    return { state: 'EXPIRED' };
  }

  async leave(concertId: number, tokenId: string, at: StoreNow, defaults: QueueSettings): Promise<boolean> {
    const now = at ?? Date.now();
    const l = this.line(concertId);
    const live = this.drop(l, tokenId, now, this.settings(l, defaults).activeTtlSeconds * 1000);
    this.settle(l, now, defaults);
    return live;
  }

  async tick(at: StoreNow, defaults: QueueSettings): Promise<number[]> {
    const now = at ?? Date.now();
    const due: number[] = [];
    const stats = new Map<number, QueueStats>();
    // Every line takes the prior as it was when the tick began (the Redis store reads it once per tick).
    const priors = new Map(this.priors);
    // What the lines offer, by TTL: blended after them all, in ascending concert id (as the Redis store does).
    const offers = new Map<number, Array<[number, number[]]>>();
    for (const concertId of this.ticking) {
      const l = this.line(concertId);
      const line = this.statsNow(concertId, now, defaults);
      this.sharePrior(l, concertId, line, now, priors, offers);
      if (this.quiet(l)) {
        l.quietSince ??= now;
        if (now - l.quietSince >= LINE_PRUNE_MS) {
          this.ticking.delete(concertId);
          continue;
        }
      } else {
        l.quietSince = null;
      }
      stats.set(concertId, line);
      if (l.claimUntil > now) continue;
      const inv = l.inventory;
      const age = inv ? now - inv.at : Infinity;
      const lapsed = inv?.nextLapse != null && now >= inv.nextLapse;
      if (age >= INVENTORY_MAX_AGE_MS || (age >= INVENTORY_MIN_GAP_MS && (l.dirty !== l.seenDirty || lapsed || countsVoid(inv, now)))) {
        l.claimUntil = now + INVENTORY_CLAIM_MS;
        l.claimed = l.dirty;
        due.push(concertId);
      }
    }
    for (const [ttlMs, list] of offers) {
      list.sort((a, b) => a[0] - b[0]);
      this.priors.set(ttlMs, blendPrior(this.priors.get(ttlMs) ?? null, list.map(([, o]) => o), now));
    }
    this.last = stats;
    return due;
  }

  /** Mirrors quiet() in the Redis adapter's Lua. */
  private quiet(l: Line): boolean {
    if (l.active.size > 0 || l.dirty !== l.seenDirty) return false;
    return l.waiting.size === 0 || l.state === 'SOLD_OUT';
  }

  lastTick() {
    return this.last;
  }

  async setInventory(concertId: number, inventory: Inventory, at: StoreNow, defaults: QueueSettings, asOf?: number): Promise<void> {
    const now = at ?? Date.now();
    const l = this.line(concertId);
    const seen = asOf ?? l.claimed;
    if (asOf === undefined) l.claimUntil = 0;
    if (seen >= l.seenDirty) {
      l.inventory = { ...inventory, at: now };
      l.seenDirty = seen;
    }
    // A read that did not count neither sets the room nor makes a counted one older than it look stale.
    if (inventory.seats !== undefined && seen >= l.budgetSeen) {
      l.budgetSeen = seen;
      let live = 0;
      for (const a of l.active.values()) if (a.until > now) live++;
      let holding = 0;
      for (const userId of inventory.holders ?? []) {
        const a = l.active.get(l.users.get(userId) ?? '');
        if (a && a.until > now) holding++;
      }
      l.budget = seatBudget(inventory, live, holding);
    }
    this.settle(l, now, defaults);
  }

  async seatsChanged(concertId: number): Promise<number> {
    this.ticking.add(concertId);
    return ++this.line(concertId).dirty;
  }

  async stats(concertId: number, at: StoreNow, defaults: QueueSettings): Promise<QueueStats> {
    return this.statsNow(concertId, at ?? Date.now(), defaults);
  }

  /**
   * The deployment's think-time prior (see ETA_PRIOR_EVERY_MS in queue.store.ts): an open line
   * whose curve was just drawn from a table remembering ETA_PRIOR_DEATHS departures offers its
   * survival (blended after the tick's lines, see tick), and takes the prior of its TTL as the
   * tick found it.
   */
  private sharePrior(
    l: Line,
    concertId: number,
    line: QueueStats,
    now: number,
    priors: Map<number, { s: number[]; at: number }>,
    offers: Map<number, Array<[number, number[]]>>,
  ): void {
    if (this.opts.etaPrior === false) return;
    const ttlMs = line.activeTtlSeconds * 1000;
    const e = l.eta;
    const offer = e.curve?.survival;
    if (line.state === 'OPEN' && offer && e.curve!.ttlMs === ttlMs && now - e.curve!.at < 2 * ETA_CURVE_MS) {
      const list = offers.get(ttlMs) ?? [];
      list.push([concertId, offer]);
      offers.set(ttlMs, list);
    }
    const p = priors.get(ttlMs);
    e.prior = p ? { ttlMs, s: p.s } : null;
  }

  private statsNow(concertId: number, now: number, defaults: QueueSettings): QueueStats {
    const l = this.line(concertId);
    const { state, s } = this.settle(l, now, defaults);
    const size = l.waiting.size;
    const pre = s.opensAt !== null && now < s.opensAt;
    // Sold out, every ticket in line reads SOLD_OUT: none is waiting (their order is kept for a reopening).
    const parked = state === 'SOLD_OUT';
    return {
      ...s,
      state,
      waiting: pre || parked ? 0 : size,
      preQueued: pre && !parked ? size : 0,
      active: l.active.size,
      admittedTotal: l.admittedTotal,
      admittedLastMinute: l.admits.filter((t) => t > now - RATE_WINDOW_MS).length,
      droppedIdleTotal: l.droppedIdle,
      etaBackMs: state === 'OPEN' && size > 0 ? this.eta(l, size, s, now) : null,
      seatsRead: l.inventory !== null && !countsVoid(l.inventory, now),
      admitBySeats: l.config.admitBySeats === true,
    };
  }

  async configure(concertId: number, patch: QueueSettingsPatch, at: StoreNow, defaults: QueueSettings): Promise<QueueStats> {
    const now = at ?? Date.now();
    const l = this.line(concertId);
    this.ticking.add(concertId);
    if (patch.opensAt != null && patch.opensAt > now) {
      const old = this.settings(l, defaults).opensAt;
      if (!(old !== null && old > now)) {
        l.seq += 2;
        l.drawBase = l.seq - 1;
      }
    }
    const idle = this.settings(l, defaults).idleTimeoutSeconds;
    if (patch.idleTimeoutSeconds !== undefined && patch.idleTimeoutSeconds < idle) {
      l.idleGraceAt = Math.max(l.idleGraceAt, now + pollCeiling(idle));
    }
    // Turned to admitting by seats: no room until a read counts it (a room counted before is stale).
    if (patch.admitBySeats === true && l.config.admitBySeats !== true) l.budget = 0;
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) (l.config as Record<string, unknown>)[k] = v;
    return this.statsNow(concertId, now, defaults);
  }

  async admissions(concertId: number, at: StoreNow, bucketMs: number, buckets: number): Promise<number[]> {
    const now = at ?? Date.now();
    const admits = this.lines.get(concertId)?.admits ?? [];
    return Array.from({ length: buckets }, (_, i) => {
      const from = now - (buckets - i) * bucketMs;
      return admits.filter((t) => t > from && t <= from + bucketMs).length;
    });
  }

  async concerts(): Promise<number[]> {
    return [...this.ticking];
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}

/** A waiting token polled (or entered again) now; the line's seenFloor stays a lower bound if a test clock goes back. */
function seen(l: Line, w: { seen: number }, now: number): void {
  w.seen = now;
  if (now < l.seenFloor) l.seenFloor = now;
}
