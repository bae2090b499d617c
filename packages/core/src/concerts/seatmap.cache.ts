import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/client.ts';
import type { Clock } from '../clock.ts';
import { seatMapVersionsKey } from '../redis/keys.ts';
import type { SeatStatus } from '../types.ts';

/**
 * A schedule's seat-map version: a counter every committed change of its seats bumps, within an
 * epoch that names the counters' lifetime. A Redis that lost its data (restarted without
 * persistence) loses the epoch too, so counters starting again from zero can never be mistaken
 * for the ones a cached map was read at. undefined: no epoch yet (or lost) — read through.
 */
export interface SeatMapVersion {
  epoch: string;
  n: number;
  /**
   * The number of changes that could have turned a taken seat free (a release, a refund, a
   * waitlist offer...): every change but a hold's claim and a payment's sale. A map read at or
   * after the current `freed` never calls a free seat taken, however many claims came since.
   */
  freed: number;
}

/** A change of seats: `claim` only takes free seats (a hold) or sells held ones (a payment); `any` may free some. */
export type SeatChange = 'claim' | 'any';

export interface SeatVersionStore {
  get(concertId: number, scheduleId: number): Promise<SeatMapVersion | undefined>;
  bump(concertId: number, scheduleId: number, change: SeatChange): Promise<void>;
  /** Starts an epoch if there is none (after a read found none). */
  init(concertId: number): Promise<void>;
  /**
   * A number that changes whenever the store may have lost or rolled back its counters without a
   * new epoch: every (re)connection to Redis. A Redis restarted from an older snapshot (an RDB
   * save, a restored backup) keeps the epoch and reuses version numbers for another history.
   */
  generation?(): number;
}

/** Epochs unique to this process (a random prefix drawn once) and, within it, to each call. */
const EPOCH_PREFIX = randomBytes(9).toString('base64url');
let epochs = 0;
const newEpoch = () => `${EPOCH_PREFIX}.${(++epochs).toString(36)}`;

/**
 * A bump in one script: the epoch set if the hash has none, the schedule's counter, and its
 * `freed` counter for a change that may free seats. One command where MULTI, HSETNX, HINCRBY
 * and EXEC were four: it rides in the same write as the other commands of its tick (auto-pipelining;
 * a MULTI is always a write of its own), and Redis runs it whole, as it ran the transaction.
 * KEYS: 1 the concert's versions hash. ARGV: 1 an epoch for a hash without one, 2 the schedule, 3 '1' if seats may be freed.
 */
const BUMP = `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':freed', 1) end
return 1
`;
type BumpFn = (key: string, epoch: string, scheduleId: string, freed: string) => Promise<unknown>;

/** A hash per concert (in its Redis slot, where the queue gate's check reads it too): field epoch, and one counter per schedule. */
export class RedisSeatVersionStore implements SeatVersionStore {
  private connections = 0;
  constructor(private readonly redis: RedisClient) {
    if (!('seatMapBump' in redis)) redis.defineCommand('seatMapBump', { numberOfKeys: 1, lua: BUMP });
    // Emitted before any answer from a restarted server is read (the offline queue is off: nothing
    // is sent while disconnected), so none is read under the old generation. (A cluster announces
    // a node it (re)connects to; a failover to a replica it was already connected to is not seen.)
    const connected = () => void this.connections++;
    redis.on('ready', connected);
    redis.on('+node', connected);
  }
  generation(): number {
    return this.connections;
  }
  async get(concertId: number, scheduleId: number): Promise<SeatMapVersion | undefined> {
    const [epoch, n, freed] = await this.redis.hmget(seatMapVersionsKey(concertId), 'epoch', String(scheduleId), `${scheduleId}:freed`);
    return epoch ? { epoch, n: Number(n ?? 0), freed: Number(freed ?? 0) } : undefined;
  }
  async bump(concertId: number, scheduleId: number, change: SeatChange): Promise<void> {
    const bump = (this.redis as unknown as { seatMapBump: BumpFn }).seatMapBump;
    await bump.call(this.redis, seatMapVersionsKey(concertId), newEpoch(), String(scheduleId), change === 'any' ? '1' : '0');
  }
  async init(concertId: number): Promise<void> {
    await this.redis.hsetnx(seatMapVersionsKey(concertId), 'epoch', newEpoch());
  }
}

export class MemorySeatVersionStore implements SeatVersionStore {
  private readonly epoch = newEpoch();
  private readonly versions = new Map<number, { n: number; freed: number }>();
  async get(_concertId: number, scheduleId: number): Promise<SeatMapVersion> {
    return { epoch: this.epoch, ...(this.versions.get(scheduleId) ?? { n: 0, freed: 0 }) };
  }
  async bump(_concertId: number, scheduleId: number, change: SeatChange): Promise<void> {
    const v = this.versions.get(scheduleId) ?? { n: 0, freed: 0 };
    this.versions.set(scheduleId, { n: v.n + 1, freed: v.freed + (change === 'any' ? 1 : 0) });
  }
  async init(): Promise<void> {}
}

/**
 * A hold's claim, for `invalidate` after its commit. `until`: when the hold lapses by this
 * process's clock (the database's held_until can be ahead of it: a process whose clock is behind
 * the database's kept calling a lapsed hold's seat taken, found by a review), taken as the time
 * read before the transaction plus the hold's life in the database (held_until less its statement
 * time), so never later than the database's lapse. `loadMark`: `loadMark(scheduleId)` read before
 * the COMMIT was sent.
 */
export interface ClaimNote {
  seatNumbers: number[];
  until: number;
  loadMark: number;
}

export interface CachedSeat {
  seatNumber: number;
  grade: string;
  price: number;
  status: SeatStatus;
  /** When a HELD seat's hold lapses, by this process's clock (it then reads AVAILABLE without any write). */
  heldUntil: Date | null;
}

/**
 * A seat's status at `now` (ms): a hold that has lapsed reads AVAILABLE, however long before the
 * lapse the map was loaded (a reader may share a load that started before it).
 */
export function seatStatusAt(seat: CachedSeat, now: number): SeatStatus {
  return seat.status === 'HELD' && seat.heldUntil!.getTime() <= now ? 'AVAILABLE' : seat.status;
}

/** When the first hold of the map lapses (Infinity when none is held). */
export function firstLapse(seats: CachedSeat[]): number {
  let first = Infinity;
  for (const s of seats) if (s.status === 'HELD') first = Math.min(first, s.heldUntil!.getTime());
  return first;
}

/** A cached map is also dropped after this long, in case a bump was lost (the version store blinked). */
const MAX_AGE_MS = 10_000;
/** How often a failed bump is tried again. */
const REBUMP_EVERY_MS = 200;

/**
 * Seat maps served from memory. A cached map is used only while its version is the current one
 * (one Redis GET) and no hold in it has lapsed; otherwise one load per schedule and version runs
 * (concurrent readers share it), so a stampede costs one query per invalidation per process.
 * Writers bump the version after their commit and before answering, so a maker never reads
 * their own seat as AVAILABLE again. Statuses are read at the reader's clock (seatStatusAt).
 * A bump that fails leaves its schedule uncached in this process, and is retried, until it
 * lands (or until every map loaded before the change is past MAX_AGE_MS, everywhere).
 */
export class SeatMapCache {
  private readonly entries = new Map<number, { version: SeatMapVersion; seats: CachedSeat[]; staleAt: number }>();
  private readonly loads = new Map<string, Promise<CachedSeat[]>>();
  /**
   * Per schedule, the seats this process's own holds claimed since its cached map was loaded: seat
   * → when the hold lapses, when it was noted, and the claim's number (claimSeq). A hold's check
   * uses a map that has missed claims (need `no-false-taken`), so without these the crowd racing
   * for one seat went on to claim it, one transaction each, after this process had sold it (all
   * 5,997 refusals of the benchmark's 6,000 holds of one seat). A claim is dropped by the first
   * map loaded after it, by a change in this process that may free seats, by a read-through, and
   * after a reconnection to Redis (checkGeneration); it is not noted at all when a load started
   * after its COMMIT was sent; it counts until its hold lapses (`until`, by this process's clock:
   * see ClaimNote) and for at most MAX_AGE_MS.
   */
  private readonly claims = new Map<number, Map<number, { until: number; at: number; seq: number }>>();
  private claimSeq = 0;
  /** Per schedule, the loads of its map started in this process (see loadMark). */
  private readonly loadStarts = new Map<number, number>();
  /** The version store's generation the cached maps and claims were read under (see SeatVersionStore.generation). */
  private generation = 0;
  /** Schedules whose version bump failed: concert, and when. Read through until a bump lands. */
  private readonly unbumped = new Map<number, { concertId: number; since: number; change: SeatChange }>();
  private rebumping: NodeJS.Timeout | undefined;
  /** Seat-map queries run, for metrics and the benchmark's stampede check. */
  loadCount = 0;
  /** Reads that shared a query already in flight. */
  sharedLoads = 0;

  constructor(
    private readonly deps: {
      versions: SeatVersionStore;
      clock: Clock;
      /** Told of every change too (the waiting room reads the concert's inventory again). */
      onChange?: (concertId: number) => Promise<void>;
    },
  ) {}

  /**
   * `known`: the current version when the caller already has it (read along with the gate's
   * check); null when that read found no epoch. `need`: `current` (a map to show) wants every
   * change; `no-false-taken` (a hold's check of taken seats, which only turns away what it calls
   * taken) takes a cached map that has seen every change that may have freed a seat: claims since
   * then only make it call a taken seat free, which the database's conditional UPDATE then judges.
   * In a storm of holds on distinct seats every hold is a new version; without this each one
   * would load the whole map again.
   */
  async get(
    concertId: number,
    scheduleId: number,
    load: () => Promise<CachedSeat[]>,
    known?: SeatMapVersion | null,
    need: 'current' | 'no-false-taken' = 'current',
  ): Promise<CachedSeat[]> {
    this.checkGeneration();
    if (this.unbumped.has(scheduleId)) return this.readThrough(scheduleId, load);
    let version: SeatMapVersion | undefined;
    try {
      version = known === undefined ? await this.deps.versions.get(concertId, scheduleId) : (known ?? undefined);
    } catch {
      return this.readThrough(scheduleId, load); // no version to trust
    }
    if (!version) {
      await this.deps.versions.init(concertId).catch(() => {});
      return this.readThrough(scheduleId, load);
    }
    const now = this.deps.clock.now().getTime();
    const hit = this.entries.get(scheduleId);
    // A newer map than the version this reader saw is as good (a reader whose version read raced a bump).
    if (hit && hit.version.epoch === version.epoch && now < hit.staleAt) {
      if (hit.version.n >= version.n) return hit.seats;
      if (need === 'no-false-taken' && hit.version.freed >= version.freed) return hit.seats;
    }
    // A load started before a reconnection is not shared after it: a Redis restarted from an
    // older snapshot gives its version number again to another history (found by a review).
    const flight = `${scheduleId}:${this.generation}:${version.epoch}:${version.n}`;
    let pending = this.loads.get(flight);
    if (pending) this.sharedLoads++;
    else {
      this.loadCount++;
      // Claims noted before the load started are in what it reads (they had committed).
      const claimsBefore = this.claimSeq;
      const generation = this.generation;
      this.loadStarting(scheduleId);
      pending = load().then(
        (seats) => {
          const lapse = firstLapse(seats);
          const current = this.entries.get(scheduleId);
          // Not across a reconnection: its version may be one a restored Redis gives again.
          if (generation !== this.checkGeneration()) return seats;
          if (!current || current.version.epoch !== version.epoch || current.version.n <= version.n) {
            this.entries.set(scheduleId, { version, seats, staleAt: Math.min(lapse, now + MAX_AGE_MS) });
            const claims = this.claims.get(scheduleId);
            for (const [seat, c] of claims ?? []) if (c.seq <= claimsBefore) claims!.delete(seat);
          }
          return seats;
        },
      );
      pending.finally(() => this.loads.delete(flight)).catch(() => {});
      this.loads.set(flight, pending);
    }
    return pending;
  }

  /**
   * After a commit that changed the schedule's seats. Never throws: a failed bump is retried.
   * `change`: `claim` only for a hold's claim or a payment's sale (see SeatMapVersion.freed).
   */
  async invalidate(concertId: number, scheduleId: number, change: SeatChange = 'any', claimed?: ClaimNote): Promise<void> {
    // Before the bump: a hold's check in this process after the commit calls these seats taken.
    // Not if a load of the map started since the claim's COMMIT was sent: that map is as new as
    // the claim, and newer than a release of it made elsewhere meanwhile (noted after such a load,
    // a claim released before it was noted called a free seat taken, found by a review).
    if (change === 'any') this.claims.delete(scheduleId);
    else if (claimed && this.loadMark(scheduleId) === claimed.loadMark) {
      let claims = this.claims.get(scheduleId);
      if (!claims) this.claims.set(scheduleId, (claims = new Map()));
      const at = this.deps.clock.now().getTime();
      for (const seat of claimed.seatNumbers) claims.set(seat, { until: claimed.until, at, seq: ++this.claimSeq });
    }
    // Only the version moves: dropping the local entry first would let readers who still see
    // the old version load it again, a second query for one change.
    // The waiting room is told alongside the bump; a bump that fails is retried every REBUMP_EVERY_MS.
    await Promise.all([
      this.deps.versions.bump(concertId, scheduleId, change).catch(() => {
        // A pending bump that may free seats stays one.
        const kind = this.unbumped.get(scheduleId)?.change === 'any' ? 'any' : change;
        this.unbumped.set(scheduleId, { concertId, since: this.deps.clock.now().getTime(), change: kind });
        this.rebumpSoon();
      }),
      this.deps.onChange?.(concertId).catch(() => {}),
    ]);
  }

  /**
   * A map read from the database, not cached: with no version to go by, a claim noted here may
   * since have been released elsewhere unseen, so the claims noted so far go (the read sees them).
   */
  private readThrough(scheduleId: number, load: () => Promise<CachedSeat[]>): Promise<CachedSeat[]> {
    this.claims.delete(scheduleId);
    this.loadStarting(scheduleId);
    return load();
  }

  /**
   * Drops every cached map and claim once the version store has reconnected since they were read:
   * a Redis restarted from an older snapshot keeps the epoch and gives the same version numbers
   * to another history, so a map cached before it counted as newer than the changes after it
   * (found by a review: a claim then outlived its release in another process). Returns the
   * current generation.
   */
  private checkGeneration(): number {
    const generation = this.deps.versions.generation?.() ?? 0;
    if (generation !== this.generation) {
      this.generation = generation;
      this.entries.clear();
      this.claims.clear();
    }
    return generation;
  }

  private loadStarting(scheduleId: number): void {
    this.loadStarts.set(scheduleId, this.loadMark(scheduleId) + 1);
  }

  /** How many loads of the schedule's map this process has started: read by a hold before it sends its COMMIT (ClaimNote). */
  loadMark(scheduleId: number): number {
    return this.loadStarts.get(scheduleId) ?? 0;
  }

  /**
   * Whether this process's own hold claimed `seatNumber` after the schedule's cached map was
   * loaded, and the hold has not lapsed at `now` (ms): for a hold's check of taken seats, beside
   * the map it got with need `no-false-taken`.
   */
  claimedHere(scheduleId: number, seatNumber: number, now: number): boolean {
    const c = this.claims.get(scheduleId)?.get(seatNumber);
    return c !== undefined && c.until > now && now - c.at < MAX_AGE_MS;
  }

  /** Whether some schedule's change has not reached the version store yet (for tests and metrics). */
  get pendingBumps(): number {
    return this.unbumped.size;
  }

  private rebumpSoon(): void {
    if (this.rebumping) return;
    this.rebumping = setTimeout(() => {
      this.rebumping = undefined;
      void this.rebump();
    }, REBUMP_EVERY_MS);
    this.rebumping.unref();
  }

  private async rebump(): Promise<void> {
    const now = this.deps.clock.now().getTime();
    for (const [scheduleId, pending] of [...this.unbumped]) {
      const landed = await this.deps.versions.bump(pending.concertId, scheduleId, pending.change).then(() => true, () => false);
      // Past MAX_AGE_MS every map loaded before the change has been dropped, in every process.
      // (A change that failed its own bump meanwhile keeps its mark.)
      if (this.unbumped.get(scheduleId) === pending && (landed || now - pending.since > MAX_AGE_MS)) this.unbumped.delete(scheduleId);
    }
    if (this.unbumped.size > 0) this.rebumpSoon();
  }
}
