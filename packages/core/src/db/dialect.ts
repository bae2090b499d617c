import { linkSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { type DialectAdapter, type Dialect, PostgresAdapter, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { PoolClient, QueryResult, Submittable } from 'pg';
import { COMMIT_AFTER, isBegin, type Leading, type PipelineConfig, PipelinedQuery, WITH_NEXT } from './pipeline.ts';

// int8 (ids, money) and numeric (sums) arrive as strings; every value we keep fits in a double.
const INT8 = 20;
const NUMERIC = 1700;
const toNumber = (value: string) => Number(value);

export interface DialectHandle {
  dialect: Dialect;
  kind: 'postgres' | 'pglite';
  /** Pool usage, for metrics; undefined on PGlite. */
  pool?: InstanceType<typeof pg.Pool>;
}

/**
 * `prepared`: each distinct statement text (up to MAX_PREPARED of them) runs as a named statement,
 * parsed and planned once per server connection instead of on every call. Planning was most of
 * PostgreSQL's CPU on the write path: 0.7 ms for a hold's statement, 0.5 ms for a sale's
 * (pg_stat_statements with track_planning, `pnpm bench`), against 1.2–1.7 ms to run them.
 */
export function createDialect(opts: { databaseUrl?: string | undefined; dataDir: string; poolSize: number; prepared?: boolean; pipeline?: boolean }): DialectHandle {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      // No startup options or session state: PgBouncer in transaction pooling would refuse or lose
      // them. The 10 s statement timeout is the database's default (migration 20261201T140000).
      types: {
        getTypeParser: ((oid: number, format: 'text') =>
          oid === INT8 || oid === NUMERIC ? toNumber : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its server (a restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    // A checked-out client whose connection drops emits 'error' too (besides failing its query);
    // the pool listens only while a client is idle, so without this the process would crash.
    pool.on('connect', (client) => client.on('error', () => {}));
    const pipeline = opts.pipeline ?? false;
    const wrappedPool = opts.prepared || pipeline ? preparing(pool, { named: opts.prepared ?? false, pipeline }) : pool;
    return { dialect: new PoolerSafePostgresDialect({ pool: wrappedPool }), kind: 'postgres', pool };
  }
  const dir = opts.dataDir === 'memory://' ? undefined : opts.dataDir;
  if (dir) {
    makeDirectory(dir);
    lockDataDir(dir);
  }
  const pglite = new PGlite(dir ? `file://${dir}` : 'memory://', { parsers: { [INT8]: toNumber, [NUMERIC]: toNumber } });
  return { dialect: new PGliteDialect(pglite), kind: 'pglite' };
}

/**
 * mkdir -p, one level at a time. Node's `mkdirSync(dir, { recursive: true })` never returns where
 * the kernel answers ENOENT for a directory whose parent exists (under /proc: `DATA_DIR=/proc/x`
 * spun a core at start for as long as it was left); here that is the error it is.
 */
export function makeDirectory(dir: string): void {
  const parent = path.dirname(dir);
  if (parent !== dir) makeDirectory(parent);
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * The embedded database belongs to one process. PGlite keeps the database in its memory and writes
 * it back to DATA_DIR, with no lock of its own, so a second `pnpm start` on the same directory
 * served a database of its own: a charge made through one was not in the other's balance. A pid
 * file, as PostgreSQL's postmaster.pid: kept while this process lives, taken over from a process
 * that is gone, or from this very pid (a container restarted as pid 1, a test reopening the directory).
 */
export function lockDataDir(dir: string, hooks: { beforeTakeOver?: () => void; link?: typeof linkSync } = {}): void {
  const file = path.join(dir, 'concert.pid');
  const mine = String(process.pid);
  removeLeftovers(dir);
  const empty = new EmptyFileWatch();
  for (;;) {
    if (createExclusive(file, `${mine}\n`, hooks.link)) {
      process.once('exit', () => {
        try {
          if (readFileSync(file, 'utf8').trim() === mine) unlinkSync(file);
        } catch {
          // gone already
        }
      });
      return;
    }
    const seen = readText(file);
    if (seen === undefined) continue;
    if (empty.young(file, seen)) continue;
    const holder = Number(seen.trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
      throw new Error(
        `in use by process ${holder} (${file}): the embedded database takes one process; stop that one, give this one another DATA_DIR, or set DATABASE_URL for several (if process ${holder} is not a concert server, delete the file)`,
      );
    }
    // The holder is gone. Another process starting now may have read the same stale file: if both
    // removed it, the second could remove the file the first had just written, and both would
    // serve (two processes at once took a stale file over, 1 time in 15 with 8 of them). The file
    // is removed only under a guard, and only if it still says what was read.
    hooks.beforeTakeOver?.();
    takeOver(file, () => {
      if (readText(file) === seen && empty.same(file, seen)) unlinkQuietly(file);
    }, hooks.link);
  }
}

/** Runs fn while holding `file`.takeover, a guard file made exclusively (waits for a live holder; a dead one's is removed). */
function takeOver(file: string, fn: () => void, link?: typeof linkSync): void {
  const guard = `${file}.takeover`;
  const deadline = Date.now() + 5_000;
  const empty = new EmptyFileWatch();
  for (;;) {
    if (createExclusive(guard, `${process.pid}\n`, link)) break;
    const seen = readText(guard);
    if (seen !== undefined && empty.young(guard, seen)) continue;
    const holder = Number(seen?.trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
      // Held for the time of a read and an unlink: a live holder is waited for, a little.
      if (Date.now() > deadline) throw new Error(`${guard} is held by process ${holder}: delete it if that is not a concert server starting`);
      sleepSync(5);
    } else if (seen !== undefined && readText(guard) === seen && empty.same(guard, seen)) {
      unlinkQuietly(guard);
    }
  }
  try {
    fn();
  } finally {
    unlinkQuietly(guard);
  }
}

/**
 * Makes `file` holding `text`, or answers false when it exists. The text is in the file from its
 * first moment: it is written to a file of this process's own and hard-linked to the name, which
 * fails when the name exists. `writeFileSync(file, text, { flag: 'wx' })` creates the file empty
 * and writes it after, and a process starting beside it read the empty file as a pid file of no
 * live process, removed it and served the directory too (two of six processes at once, in CI; a
 * reader saw a third of such files empty). A file system without hard links gets `wx` and the
 * wait of EmptyFileWatch.
 */
export function createExclusive(file: string, text: string, link = linkSync): boolean {
  const own = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(own, text, { flag: 'wx' });
    link(own, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw err;
  } finally {
    unlinkQuietly(own);
  }
  try {
    writeFileSync(file, text, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** How long an empty file is taken for one being written (see createExclusive), before it is taken for a crash's leftover. */
export const EMPTY_GRACE_MS = 2_000;

/**
 * An empty pid or guard file, watched by this process's own clock: young (being written by a
 * process beside this one, so waited for) until the same file (identity()) has been seen empty
 * for EMPTY_GRACE_MS. Not by the file's mtime: a file system's clock ahead of this one's (NFS, SMB,
 * or this clock stepped back) kept an empty file young for ever, and one behind it, or FAT's 2 s
 * mtimes, cut the wait short (an outside review).
 */
class EmptyFileWatch {
  private seen: { id: string; since: number } | null = null;

  /** Whether `file`, read as `text`, is an empty file to wait for a little more (then read it again). */
  young(file: string, text: string): boolean {
    if (text !== '') {
      this.seen = null;
      return false;
    }
    const id = identity(file);
    if (id === undefined) return true; // gone: read it again
    if (this.seen?.id !== id) this.seen = { id, since: performance.now() };
    if (performance.now() - this.seen.since >= EMPTY_GRACE_MS) return false;
    sleepSync(5);
    return true;
  }

  /**
   * Whether `file`, read as `text` again under the guard, is the file young() gave up on. An empty
   * file made since, by a process that removed the leftover under the guard first (where hard
   * links are refused), reads the same '' but is another file, and is not removed.
   */
  same(file: string, text: string): boolean {
    return text !== '' || (this.seen !== null && identity(file) === this.seen.id);
  }
}

/** A file's identity: its inode, and its change time (an inode number freed by a removal is soon given to the next file made). */
function identity(file: string): string | undefined {
  try {
    const st = statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Removes the files createExclusive writes before linking them, left by a process killed in
 * between (their pid is not running): `concert.pid.<pid>.<random>` and the guard's.
 */
function removeLeftovers(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = /^concert\.pid(?:\.takeover)?\.(\d+)\.[0-9a-z]+$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !isRunning(pid)) unlinkQuietly(path.join(dir, name));
  }
}

/** Blocks the thread for ms milliseconds (the lock is taken before the server starts serving). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A file's text; undefined when it is gone. */
function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kysely's PostgreSQL migration lock is a session-level advisory lock, which a transaction
 * pooler (PgBouncer) leaks on a pooled server connection. migrateToLatest takes a
 * transaction-level lock instead, in the migration's own transaction; the adapter takes none.
 */
class TransactionLockedMigrationsAdapter extends PostgresAdapter {
  override async acquireMigrationLock(): Promise<void> {}
  override async releaseMigrationLock(): Promise<void> {}
}

/** Distinct statement texts given a name, per process; any text past these runs unnamed. */
export const MAX_PREPARED = 256;

export interface PoolOptions {
  /** Statements as named (server-side prepared) statements (DB_PREPARED_STATEMENTS). */
  named: boolean;
  /** A transaction's BEGIN rides with its first statement, and its COMMIT with a last statement marked COMMIT_AFTER (DB_PIPELINE). */
  pipeline: boolean;
}

/**
 * The pool as Kysely's driver sees it. `named`: every statement text it has named is sent as a
 * named statement (node-postgres prepares a name once per connection and then only binds and
 * executes it). Names are handed out per process from the text, so one text is one name on every
 * connection; the set is bounded because a statement built from a list of any length would
 * otherwise name a new text for every length. `pipeline`: see pipeline.ts; Kysely's BEGIN is
 * answered here and sent with the transaction's first statement, and a statement marked
 * COMMIT_AFTER is sent with the COMMIT, whose own call Kysely then makes is answered here.
 */
export function preparing(pool: InstanceType<typeof pg.Pool>, opts: PoolOptions = { named: true, pipeline: false }): PostgresPool {
  const names = new Map<string, string>();
  const nameFor = (text: string): string | undefined => {
    if (!opts.named) return undefined;
    let name = names.get(text);
    if (name === undefined && names.size < MAX_PREPARED) {
      name = `concert_${names.size}`;
      names.set(text, name);
    }
    return name;
  };
  // Kysely keeps a connection per client object: one wrapper per pooled client, for its life.
  const wrapped = new WeakMap<PoolClient, PostgresPoolClient & { processID?: number }>();
  const wrap = (client: PoolClient) => {
    let w = wrapped.get(client);
    if (!w) {
      const tx = new PipelinedTransaction();
      const send = (text: string, values: unknown[] | undefined) => {
        const name = nameFor(text);
        return client.query(name === undefined ? { text, values } : { name, text, values });
      };
      const query = (text: unknown, values?: unknown[]) => {
        if (typeof text !== 'string') return client.query(text as Submittable);
        if (!opts.pipeline) return send(text, values);
        return tx.query(text, values ?? [], send, (q) => {
          const before = q.before?.map((l) => (l.values === undefined ? l : { ...l, name: nameFor(l.text) }));
          client.query(new PipelinedQuery({ ...q, before, name: nameFor(q.text) }) as unknown as Submittable);
        });
      };
      w = {
        query: query as unknown as PostgresPoolClient['query'],
        release: (err?: Error | boolean) => {
          tx.reset();
          client.release(err);
        },
        // Kysely reads the backend's pid from it (to cancel a query).
        get processID() {
          return (client as unknown as { processID?: number }).processID;
        },
      };
      wrapped.set(client, w);
    }
    return w;
  };
  return {
    Client: pg.Client as unknown as PostgresPool['Client'],
    options: pool.options,
    connect: async () => wrap(await pool.connect()),
    end: () => pool.end(),
  };
}

const answer = (command: string) => Promise.resolve({ command, rowCount: null, rows: [], fields: [], oid: 0 } as QueryResult);

/**
 * One connection's transaction as pipelining sees it: a BEGIN not yet sent, statements marked
 * WITH_NEXT not yet sent (they go with the next one), a COMMIT already sent.
 */
class PipelinedTransaction {
  #begin: string | undefined;
  #waiting: Leading[] = [];
  #open = false;
  #committed = false;

  reset(): void {
    this.#begin = undefined;
    this.#waiting = [];
    this.#open = false;
    this.#committed = false;
  }

  query(
    text: string,
    values: unknown[],
    send: (text: string, values: unknown[]) => Promise<QueryResult>,
    pipelined: (q: Omit<PipelineConfig, 'name'>) => void,
  ): Promise<QueryResult> {
    if (this.#committed) {
      this.reset();
      if (text === 'commit') return answer('COMMIT');
      // Nothing may follow a statement that committed its transaction, least of all a rollback.
      return Promise.reject(new Error(`"${text.slice(0, 40)}" after a transaction that committed with its last statement`));
    }
    if (isBegin(text) && values.length === 0 && !this.#open) {
      this.#begin = text;
      this.#open = true;
      return answer('BEGIN');
    }
    if (this.#open && text.startsWith(WITH_NEXT)) {
      // Its rows arrive in this array with the answer of the statement it rides with.
      const rows: unknown[] = [];
      this.#waiting.push({ text, values, rows });
      return Promise.resolve({ command: 'SELECT', rowCount: null, rows, fields: [], oid: 0 } as unknown as QueryResult);
    }
    if (text === 'commit' && this.#waiting.length > 0) {
      // A commit right after a statement marked WITH_NEXT: that statement goes with the COMMIT.
      const last = this.#waiting.pop()!;
      return this.query(`${COMMIT_AFTER}${last.text}`, last.values!, send, pipelined).then((result) => {
        last.rows!.push(...result.rows);
        this.reset();
        return answer('COMMIT');
      });
    }
    if (text === 'commit' || text === 'rollback') {
      const unsent = this.#begin !== undefined;
      this.reset();
      // A transaction that sent nothing has nothing to end (a waiting statement is dropped with
      // the rollback it would have been rolled back by).
      if (unsent) return answer(text.toUpperCase());
      return send(text, values);
    }
    const before: Leading[] = [...(this.#begin === undefined ? [] : [{ text: this.#begin }]), ...this.#waiting];
    const after = this.#open && text.startsWith(COMMIT_AFTER) ? 'commit' : undefined;
    if (before.length === 0 && after === undefined) return send(text, values);
    this.#begin = undefined;
    this.#waiting = [];
    return new Promise((resolve, reject) => {
      pipelined({
        text,
        values,
        before: before.length === 0 ? undefined : before,
        after,
        callback: (err, result) => {
          if (err) return reject(err);
          if (after) {
            this.#open = false;
            this.#committed = true;
          }
          resolve(result);
        },
      });
    });
  }
}

class PoolerSafePostgresDialect extends PostgresDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionLockedMigrationsAdapter();
  }
}
