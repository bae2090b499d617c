import type { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import { seatMapVersionKey } from '../redis/keys.ts';
import type { SeatStatus } from '../types.ts';

/** A schedule's seat-map version: every committed change of its seats bumps it, on every replica's view. */
export interface SeatVersionStore {
  get(scheduleId: number): Promise<number>;
  bump(scheduleIds: number[]): Promise<void>;
}

export class RedisSeatVersionStore implements SeatVersionStore {
  constructor(private readonly redis: Redis) {}
  async get(scheduleId: number): Promise<number> {
    return Number((await this.redis.get(seatMapVersionKey(scheduleId))) ?? 0);
  }
  async bump(scheduleIds: number[]): Promise<void> {
    await Promise.all(scheduleIds.map((id) => this.redis.incr(seatMapVersionKey(id))));
  }
}

export class MemorySeatVersionStore implements SeatVersionStore {
  private readonly versions = new Map<number, number>();
  async get(scheduleId: number): Promise<number> {
    return this.versions.get(scheduleId) ?? 0;
  }
  async bump(scheduleIds: number[]): Promise<void> {
    for (const id of scheduleIds) this.versions.set(id, (this.versions.get(id) ?? 0) + 1);
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

  async get(scheduleId: number, load: () => Promise<CachedSeat[]>): Promise<CachedSeat[]> {
    let version: number;
    try {
      version = await this.deps.versions.get(scheduleId);
    } catch {
      return load(); // no version to trust: read through
    }
    const now = this.deps.clock.now().getTime();
    const hit = this.entries.get(scheduleId);
    if (hit && hit.version === version && now < hit.staleAt) return hit.seats;
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

  /** After a commit that changed these schedules' seats. */
  async invalidate(scheduleIds: number[]): Promise<void> {
    for (const id of scheduleIds) this.entries.delete(id);
    await this.deps.versions.bump(scheduleIds).catch(() => {});
  }
}
