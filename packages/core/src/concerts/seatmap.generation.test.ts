import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.ts';
import { type CachedSeat, SeatMapCache, type SeatMapVersion, type SeatVersionStore } from './seatmap.cache.ts';

/**
 * After the version store's generation changes (a Redis restarted from an older snapshot: the
 * same epoch, version numbers given again to another history), a load of the map that started
 * before the restart was still shared, under `${schedule}:${epoch}:${n}`, with a reader after
 * it whose reused version was that same n: the reader got a map read before changes its version
 * includes (here a release of seat 3, committed and bumped after the load read the database),
 * and the hold's check called the free seat taken (found by a review). A load is now shared only
 * within the generation it started in.
 */
class RestorableStore implements SeatVersionStore {
  epoch = 'E';
  n = 0;
  freed = 0;
  gen = 0;
  async get(): Promise<SeatMapVersion> {
    return { epoch: this.epoch, n: this.n, freed: this.freed };
  }
  async bump(_c: number, _s: number, change: 'claim' | 'any'): Promise<void> {
    this.n++;
    if (change === 'any') this.freed++;
  }
  async init(): Promise<void> {}
  generation(): number {
    return this.gen;
  }
}

const seat = (n: number, status: CachedSeat['status']): CachedSeat => ({ seatNumber: n, grade: 'R', price: 1, status, heldUntil: status === 'HELD' ? new Date(Date.now() + 300_000) : null });

describe('a seat-map load in flight across a Redis restart', () => {
  it('is not shared with a reader of the restored history whose version number it reuses', async () => {
    const clock = new FakeClock(Date.now());
    const store = new RestorableStore();
    const cache = new SeatMapCache({ versions: store, clock });
    // The database: seat 3 held (by W), later released.
    let db: CachedSeat[] = [seat(1, 'AVAILABLE'), seat(2, 'AVAILABLE'), seat(3, 'HELD')];

    // Old history: the snapshot was taken at n=4 (freed 0); two more claims took it to n=6.
    store.n = 6;
    // A load at (E, 6) reads the database (seat 3 HELD) and its reply is slow to come back.
    let release!: () => void;
    const slow = cache.get(1, 7, () => {
      const read = db.map((s) => ({ ...s }));
      return new Promise<CachedSeat[]>((r) => (release = () => r(read)));
    });
    await Promise.resolve();

    // Redis restarts from the snapshot (n=4, same epoch); the client reconnects (generation moves).
    store.n = 4;
    store.gen++;
    // W's hold is cancelled through another process: committed in the database, bumped twice
    // in the restored history (the cancel and, say, another claim): n=6 again, freed 1.
    db = [seat(1, 'AVAILABLE'), seat(2, 'AVAILABLE'), seat(3, 'AVAILABLE')];
    await store.bump(1, 7, 'any');
    await store.bump(1, 7, 'claim');

    // A hold's check of seat 3 in this process, at version (E, 6, freed 1).
    const check = cache.get(1, 7, async () => db.map((s) => ({ ...s })), undefined, 'no-false-taken');
    await new Promise((r) => setTimeout(r, 10));
    release();
    await slow;
    const seats = await check;
    // Seat 3 is free in the database: the map given to the check must not call it taken.
    expect(seats[2]!.status).toBe('AVAILABLE');
  });
});
