import DataLoader from 'dataloader';
import type { Db } from '../db/database.ts';
import { AppError } from '../errors.ts';
import { existingUsers } from './users.repository.ts';

/** Users this process has seen exist; past this many it forgets them all and starts again. */
const KNOWN_MAX = 200_000;
/** The most users one lookup asks for. */
const BATCH_MAX = 1_000;
/**
 * The most lookups running at once. More than one: a statement that never answers (a connection
 * gone half-open) must not hold up every user after it, as one running batch at a time did (an
 * outside review); each lookup takes a connection of its own from the pool.
 */
const RUNNING_MAX = 4;

export class UsersService {
  // Users are never deleted, so one lookup per user and process is enough.
  private readonly known = new Set<number>();
  /**
   * The lookups of users not yet known, batched as a group commit is: with fewer than RUNNING_MAX
   * lookups running, one is sent at once (from setImmediate, with whatever else the same turn of
   * the event loop asked for); while that many run, the users asked for meanwhile wait and go
   * together in the next, sent as one of them ends. When a sale opens, thousands of fans new to
   * this process enter at once, and each was a query of its own: 5,000 enters at once spent a
   * quarter of the API's CPU on 5,000 queries (`pnpm bench`'s first enter round, a CPU profile).
   * DataLoader does the batching (its batchScheduleFn is the schedule above). Not cached there: a
   * user not found may be created the next moment, and one found is kept in `known`.
   */
  private readonly lookups: DataLoader<number, boolean>;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly deps: { db: Db }) {
    this.lookups = new DataLoader(
      async (ids) => {
        this.running++;
        try {
          const found = await existingUsers(this.deps.db, ids);
          return ids.map((id) => found.has(id));
        } finally {
          this.running--;
          this.waiting.shift()?.();
        }
      },
      {
        cache: false,
        maxBatchSize: BATCH_MAX,
        batchScheduleFn: (send) => (this.running < RUNNING_MAX && this.waiting.length === 0 ? setImmediate(send) : this.waiting.push(send)),
      },
    );
  }

  /** Throws USER_NOT_FOUND for an identity with no user behind it (a phantom takes nothing, not even a place in line). */
  async assertExists(userId: number): Promise<void> {
    if (this.known.has(userId)) return;
    if (!(await this.lookups.load(userId))) throw new AppError('USER_NOT_FOUND', `User ${userId} does not exist`);
    if (this.known.size >= KNOWN_MAX) this.known.clear();
    this.known.add(userId);
  }
}
