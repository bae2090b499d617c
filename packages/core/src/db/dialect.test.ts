import { spawn } from 'node:child_process';
import { closeSync, type linkSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/harness.ts';
import { createDialect, createExclusive, EMPTY_GRACE_MS, lockDataDir, MAX_PREPARED, preparing } from './dialect.ts';

/** Named statements (DB_PREPARED_STATEMENTS=on): planned once per connection, bounded in number, one Kysely connection per client. */
describe('the preparing pool', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** The named statements this connection has prepared (pg_prepared_statements is per session). */
  const prepared = (k: Kysely<unknown>) =>
    sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements WHERE NOT from_sql ORDER BY name`.execute(k).then((r) => r.rows);

  it('runs each statement text as one named statement, prepared once per connection', async () => {
    const k = new Kysely<unknown>({ dialect: createDialect({ databaseUrl: db.url, dataDir: 'memory://', poolSize: 1, prepared: true }).dialect });
    try {
      for (let i = 0; i < 5; i++) expect((await sql<{ n: number }>`SELECT ${i}::int + 1 AS n`.execute(k)).rows[0]!.n).toBe(i + 1);
      const names = await prepared(k);
      const mine = names.filter((p) => p.statement.includes('AS n'));
      expect(mine).toHaveLength(1);
      expect(mine[0]!.name).toMatch(/^concert_\d+$/);
      // A transaction's statements are named too.
      await k.transaction().execute(async (trx) => {
        await sql`SELECT 41 AS inside`.execute(trx);
      });
      expect((await prepared(k)).some((p) => p.statement.includes('AS inside'))).toBe(true);
    } finally {
      await k.destroy();
    }
  });

  it('without it, nothing is prepared (as behind PgBouncer 1.18)', async () => {
    const k = new Kysely<unknown>({ dialect: createDialect({ databaseUrl: db.url, dataDir: 'memory://', poolSize: 1, prepared: false }).dialect });
    try {
      await sql`SELECT 1 AS n`.execute(k);
      expect(await prepared(k)).toEqual([]);
    } finally {
      await k.destroy();
    }
  });

  it(`names at most ${MAX_PREPARED} texts; any further text runs unnamed and still answers`, async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const wrapped = preparing(pool);
    try {
      const client = await wrapped.connect();
      for (let i = 0; i < MAX_PREPARED + 20; i++) {
        const r = await client.query<{ n: number }>(`SELECT ${i} AS n`, []);
        expect(r.rows[0]!.n).toBe(i);
      }
      const r = await client.query<{ count: string }>('SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql', []);
      // The counting statement itself is past the limit too.
      expect(Number(r.rows[0]!.count)).toBe(MAX_PREPARED);
      client.release();
      // The same pooled client comes back as the same object (Kysely keeps a connection per client).
      const again = await wrapped.connect();
      expect(again).toBe(client);
      again.release();
    } finally {
      await wrapped.end();
    }
  });
});

/** Two `pnpm start` on one DATA_DIR each served a database of its own (a charge through one was missing from the other). */
describe('the embedded database directory', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'concert-datadir-'));
  const pidFile = path.join(dir, 'concert.pid');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is refused while another live process holds it, naming the process and the file', async () => {
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      writeFileSync(pidFile, `${other.pid}\n`);
      expect(() => createDialect({ dataDir: dir, poolSize: 1 })).toThrow(`in use by process ${other.pid} (${pidFile})`);
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(other.pid));
    } finally {
      other.kill();
      await new Promise((resolve) => other.once('exit', resolve));
    }
    // The process is gone: its file is stale, and this process takes the directory over.
    lockDataDir(dir);
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(process.pid));
    // Reopened by the same process (an API restarted in a test, a container's pid 1 after a restart).
    lockDataDir(dir);
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(process.pid));
  });
});

// Two processes that read the same stale file both removed it: the second removed the file the
// first had just written in its place, and both served the directory.
describe('the embedded database directory, taken over from a process that is gone', () => {
  const dead = async () => {
    const gone = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((resolve) => gone.once('exit', resolve));
    return gone.pid!;
  };

  it('is not taken from a process that took it over first (between this one’s read and its removal)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-takeover-'));
    const pidFile = path.join(dir, 'concert.pid');
    const first = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      writeFileSync(pidFile, `${await dead()}\n`);
      // The other process, having read the same stale file, removes it and writes its own.
      const winner = () => writeFileSync(pidFile, `${first.pid}\n`);
      expect(() => lockDataDir(dir, { beforeTakeOver: winner })).toThrow(`in use by process ${first.pid} (${pidFile})`);
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(first.pid));
    } finally {
      first.kill();
      await new Promise((resolve) => first.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('goes to exactly one of several processes starting at once', { timeout: 120_000 }, async () => {
    const root = path.join(import.meta.dirname, '..', '..', '..', '..');
    const child = `import { lockDataDir } from ${JSON.stringify(path.join(import.meta.dirname, 'dialect.ts'))};
      process.stdout.write('ready\\n');
      process.stdin.once('data', () => {
        let out = 'ok';
        try { lockDataDir(process.argv[1]); } catch (err) { out = String(err.message).startsWith('in use by process') ? 'refused' : String(err); }
        process.stdout.write(out + '\\n');
        process.stdin.once('data', () => process.exit(0));
      });`;
    for (let round = 0; round < 3; round++) {
      const dir = mkdtempSync(path.join(tmpdir(), 'concert-takeover-'));
      writeFileSync(path.join(dir, 'concert.pid'), `${await dead()}\n`);
      const kids = Array.from({ length: 6 }, () =>
        spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child, dir], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] }),
      );
      const lines = kids.map((k) => {
        const got: string[] = [];
        let rest = '';
        k.stdout.on('data', (d: Buffer) => {
          const parts = (rest + d.toString()).split('\n');
          rest = parts.pop()!;
          got.push(...parts);
        });
        return got;
      });
      try {
        // All loaded, then all told to go at once.
        await vi.waitFor(() => expect(lines.every((l) => l[0] === 'ready')).toBe(true), { timeout: 60_000, interval: 20 });
        for (const k of kids) k.stdin.write('go\n');
        await vi.waitFor(() => expect(lines.every((l) => l.length === 2)).toBe(true), { timeout: 30_000, interval: 20 });
        const got = lines.map((l) => l[1]);
        expect({ round, ok: got.filter((a) => a === 'ok').length, refused: got.filter((a) => a === 'refused').length }).toEqual({ round, ok: 1, refused: 5 });
      } finally {
        for (const k of kids) k.stdin.end('bye\n');
        await Promise.all(kids.map((k) => new Promise((resolve) => (k.exitCode !== null ? resolve(null) : k.once('exit', resolve)))));
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

// CI: two of six processes starting at once both served the directory. The pid file was created
// empty and written after; a process reading it in between took it for a file of no live process.
describe('the pid file of the embedded database', () => {
  it('is never seen empty by another process while it is made', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-pidfile-'));
    const file = path.join(dir, 'concert.pid');
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); let empty = 0, full = 0;
        process.stdout.write('ready\\n');
        const end = Date.now() + 1500;
        while (Date.now() < end) { try { fs.readFileSync(process.argv[1], 'utf8') === '' ? empty++ : full++; } catch {} }
        process.stdout.write(JSON.stringify({ empty, full }) + '\\n');`,
        file,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await vi.waitFor(() => expect(out).toContain('ready'), { timeout: 30_000, interval: 10 });
      let made = 0;
      while (reader.exitCode === null && !out.includes('}')) {
        expect(createExclusive(file, `${process.pid}\n`)).toBe(true);
        rmSync(file);
        made++;
        if (made % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await vi.waitFor(() => expect(out).toContain('}'), { timeout: 30_000, interval: 10 });
      const seen = JSON.parse(out.split('\n')[1]!) as { empty: number; full: number };
      expect(seen.full).toBeGreaterThan(0);
      expect(seen).toEqual({ empty: 0, full: seen.full });
      expect(made).toBeGreaterThan(100);
    } finally {
      reader.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is made once: a second maker is told it exists, and leaves no file of its own', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-pidfile-'));
    const file = path.join(dir, 'concert.pid');
    try {
      expect(createExclusive(file, 'first\n')).toBe(true);
      expect(createExclusive(file, 'second\n')).toBe(false);
      expect(readFileSync(file, 'utf8')).toBe('first\n');
      expect(readdirSync(dir)).toEqual(['concert.pid']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Where hard links are refused, the file is made with `wx` and may be seen empty for a moment.
  it('found empty and young, is waited for: it is a file being written by a process starting beside this one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-pidfile-'));
    const file = path.join(dir, 'concert.pid');
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `process.stdin.once('data', () => setTimeout(() => require('node:fs').writeFileSync(process.argv[1], process.pid + '\\n'), 100));
        process.stdout.write('ready\\n'); setTimeout(() => {}, 60_000);`,
        file,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    writer.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      // Loaded and listening, so its write lands well inside the wait.
      await vi.waitFor(() => expect(out).toContain('ready'), { timeout: 30_000, interval: 10 });
      writeFileSync(file, '');
      writer.stdin.write('go\n');
      expect(() => lockDataDir(dir)).toThrow(`in use by process ${writer.pid} (${file})`);
    } finally {
      writer.kill();
      await new Promise((resolve) => (writer.exitCode !== null || writer.signalCode !== null ? resolve(null) : writer.once('exit', resolve)));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // By this process's clock: an mtime ahead of it (a file server's clock, this one stepped back)
  // kept the file young for ever (an outside review).
  it('found empty for longer than the wait, by this process’s clock, is a crash’s leftover and taken over, whatever its mtime', () => {
    for (const mtime of [Date.now() - EMPTY_GRACE_MS - 60_000, Date.now() + 3_600_000]) {
      const dir = mkdtempSync(path.join(tmpdir(), 'concert-pidfile-'));
      const file = path.join(dir, 'concert.pid');
      try {
        writeFileSync(file, '');
        utimesSync(file, mtime / 1000, mtime / 1000);
        const started = performance.now();
        lockDataDir(dir);
        expect(performance.now() - started).toBeGreaterThanOrEqual(EMPTY_GRACE_MS);
        expect(readFileSync(file, 'utf8').trim()).toBe(String(process.pid));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  // Where hard links are refused, a process that removed the empty leftover under the guard first
  // and made its own file (empty until its pid is written) had it removed by this one, and both
  // served the directory (an outside review).
  it('leaves an empty file made after the leftover it gave up on, and finds its maker', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-pidfile-'));
    const file = path.join(dir, 'concert.pid');
    // An empty leftover (a crash where hard links are refused).
    writeFileSync(file, '');
    // The other process: once its own file exists (not the leftover), empty, it writes its pid into it.
    const other = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); const [file, leftover] = [process.argv[1], Number(process.argv[2])]; process.stdout.write('ready\\n');
        const t = setInterval(() => { try { if (fs.statSync(file).ctimeMs > leftover && fs.readFileSync(file, 'utf8') === '') { fs.writeFileSync(file, process.pid + '\\n'); clearInterval(t); } } catch {} }, 5);
        setTimeout(() => {}, 60_000);`,
        file,
        String(statSync(file).ctimeMs),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    other.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await vi.waitFor(() => expect(out).toContain('ready'), { timeout: 30_000, interval: 10 });
      let made = false;
      const refused = () =>
        lockDataDir(dir, {
          // A leftover that reads as no live holder's; the other removes it and makes its own, empty.
          beforeTakeOver: () => {
            if (made) return;
            made = true;
            unlinkSync(file);
            closeSync(openSync(file, 'wx'));
          },
        });
      expect(refused).toThrow(`in use by process ${other.pid} (${file})`);
    } finally {
      other.kill();
      await new Promise((resolve) => (other.exitCode !== null || other.signalCode !== null ? resolve(null) : other.once('exit', resolve)));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is made where hard links are refused, and a process killed between its two steps leaves nothing for good', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-pidfile-'));
    const file = path.join(dir, 'concert.pid');
    const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      const refused = (() => {
        throw Object.assign(new Error('operation not permitted'), { code: 'EPERM' });
      }) as typeof linkSync;
      // A dead process's leftovers go; a live one's (between its write and its link) stay.
      writeFileSync(`${file}.999999999.abc`, '999999999\n');
      writeFileSync(`${file}.takeover.999999999.abc`, '999999999\n');
      writeFileSync(`${file}.${alive.pid}.def`, `${alive.pid}\n`);
      lockDataDir(dir, { link: refused });
      expect(readFileSync(file, 'utf8').trim()).toBe(String(process.pid));
      expect(readdirSync(dir).sort()).toEqual(['concert.pid', `concert.pid.${alive.pid}.def`]);
    } finally {
      alive.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pnpm db:migrate on a DATA_DIR in use', () => {
  // A second process on a server's directory is refused (above); `pnpm db:migrate` said so as an
  // uncaught exception's stack.
  it('says so in one line and exits 1, leaving the holder’s file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-migrate-'));
    const pidFile = path.join(dir, 'concert.pid');
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      writeFileSync(pidFile, `${holder.pid}\n`);
      const root = path.join(import.meta.dirname, '..', '..', '..', '..');
      const run = spawn(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(import.meta.dirname, 'migrate.cli.ts')], {
        env: { ...process.env, DATABASE_URL: '', REDIS_URL: '', DATA_DIR: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      run.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => run.once('close', resolve));
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toEqual([expect.stringContaining(`db:migrate: could not migrate: in use by process ${holder.pid}`)]);
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(holder.pid));
    } finally {
      holder.kill();
      await new Promise((resolve) => holder.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
