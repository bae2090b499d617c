import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/harness.ts';
import { pgCode } from './database.ts';
import { createDialect } from './dialect.ts';
import { ABORT_CODE, COMMIT_AFTER } from './pipeline.ts';

/**
 * DB_PIPELINE: Kysely's BEGIN travels with the transaction's first statement and a statement
 * marked COMMIT_AFTER with the COMMIT, one round trip each (pipeline.ts). Counted at
 * node-postgres's Client#query, which sends one exchange (up to one Sync) per call.
 */
describe.each([
  ['named statements', true],
  ['unnamed statements (behind PgBouncer 1.18)', false],
])('pipelined transactions, %s', (_, prepared) => {
  let db: TestDatabase;
  let k: Kysely<unknown>;
  let other: InstanceType<typeof pg.Client>;
  let exchanges: string[] = [];
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const original = proto.query;

  beforeAll(async () => {
    db = await createTestDatabase();
    k = new Kysely<unknown>({ dialect: createDialect({ databaseUrl: db.url, dataDir: 'memory://', poolSize: 1, prepared, pipeline: true }).dialect });
    await sql`CREATE TABLE t (id int PRIMARY KEY, note text)`.execute(k);
    await sql`CREATE FUNCTION concert_abort(reason text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
      BEGIN RAISE EXCEPTION USING ERRCODE = 'CA001', MESSAGE = reason; END $$`.execute(k);
    other = new pg.Client({ connectionString: db.url });
    await other.connect();
    proto.query = function (this: unknown, ...a: unknown[]) {
      const first = a[0] as { text?: string; before?: string; after?: string } | string;
      // The other session's reads are not the transaction's.
      if (this !== other) exchanges.push(typeof first === 'string' ? first : [first.before, first.text, first.after].filter(Boolean).join(' + '));
      return original.apply(this, a);
    };
  });
  afterAll(async () => {
    proto.query = original;
    await other?.end();
    await k?.destroy();
    await db?.drop();
  });

  const rows = async () => (await other.query<{ id: number }>('SELECT id FROM t ORDER BY id')).rows.map((r) => r.id);
  const reset = async () => {
    await other.query('TRUNCATE t');
    exchanges = [];
  };

  it('sends BEGIN with the first statement and COMMIT with the marked last: two round trips for a transaction of two statements', async () => {
    await reset();
    const out = await k.transaction().execute(async (trx) => {
      const a = await sql<{ id: number }>`INSERT INTO t VALUES (${1}, 'a') RETURNING id`.execute(trx);
      const b = await sql<{ n: number }>`${sql.raw(COMMIT_AFTER)} INSERT INTO t VALUES (${2}, 'b') RETURNING id + 40 AS n`.execute(trx);
      return [a.rows[0]!.id, b.rows[0]!.n];
    });
    expect(out).toEqual([1, 42]);
    expect(exchanges).toEqual([expect.stringMatching(/^begin \+ INSERT INTO t VALUES \(\$1, 'a'\)/), expect.stringMatching(/INSERT INTO t VALUES \(\$1, 'b'\).* \+ commit$/)]);
    // Committed: another session sees both rows, and the connection takes the next transaction.
    expect(await rows()).toEqual([1, 2]);
    await k.transaction().execute(async (trx) => {
      await sql`INSERT INTO t VALUES (${3}, 'c')`.execute(trx);
    });
    expect(await rows()).toEqual([1, 2, 3]);
  });

  it('rolls back every statement when the marked last one fails, and the COMMIT with it is not run', async () => {
    await reset();
    const err = await k
      .transaction()
      .execute(async (trx) => {
        await sql`INSERT INTO t VALUES (${1}, 'a')`.execute(trx);
        await sql`${sql.raw(COMMIT_AFTER)} SELECT concert_abort(${'SUPERSEDED'})`.execute(trx);
      })
      .catch((e: unknown) => e);
    expect(pgCode(err)).toBe(ABORT_CODE);
    expect((err as Error).message).toBe('SUPERSEDED');
    expect(await rows()).toEqual([]);
    // The rollback went to the server (the block had failed) and the connection is clean.
    expect(exchanges.at(-1)).toBe('rollback');
    expect((await sql<{ n: number }>`SELECT 1 AS n`.execute(k)).rows[0]!.n).toBe(1);
  });

  it('fails the marked statement when its COMMIT does not commit (a deferred constraint)', async () => {
    await reset();
    await other.query('CREATE TABLE IF NOT EXISTS d (id int, CONSTRAINT d_unique UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)');
    await other.query('TRUNCATE d');
    const err = await k
      .transaction()
      .execute(async (trx) => {
        await sql`INSERT INTO d VALUES (1), (1)`.execute(trx);
        await sql`${sql.raw(COMMIT_AFTER)} INSERT INTO t VALUES (${9}, 'z')`.execute(trx);
      })
      .catch((e: unknown) => e);
    expect(pgCode(err)).toBe('23505');
    expect(await rows()).toEqual([]);
    expect((await other.query('SELECT count(*)::int AS n FROM d')).rows[0].n).toBe(0);
  });

  it('rolls back a transaction whose code throws after a pipelined BEGIN', async () => {
    await reset();
    await expect(
      k.transaction().execute(async (trx) => {
        await sql`INSERT INTO t VALUES (${1}, 'a')`.execute(trx);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await rows()).toEqual([]);
    expect(exchanges).toEqual([expect.stringMatching(/^begin \+ INSERT/), 'rollback']);
  });

  it('a first statement that fails leaves the connection usable (its BEGIN ran, the rollback ends it)', async () => {
    await reset();
    await other.query(`INSERT INTO t VALUES (5, 'x')`);
    const err = await k
      .transaction()
      .execute(async (trx) => {
        await sql`INSERT INTO t VALUES (${5}, 'dup')`.execute(trx);
      })
      .catch((e: unknown) => e);
    expect(pgCode(err)).toBe('23505');
    await k.transaction().execute(async (trx) => {
      await sql`INSERT INTO t VALUES (${6}, 'y')`.execute(trx);
    });
    expect(await rows()).toEqual([5, 6]);
    // Outside a transaction nothing is pipelined, and the marker is only a comment.
    exchanges = [];
    await sql`${sql.raw(COMMIT_AFTER)} INSERT INTO t VALUES (${7}, 'w')`.execute(k);
    expect(exchanges).toEqual([expect.stringMatching(/^\/\* then commit \*\/ INSERT/)]);
    expect(await rows()).toEqual([5, 6, 7]);
  });

  it('a transaction that sends nothing sends no BEGIN and no COMMIT', async () => {
    await reset();
    expect(await k.transaction().execute(async () => 7)).toBe(7);
    expect(exchanges).toEqual([]);
  });

  it('refuses a statement after the one that committed: it would run outside the transaction', async () => {
    await reset();
    const err = await k
      .transaction()
      .execute(async (trx) => {
        await sql`${sql.raw(COMMIT_AFTER)} INSERT INTO t VALUES (${1}, 'a')`.execute(trx);
        await sql`INSERT INTO t VALUES (${2}, 'b')`.execute(trx);
      })
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/after a transaction that committed with its last statement/);
    // What committed stays committed; what came after did not run.
    expect(await rows()).toEqual([1]);
  });

  it('many transactions at once on a pool share no pipeline state', async () => {
    await reset();
    const pooled = new Kysely<unknown>({ dialect: createDialect({ databaseUrl: db.url, dataDir: 'memory://', poolSize: 4, prepared, pipeline: true }).dialect });
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          pooled.transaction().execute(async (trx) => {
            await sql`INSERT INTO t VALUES (${i}, 'p')`.execute(trx);
            // Every third one refuses in its last statement, every fifth throws before it.
            if (i % 5 === 4) throw new Error('thrown');
            await sql`${sql.raw(COMMIT_AFTER)} SELECT CASE WHEN ${i % 3 === 2} THEN concert_abort('SUPERSEDED') END`.execute(trx);
          }),
        ),
      );
      const committed = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
      expect(committed).toEqual(Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 5 !== 4 && i % 3 !== 2));
      expect(await rows()).toEqual(committed);
    } finally {
      await pooled.destroy();
    }
  });
});
