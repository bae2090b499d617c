import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/harness.ts';
import { pgCode } from './database.ts';
import { createDialect } from './dialect.ts';
import { ABORT_CODE, COMMIT_AFTER, WITH_NEXT } from './pipeline.ts';

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
      const first = a[0] as { text?: string; before?: Array<{ text: string }>; after?: string } | string;
      // The other session's reads are not the transaction's.
      if (this !== other) exchanges.push(typeof first === 'string' ? first : [...(first.before ?? []).map((l) => l.text), first.text, first.after].filter(Boolean).join(' + '));
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

  const marked = (text: string) => sql.raw(`${WITH_NEXT} ${text}`);
  /** The named statements the pool's one connection has prepared. */
  const prepared_ = async () => (await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements`.execute(k)).rows.map((r) => r.statement);

  it('sends statements marked WITH_NEXT with the next one, BEGIN first: one round trip, run in order', async () => {
    await reset();
    const out = await k.transaction().execute(async (trx) => {
      // Answered at once: their rows come with the answer of the statement they ride with.
      const a = await sql<{ id: number }>`${marked('INSERT INTO t VALUES (')}${1}, 'a') RETURNING id`.execute(trx);
      const b = await sql<{ id: number; at: Date }>`${marked('INSERT INTO t VALUES (')}${2}, 'b') RETURNING id, now() AS at`.execute(trx);
      const before = [a.rows.length, b.rows.length];
      const c = await sql<{ n: number }>`SELECT count(*)::int AS n FROM t`.execute(trx);
      return [before, a.rows, b.rows.map((r) => [r.id, r.at instanceof Date]), c.rows[0]!.n];
    });
    // The third statement ran after both: it counts their rows. Theirs are parsed as any statement's.
    expect(out).toEqual([[0, 0], [{ id: 1 }], [[2, true]], 2]);
    expect(exchanges).toEqual([expect.stringMatching(/^begin \+ \/\* with next \*\/ INSERT .*\(\$1, 'a'\).* \+ \/\* with next \*\/ INSERT .*'b'.* \+ SELECT count/), 'commit']);
    exchanges = [];
    await k.transaction().execute(async (trx) => {
      await sql`INSERT INTO t VALUES (${3}, 'c')`.execute(trx);
      await sql`${marked('UPDATE t SET note = ')}${'marked'} WHERE id = ${3}`.execute(trx);
      await sql`${sql.raw(COMMIT_AFTER)} UPDATE t SET note = note || ${'+last'} WHERE id = ${3}`.execute(trx);
    });
    // Mid-transaction too, and with the COMMIT: two round trips in all.
    expect(exchanges).toEqual([expect.stringMatching(/^begin \+ INSERT/), expect.stringMatching(/^\/\* with next \*\/ UPDATE .* \+ \/\* then commit \*\/ UPDATE .* \+ commit$/)]);
    expect((await other.query('SELECT note FROM t WHERE id = 3')).rows[0].note).toBe('marked+last');
    expect(await rows()).toEqual([1, 2, 3]);
    if (prepared) expect((await prepared_()).filter((t) => t.startsWith(WITH_NEXT))).toHaveLength(2 + 1);
  });

  it('the next statement, sent in the same round trip, reads what committed while the marked one waited for its lock', async () => {
    await reset();
    await other.query(`INSERT INTO t VALUES (1, 'before')`);
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`UPDATE t SET note = 'after' WHERE id = 1`);
      const read = k.transaction().execute(async (trx) => {
        await sql`${marked('SELECT id FROM t WHERE id = ')}${1} FOR UPDATE`.execute(trx);
        return (await sql<{ note: string }>`SELECT note FROM t WHERE id = ${1}`.execute(trx)).rows[0]!.note;
      });
      // The transaction waits on the row's lock (the marked statement), then the blocker commits.
      await expect
        .poll(async () => (await other.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%with next%'`)).rows[0].n, { timeout: 10_000 })
        .toBe(1);
      await blocker.query('COMMIT');
      expect(await read).toBe('after');
    } finally {
      await blocker.end();
    }
  });

  it('an error in a marked statement fails the statement it rode with; nothing after it ran, and the connection goes on', async () => {
    await reset();
    const err = await k
      .transaction()
      .execute(async (trx) => {
        await sql`${marked('INSERT INTO t VALUES (')}${1}, 'a')`.execute(trx);
        await sql`${marked('SELECT 1 / ')}${0}`.execute(trx);
        // Never parsed: PostgreSQL skipped the rest of the round trip after the error.
        await sql`${marked('INSERT INTO t VALUES (')}${2}, 'skipped once')`.execute(trx);
        await sql`INSERT INTO t VALUES (${3}, 'c')`.execute(trx);
      })
      .catch((e: unknown) => e);
    expect(pgCode(err)).toBe('22012');
    expect(await rows()).toEqual([]);
    expect(exchanges.at(-1)).toBe('rollback');
    // The statement whose Parse was skipped is parsed again the next time it goes (named: not taken for parsed).
    await k.transaction().execute(async (trx) => {
      await sql`${marked('INSERT INTO t VALUES (')}${2}, 'skipped once')`.execute(trx);
      await sql`${marked('INSERT INTO t VALUES (')}${1}, 'a')`.execute(trx);
      await sql`INSERT INTO t VALUES (${3}, 'c')`.execute(trx);
    });
    expect(await rows()).toEqual([1, 2, 3]);
  });

  it('a marked statement right before the commit goes with it; right before a rollback, nowhere', async () => {
    await reset();
    await k.transaction().execute(async (trx) => {
      await sql`INSERT INTO t VALUES (${1}, 'a')`.execute(trx);
      await sql`${marked('INSERT INTO t VALUES (')}${2}, 'b')`.execute(trx);
    });
    expect(await rows()).toEqual([1, 2]);
    // The connection takes the next transaction as usual.
    await k.transaction().execute(async (trx) => {
      await sql`INSERT INTO t VALUES (${3}, 'c')`.execute(trx);
    });
    expect(await rows()).toEqual([1, 2, 3]);
    exchanges = [];
    await expect(
      k.transaction().execute(async (trx) => {
        await sql`${marked('INSERT INTO t VALUES (')}${4}, 'd')`.execute(trx);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    // Neither BEGIN nor the marked statement went: nothing to roll back.
    expect(exchanges).toEqual([]);
    expect(await rows()).toEqual([1, 2, 3]);
    // Outside a transaction the marker is a comment: the statement runs on its own, and answers.
    const alone = await sql<{ id: number }>`${marked('INSERT INTO t VALUES (')}${5}, 'e') RETURNING id`.execute(k);
    expect(alone.rows).toEqual([{ id: 5 }]);
  });

  it('a value that cannot be sent fails its transaction, and every statement of it still works on the connection afterwards', async () => {
    await reset();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const run = (lead: unknown, main: unknown, column = 'v') =>
      k.transaction().execute(async (trx) => {
        await sql`${marked('SELECT ')}${lead}::text AS ${sql.raw(column)}`.execute(trx);
        return (await sql<{ id: number }>`${sql.raw(COMMIT_AFTER)} INSERT INTO t VALUES (${main}, 'm') RETURNING id`.execute(trx)).rows;
      });
    expect(await run('ok', 1)).toEqual([{ id: 1 }]);
    // In a leading statement, then in the last one after a leading one; then a leading statement
    // never sent before, parsed in the exchange whose last statement cannot be sent.
    await expect(run(circular, 2)).rejects.toThrow(/circular/i);
    await expect(run('ok', circular)).rejects.toThrow(/circular/i);
    await expect(run('ok', circular, 'w')).rejects.toThrow(/circular/i);
    // Each statement was left prepared where it was parsed, and is known so (named statements
    // closed or forgotten failed here: "does not exist" or "already exists").
    expect(await run('ok', 3)).toEqual([{ id: 3 }]);
    expect(await run('ok', 4, 'w')).toEqual([{ id: 4 }]);
    expect(await rows()).toEqual([1, 3, 4]);
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
