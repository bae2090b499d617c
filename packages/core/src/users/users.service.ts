import type { Db } from '../db/database.ts';
import { getUser } from './users.repository.ts';

/** Users this process has seen exist; past this many it forgets them all and starts again. */
const KNOWN_MAX = 200_000;

export class UsersService {
  // Users are never deleted, so one lookup per user and process is enough.
  private readonly known = new Set<number>();

  constructor(private readonly deps: { db: Db }) {}

  /** Throws USER_NOT_FOUND for an identity with no user behind it (a phantom takes nothing, not even a place in line). */
  async assertExists(userId: number): Promise<void> {
    if (this.known.has(userId)) return;
    await getUser(this.deps.db, userId);
    if (this.known.size >= KNOWN_MAX) this.known.clear();
    this.known.add(userId);
  }
}
