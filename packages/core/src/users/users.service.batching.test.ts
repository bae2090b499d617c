import { Kysely } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isDatabaseUnavailable } from '../db/database.ts';
import { createDialect } from '../db/dialect.ts';
import type { DB } from '../db/schema.ts';
import type * as Repository from './users.repository.ts';

// The batching of UsersService.assertExists, over a lookup this file controls.
const fake = vi.hoisted(() => ({ impl: undefined as undefined | ((ids: readonly number[]) => Promise<Set<number>>), calls: [] as number[][] }));
vi.mock('./users.repository.ts', async (orig) => ({
  ...(await orig<object>()),
  existingUsers: (_db: unknown, ids: readonly number[]) => {
    fake.calls.push([...ids]);
    return fake.impl!(ids);
  },
}));
const { UsersService } = await import('./users.service.ts');

const within = <T>(p: Promise<T>, ms: number) => Promise.race([p.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(() => r('pending'), ms))]);

afterEach(() => {
  fake.calls.length = 0;
});

describe('UsersService.assertExists, batched', () => {
  it('answers every lookup with its own answer, through random delays, failures and bursts past a batch', { timeout: 60_000 }, async () => {
    const exists = (id: number) => id % 3 !== 0;
    fake.impl = (ids) =>
      new Promise((resolve, reject) => setTimeout(() => (Math.random() < 0.2 ? reject(new Error('boom')) : resolve(new Set(ids.filter(exists)))), Math.random() * 5));
    const users = new UsersService({ db: {} as never });
    let next = 1;
    const all: Promise<string>[] = [];
    for (let round = 0; round < 60; round++) {
      for (let i = 0, n = round % 10 === 0 ? 2_500 : Math.floor(Math.random() * 50); i < n; i++) {
        const id = next++;
        all.push(
          users.assertExists(id).then(
            () => (exists(id) ? 'ok' : `${id}: found`),
            (e: Error) => (e.message === 'boom' || (!exists(id) && e.message === `User ${id} does not exist`) ? 'ok' : `${id}: ${e.message}`),
          ),
        );
      }
      await new Promise((r) => setTimeout(r, Math.random() * 4));
    }
    const got = await Promise.race([Promise.all(all), new Promise<string[]>((r) => setTimeout(() => r(['stalled']), 30_000))]);
    expect(got.filter((g) => g !== 'ok')).toEqual([]);
    expect(Math.max(...fake.calls.map((c) => c.length))).toBeLessThanOrEqual(1_000);
    expect(fake.calls.length).toBeLessThan(next - 1);
  });

  // An outside review: with one lookup running at a time, a statement that never answered (a
  // connection gone half-open) held up every user new to the process after it.
  it('does not hold up other users behind a lookup that never answers', async () => {
    let first = true;
    fake.impl = (ids) => {
      if (first) {
        first = false;
        return new Promise(() => {});
      }
      return Promise.resolve(new Set(ids));
    };
    const users = new UsersService({ db: {} as never });
    void users.assertExists(1);
    await new Promise((r) => setImmediate(r));
    expect(await within(users.assertExists(2), 5_000)).toBe('settled');
    expect(fake.calls).toEqual([[1], [2]]);
  });

  it('answers a database that is down with the error the API answers SERVICE_UNAVAILABLE for', async () => {
    const real = await vi.importActual<typeof Repository>('./users.repository.ts');
    const db = new Kysely<DB>({ dialect: createDialect({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', dataDir: 'memory://', poolSize: 2 }).dialect });
    fake.impl = (ids) => real.existingUsers(db, ids);
    try {
      const users = new UsersService({ db });
      const errs = await Promise.all([1, 2, 3].map((id) => users.assertExists(id).then(() => undefined, (e: unknown) => e)));
      expect(errs.map((e) => isDatabaseUnavailable(e))).toEqual([true, true, true]);
    } finally {
      await db.destroy();
    }
  });
});
