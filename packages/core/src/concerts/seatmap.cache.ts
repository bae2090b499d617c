import type { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import { seatMapVersionsKey } from '../redis/keys.ts';
import type { SeatStatus } from '../types.ts';

/** A schedule's seat-map version: every committed change of its seats bumps it, on every replica's view. */
export interface SeatVersionStore {
  get(concertId: number, scheduleId: number): Promise<number>;
  bump(concertId: number, scheduleId: number): Promise<void>;
}

/** A hash per concert (in its Redis slot, where the queue gate's check can read it too). */
export class RedisSeatVersionStore implements SeatVersionStore {
  constructor(private readonly redis: Redis) {}
  async get(concertId: number, scheduleId: number): Promise<number> {
    return Number((await this.redis.hget(seatMapVersionsKey(concertId), String(scheduleId))) ?? 0);
  }
  async bump(concertId: number, scheduleId: number): Promise<void> {
    await this.redis.hincrby(seatMapVersionsKey(concertId), String(scheduleId), 1);
  }
}

export class MemorySeatVersionStore implements SeatVersionStore {
  private readonly versions = new Map<number, number>();
  async get(_concertId: number, scheduleId: number): Promise<number> {
    return this.versions.get(scheduleId) ?? 0;
  }
  async bump(_concertId: number, scheduleId: number): Promise<void> {
    this.versions.set(scheduleId, (this.versions.get(scheduleId) ?? 0) + 1);
  }
}

export interface CachedSeat {
  seatNumber: number;
  grade: string;
  price: number;
  status: SeatStatus;
  /** When a HELD seat's hold lapses (it then reads AVAILABLE without any write). */
  heldUntil: Date | null;
}

/** A cached map is also dropped after this long, in case a bump was lost (the version store blinked). */
const MAX_AGE_MS = 10_000;

/**
 * Seat maps served from memory. A cached map is used only while its version is the current one
 * (one Redis GET) and no hold in it has lapsed; otherwise one load per schedule and version runs
 * (concurrent readers share it), so a stampede costs one query per invalidation per process.
 * Writers bump the version after their commit and before answering, so a maker never reads
 * their own seat as AVAILABLE again.
 */
export class SeatMapCache {
  private readonly entries = new Map<number, { version: number; seats: CachedSeat[]; staleAt: number }>();
  private readonly loads = new Map<string, Promise<CachedSeat[]>>();
  /** Seat-map queries run, for metrics and the benchmark's stampede check. */
  loadCount = 0;

  constructor(private readonly deps: { versions: SeatVersionStore; clock: Clock }) {}

  /** `knownVersion`: the current version when the caller already has it (read along with the gate). */
  async get(concertId: number, scheduleId: number, load: () => Promise<CachedSeat[]>, knownVersion?: number): Promise<CachedSeat[]> {
    let version: number;
    try {
      version = knownVersion ?? (await this.deps.versions.get(concertId, scheduleId));
    } catch {
      return load(); // no version to trust: read through
    }
    const now = this.deps.clock.now().getTime();
    const hit = this.entries.get(scheduleId);
    // A newer map than the version this reader saw is as good (a reader whose version read raced a bump).
    if (hit && hit.version >= version && now < hit.staleAt) return hit.seats;
    const flight = `${scheduleId}:${version}`;
    let pending = this.loads.get(flight);
    if (!pending) {
      this.loadCount++;
      pending = load().then(
        (seats) => {
          const lapse = Math.min(...seats.filter((s) => s.status === 'HELD').map((s) => s.heldUntil!.getTime()));
          const current = this.entries.get(scheduleId);
          if (!current || current.version <= version) {
            this.entries.set(scheduleId, { version, seats, staleAt: Math.min(lapse, now + MAX_AGE_MS) });
          }
          return seats;
        },
      );
      pending.finally(() => this.loads.delete(flight)).catch(() => {});
      this.loads.set(flight, pending);
    }
    return pending;
  }

  /** After a commit that changed the schedule's seats. */
  async invalidate(concertId: number, scheduleId: number): Promise<void> {
    // Only the version moves: dropping the local entry first would let readers who still see
    // the old version load it again, a second query for one change.
    await this.deps.versions.bump(concertId, scheduleId).catch(() => {});
  }
}
