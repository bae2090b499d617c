import { AppError, isAppError } from '../errors.ts';
import { type Clock, storeNow } from '../clock.ts';
import type { Config } from '../config.ts';
import type { QueueConfigureInput } from '../schemas.ts';
import type { ActivePass, PaidToken, QueueGate, SpentTokens } from './queue.gate.ts';
import { type Inventory, type LineState, type QueueSettings, type QueueSettingsPatch, type QueueStats, type QueueStore, seatCountCap, type StoreNow, type TicketStatus, type TokenState } from './queue.store.ts';
import { newTokenId, signToken, type TokenClaims, TokenVerifier } from './queue.tokens.ts';

export interface QueueTicket {
  token: string;
  concertId: number;
  status: TicketStatus;
  position: number | null;
  aheadCount: number;
  etaSeconds: number | null;
  /** An operator has paused admission: the place is kept, nobody is let in until it resumes (etaSeconds is then null). */
  paused: boolean;
  enteredAt: Date;
  opensAt: Date | null;
  activeUntil: Date | null;
  pollAfterMs: number;
}

export interface QueueStatsView {
  concertId: number;
  state: LineState;
  opensAt: Date | null;
  waiting: number;
  preQueued: number;
  active: number;
  maxActive: number;
  activeTtlSeconds: number;
  idleTimeoutSeconds: number;
  paused: boolean;
  /** Admission waits for a seat left for each fan, not only for a free slot (admin.queue.configure). */
  admitBySeats: boolean;
  admittedTotal: number;
  admittedLastMinute: number;
  droppedIdleTotal: number;
}

/** The line as an operator's live view needs it. */
export interface QueueWatchView extends QueueStatsView {
  /** The expected wait of whoever is last in line; null when nobody waits or nobody is being admitted. */
  etaBackSeconds: number | null;
  /** Admissions per minute in each of the last ADMISSION_BUCKETS buckets of ADMISSION_BUCKET_MS, oldest first. */
  admissionsPerMinute: number[];
}

export const ADMISSION_BUCKET_MS = 10_000;
/** How old the last tick's numbers may be for metrics to use them (the ticker runs every 250 ms). */
export const STATS_FRESH_MS = 2_000;
export const ADMISSION_BUCKETS = 30;

export interface QueueDeps {
  store: QueueStore;
  clock: Clock;
  config: Pick<Config, 'queue' | 'queueTokenSecret' | 'rateLimits'>;
  /** Throws CONCERT_NOT_FOUND for an unknown concert. */
  assertConcert: (concertId: number) => Promise<void>;
  /**
   * The concert's bookable seats as the database has them now (by its clock, unless a test
   * clock's time is given); with the AVAILABLE seats counted up to `seatCap` and the users holding
   * seats, which only a line admitting by seats needs (0: not counted).
   */
  inventory: (concertId: number, now?: Date, seatCap?: number) => Promise<Inventory>;
}

/** The waiting room: one line per concert, FIFO, at most maxActive ACTIVE at once. */
export class QueueService implements SpentTokens {
  private readonly defaults: QueueSettings;
  /** Reads of the seats after a change, per concert, in flight in this process (see seatsChanged). */
  private readonly reads = new Map<number, { asOf: number; running: Promise<void> | null; next: Promise<void> | null }>();
  /** Per concert, this process's first read of its seats (see seatsReadOnce). */
  private readonly firstReads = new Map<number, Promise<boolean>>();
  /** When this process's last tick returned, by its clock (how fresh `store.lastTick()` is). */
  private lastTickAt: number | null = null;
  /** Lines this process turned to admitting by seats since its last tick (which then knows), with their maxActive. */
  private readonly turnedBySeats = new Map<number, number>();
  private readonly tokens: TokenVerifier;

  constructor(private readonly deps: QueueDeps) {
    this.defaults = { ...deps.config.queue, paused: false, opensAt: null };
    this.tokens = new TokenVerifier(deps.config.queueTokenSecret);
  }

  async enter(userId: number, concertId: number): Promise<QueueTicket> {
    await this.deps.assertConcert(concertId);
    const read = await this.seatsReadOnce(concertId);
    const enter = () => this.call(() => this.deps.store.enter(concertId, userId, newTokenId(), this.now(), this.defaults, { unreadSeatsBlock: true }));
    let r = await enter();
    if (!r.seatsRead && read) {
      // The line lost its seats since this process read them (Redis lost its data): it admitted
      // nobody on no counts; read them now, and the same place comes back as they allow.
      this.firstReads.delete(concertId);
      await this.seatsReadOnce(concertId);
      r = await enter();
    }
    return this.ticket({ concertId, userId, tokenId: r.tokenId, enteredAt: r.enteredAt }, r);
  }

  async status(userId: number, token: string | undefined): Promise<QueueTicket> {
    const claims = this.verify(userId, token);
    const now = this.now();
    const limit = this.deps.config.rateLimits.enabled;
    const state = await this.call(() => this.deps.store.status(claims.concertId, claims.tokenId, now, this.defaults, limit));
    if ('rateLimited' in state) {
      throw new AppError('RATE_LIMITED', `Polling faster than pollAfterMs asks; retry in ${state.rateLimited} ms`, {
        retryAfterMs: state.rateLimited,
      });
    }
    return this.ticket(claims, state, token);
  }

  async leave(userId: number, token: string | undefined): Promise<{ left: true }> {
    const claims = this.verify(userId, token);
    await this.call(() => this.deps.store.leave(claims.concertId, claims.tokenId, this.now(), this.defaults));
    return { left: true };
  }

  /** The booking gate: the token must be genuine, the caller's, for this concert, and ACTIVE now. */
  gate(userId: number, token: string | undefined): QueueGate {
    return {
      admit: async (concertId: number, opts: { seatMapOf?: number } = {}) => {
        // No token is TOKEN_INVALID (401), like a malformed one; a genuine one still waiting is QUEUE_NOT_ACTIVE.
        const claims = this.verify(userId, token);
        if (claims.concertId !== concertId) {
          throw new AppError('TOKEN_WRONG_CONCERT', `This queue token is for concert ${claims.concertId}, not ${concertId}`);
        }
        const { state, seatMapVersion } = await this.call(() => this.deps.store.check(concertId, claims.tokenId, this.now(), opts.seatMapOf));
        if (state === 'WAITING') throw await this.notActive(concertId);
        if (state === 'EXPIRED') throw new AppError('TOKEN_EXPIRED', 'This queue token has expired; enter the waiting room again');
        // The one place a pass is made (its brand cannot be written anywhere else).
        const pass = { userId, concertId, tokenId: claims.tokenId, ...(seatMapVersion === undefined ? {} : { seatMapVersion }) };
        return Object.freeze(pass) as ActivePass;
      },
    };
  }

  async spend(token: PaidToken): Promise<void> {
    await this.deps.store.leave(token.concertId, token.tokenId, this.now(), this.defaults);
  }

  async stats(concertId: number): Promise<QueueStatsView> {
    await this.deps.assertConcert(concertId);
    return statsView(concertId, await this.readStats(concertId, () => this.deps.store.stats(concertId, this.now(), this.defaults)));
  }

  async configure(input: QueueConfigureInput): Promise<QueueStatsView> {
    const { concertId, opensAt, ...rest } = input;
    await this.deps.assertConcert(concertId);
    const patch: QueueSettingsPatch = { ...rest, ...(opensAt !== undefined ? { opensAt: opensAt === null ? null : opensAt.getTime() } : {}) };
    const stats = await this.readStats(concertId, () => this.deps.store.configure(concertId, patch, this.now(), this.defaults));
    if (stats.admitBySeats) {
      // Counted now, before the operator is answered: reads that do not count (processes that
      // have not ticked since) leave the room this one counted as it is (see Inventory.seats).
      this.turnedBySeats.set(concertId, stats.maxActive);
      await this.readSeatsAfterChange(concertId);
      // The line as that read left it (it may have admitted), as a configure of another setting answers.
      return statsView(concertId, await this.call(() => this.deps.store.stats(concertId, this.now(), this.defaults)));
    }
    return statsView(concertId, stats);
  }

  /**
   * How far this process's reads of a concert's seats count them (seatCountCap of its maxActive):
   * when its line admits by seats, as the last tick here saw it, or when that is not known here;
   * 0 (not counted) when it admits by slots (the default), which reads one seat per show, as
   * before (the count cost the hold's read after its commit a bounded scan it did not need).
   */
  private seatCap(concertId: number): number {
    const turned = this.turnedBySeats.get(concertId);
    if (turned !== undefined) return seatCountCap(turned);
    const line = this.deps.store.lastTick()?.get(concertId);
    return line && !line.admitBySeats ? 0 : seatCountCap(line?.maxActive);
  }

  /** The line for an operator's live view: its stats, the ETA at the back and recent admissions per minute. */
  async watch(concertId: number): Promise<QueueWatchView> {
    await this.deps.assertConcert(concertId);
    const now = this.now();
    const [stats, history] = await Promise.all([
      this.readStats(concertId, () => this.deps.store.stats(concertId, now, this.defaults)),
      this.call(() => this.deps.store.admissions(concertId, now, ADMISSION_BUCKET_MS, ADMISSION_BUCKETS)),
    ]);
    return {
      ...statsView(concertId, stats),
      etaBackSeconds: seconds(stats.etaBackMs),
      admissionsPerMinute: history.map((n) => (n * 60_000) / ADMISSION_BUCKET_MS),
    };
  }

  /**
   * Every ticked line's numbers, for metrics: as this process's last tick settled them (a scrape
   * settles nothing), or read afresh when no tick ran here lately (no ticker in this process).
   */
  async allStats(): Promise<QueueStatsView[]> {
    const last = this.deps.store.lastTick();
    if (last && this.lastTickAt !== null && this.deps.clock.now().getTime() - this.lastTickAt <= STATS_FRESH_MS) {
      return [...last].map(([concertId, s]) => statsView(concertId, s));
    }
    const now = this.now();
    const ids = await this.deps.store.concerts();
    return Promise.all(ids.map(async (concertId) => statsView(concertId, await this.deps.store.stats(concertId, now, this.defaults))));
  }

  /**
   * Settles every line: lapsed ACTIVE tokens out, idle ones dropped, the head admitted; then
   * reads the seats of the lines whose inventory is due (each claimed by one process at a time).
   */
  async tick(): Promise<void> {
    const now = this.now();
    const turned = [...this.turnedBySeats.keys()];
    const due = await this.deps.store.tick(now, this.defaults);
    this.lastTickAt = this.deps.clock.now().getTime();
    // The tick's numbers were settled after those configure calls: they know.
    for (const concertId of turned) this.turnedBySeats.delete(concertId);
    const read = await Promise.allSettled(
      due.map(async (concertId) => {
        const inventory = await this.deps.inventory(concertId, now === undefined ? undefined : new Date(now), this.seatCap(concertId));
        await this.deps.store.setInventory(concertId, inventory, now, this.defaults);
      }),
    );
    const failed = read.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * After a commit that changed a concert's seats, before the writer answers: the line reads them
   * at once. Otherwise anything that settles the line before the next tick's read (a payment
   * giving up its token right after its hold, say) admits against the counts from before the
   * change: a hold of the last seats still read as AVAILABLE. Writers of one concert in this
   * process share reads: one runs at a time, and whoever marks a change while it runs waits for
   * the next, which starts after the mark (so at most two reads per concert are ever in hand).
   */
  async seatsChanged(concertId: number): Promise<void> {
    await this.readSeatsAfterChange(concertId);
  }

  /**
   * A line whose seats were never read admits (an inventory never read never blocks), and the
   * ticker reads them only once an entrant has registered the line: the first fans of a concert
   * with nothing on sale yet were let in, ACTIVE with nothing to hold, and its stats said OPEN.
   * So each process reads a concert's seats before the first enter or stats it serves for it (a
   * failed read is tried again by the next call).
   */
  private async seatsReadOnce(concertId: number): Promise<boolean> {
    let first = this.firstReads.get(concertId);
    if (!first) this.firstReads.set(concertId, (first = this.readSeatsAfterChange(concertId)));
    const read = await first;
    if (!read) this.firstReads.delete(concertId);
    return read;
  }

  /**
   * QUEUE_NOT_ACTIVE for a live token that is not ACTIVE, in words that fit the line's phase (a
   * ticket that turned SOLD_OUT is not "still waiting"). Only refusals read it: one settle of the
   * line, as a poll costs (the last tick's numbers can be a tick behind the ticket just read).
   */
  private async notActive(concertId: number): Promise<AppError> {
    const stats = await this.call(() => this.deps.store.stats(concertId, this.now(), this.defaults)).catch(() => undefined);
    const state = stats?.state;
    const opensAt = stats?.opensAt == null ? undefined : new Date(stats.opensAt).toISOString();
    const message =
      state === 'SOLD_OUT'
        ? 'This concert is sold out: there is nothing left to hold'
        : state === 'PRE_QUEUE'
          ? `The line has not opened yet${opensAt ? ` (it opens at ${opensAt})` : ''}; your place is drawn at the opening`
          : state === 'PAUSED'
            ? 'You are still waiting in line; the sale is paused'
            : state === 'ALL_HELD'
              ? 'You are still waiting in line; no seat is on sale right now (all are held, or booking has not opened)'
              : 'You are still waiting in line';
    return new AppError('QUEUE_NOT_ACTIVE', message, state ? { lineState: state } : undefined);
  }

  /**
   * The line's numbers from `call`, after this process's first read of its seats. A line that lost
   * them since (Redis lost its data, and the ticker's registry with it) said OPEN on no counts for
   * as long as nobody entered: its seats are read again, as in `enter`, and its numbers asked again.
   */
  private async readStats(concertId: number, call: () => Promise<QueueStats>): Promise<QueueStats> {
    const read = await this.seatsReadOnce(concertId);
    const stats = await this.call(call);
    if (stats.seatsRead || !read) return stats;
    this.firstReads.delete(concertId);
    await this.seatsReadOnce(concertId);
    return this.call(() => this.deps.store.stats(concertId, this.now(), this.defaults));
  }

  /** seatsChanged, saying whether the seats were read and recorded (false: best effort failed). */
  private async readSeatsAfterChange(concertId: number): Promise<boolean> {
    try {
      // Marked first: if this read is lost, the next tick reads the seats again.
      const asOf = await this.deps.store.seatsChanged(concertId);
      const r = this.reads.get(concertId) ?? { asOf: 0, running: null, next: null };
      this.reads.set(concertId, r);
      r.asOf = Math.max(r.asOf, asOf);
      if (!r.running) {
        r.running = this.readSeats(concertId, r);
        await r.running;
      } else {
        // After the running read, whether it succeeded or not.
        r.next ??= r.running.catch(() => {}).then(() => {
          r.running = r.next;
          r.next = null;
          return this.readSeats(concertId, r);
        });
        await r.next;
      }
      return true;
    } catch {
      // Best effort: the periodic read catches up within INVENTORY_MAX_AGE_MS.
      return false;
    }
  }

  /** One read of a concert's seats, recorded as of every change this process marked before it started. */
  private async readSeats(concertId: number, r: { asOf: number; running: Promise<void> | null; next: Promise<void> | null }): Promise<void> {
    const asOf = r.asOf;
    try {
      const now = this.now();
      const inventory = await this.deps.inventory(concertId, now === undefined ? undefined : new Date(now), this.seatCap(concertId));
      await this.deps.store.setInventory(concertId, inventory, this.now(), this.defaults, asOf);
    } finally {
      if (!r.next) {
        r.running = null;
        this.reads.delete(concertId);
      }
    }
  }

  async ping(): Promise<boolean> {
    return this.deps.store.ping();
  }

  async close(): Promise<void> {
    await this.deps.store.close();
  }

  /** Undefined: the store's own clock decides (Redis's TIME); a FakeClock's time in tests. */
  private now(): StoreNow {
    return storeNow(this.deps.clock);
  }

  private verify(userId: number, token: string | undefined): Readonly<TokenClaims> {
    if (!token) throw new AppError('TOKEN_INVALID', 'Enter the waiting room first (queue.enter) and send its token in the x-queue-token header');
    const claims = this.tokens.verify(token);
    // Someone else's genuine token is as useless to the caller as a forged one.
    if (!claims || claims.userId !== userId) throw new AppError('TOKEN_INVALID', 'This queue token is not valid');
    return claims;
  }

  /** A queue store that is down answers SERVICE_UNAVAILABLE at once rather than an internal error. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isAppError(err)) throw err;
      throw new AppError('SERVICE_UNAVAILABLE', 'The waiting room is unavailable; try again shortly');
    }
  }

  /** `token`: the caller's own, already verified, when there is one (saves signing it again). */
  private ticket(claims: TokenClaims, state: TokenState, token?: string): QueueTicket {
    const waiting = state.status === 'WAITING';
    const position = waiting ? state.position! : null;
    return {
      token: token ?? signToken(this.deps.config.queueTokenSecret, claims),
      concertId: claims.concertId,
      status: state.status,
      position,
      aheadCount: waiting ? position! - 1 : 0,
      etaSeconds: seconds(state.etaMs),
      paused: state.paused,
      enteredAt: new Date(claims.enteredAt),
      opensAt: state.opensAt === null ? null : new Date(state.opensAt),
      activeUntil: state.activeUntil === null ? null : new Date(state.activeUntil),
      pollAfterMs: state.pollAfterMs,
    };
  }
}

/** Seconds to a tenth: a wait of a few seconds near the head is told as precisely as it is known. */
function seconds(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms / 100) / 10;
}

function statsView(concertId: number, s: QueueStats): QueueStatsView {
  return {
    concertId,
    state: s.state,
    opensAt: s.opensAt === null ? null : new Date(s.opensAt),
    waiting: s.waiting,
    preQueued: s.preQueued,
    active: s.active,
    maxActive: s.maxActive,
    activeTtlSeconds: s.activeTtlSeconds,
    idleTimeoutSeconds: s.idleTimeoutSeconds,
    paused: s.paused,
    admitBySeats: s.admitBySeats,
    admittedTotal: s.admittedTotal,
    admittedLastMinute: s.admittedLastMinute,
    droppedIdleTotal: s.droppedIdleTotal,
  };
}
