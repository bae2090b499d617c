import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, testEnv } from '../../../test/harness.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

/** Runs the API's entry point with this environment until it exits; its output and exit code. */
function runApi(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'packages/api/src/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
}

/**
 * Contract, Configuration: a bad value stops the process at start with one clear line naming the
 * variable. A listener that could not bind (HOST no address of this machine, PORT or METRICS_PORT
 * taken) died of an unhandled 'error' event instead: a Node stack trace naming no variable.
 */
describe('the API when it cannot listen', () => {
  let db: TestDatabase;
  const blocker = net.createServer();
  let taken: number;
  beforeAll(async () => {
    db = await createTestDatabase();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    taken = (blocker.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await db?.drop();
  });

  const expectOneLine = (r: { code: number | null; out: string }, names: RegExp, cause: RegExp) => {
    expect(r.code, r.out).toBe(1);
    const lines = r.out.split('\n').filter((l) => l.trim() && !l.includes('"level":40'));
    expect(lines, r.out).toHaveLength(1);
    expect(lines[0]).toMatch(names);
    expect(lines[0]).toMatch(cause);
    expect(r.out).not.toMatch(/Unhandled 'error' event|\n\s+at /);
  };

  it('exits 1 with one line naming PORT when the port is taken', async () => {
    expectOneLine(await runApi(testEnv(db.url, { HOST: '127.0.0.1', PORT: String(taken) })), /\bPORT\b/, /EADDRINUSE/);
  }, 90_000);

  it('exits 1 with one line naming METRICS_PORT when the metrics port is taken', async () => {
    expectOneLine(await runApi(testEnv(db.url, { HOST: '127.0.0.1', PORT: '0', METRICS_PORT: String(taken) })), /\bMETRICS_PORT\b/, /EADDRINUSE/);
  }, 90_000);

  it('exits 1 with one line naming HOST when HOST is not an address', async () => {
    expectOneLine(await runApi(testEnv(db.url, { HOST: '999.1.1.1', PORT: '0' })), /\bHOST\b/, /ENOTFOUND|EADDRNOTAVAIL/);
  }, 90_000);
});

/**
 * The same for a start that fails on what a setting points at: a database that refuses the
 * connection or does not exist, a data directory that cannot be made. The line said "could not
 * start" and the driver's error (ECONNREFUSED 127.0.0.1:1), naming no variable.
 */
describe('the API when its database cannot be reached or made', () => {
  const expectNamed = (r: { code: number | null; out: string }, names: RegExp, cause: RegExp) => {
    expect(r.code, r.out).toBe(1);
    const fatal = r.out.split('\n').filter((l) => l.includes('"level":60'));
    expect(fatal, r.out).toHaveLength(1);
    const msg = (JSON.parse(fatal[0]!) as { msg: string }).msg;
    expect(msg).toMatch(names);
    expect(msg).toMatch(cause);
    return msg;
  };

  it('names DATABASE_URL, without its password, when the server refuses the connection', async () => {
    const r = await runApi(testEnv('postgres://postgres:s3cretpw@127.0.0.1:1/concert', { PORT: '0' }));
    const msg = expectNamed(r, /^could not start: DATABASE_URL \(postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/concert\)/, /ECONNREFUSED/);
    expect(msg).not.toContain('s3cretpw');
    expect(r.out).not.toContain('s3cretpw');
  }, 90_000);

  it('names DATABASE_URL when the database does not exist', async () => {
    const url = 'postgres://postgres@127.0.0.1:5432/no_such_concert_db';
    expectNamed(await runApi(testEnv(url, { PORT: '0' })), /DATABASE_URL \(postgres:\/\/postgres@127\.0\.0\.1:5432\/no_such_concert_db\)/, /does not exist/);
  }, 90_000);

  it('names DATA_DIR when the embedded database\'s directory cannot be made', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-start-'));
    try {
      const file = path.join(dir, 'a-file');
      writeFileSync(file, '');
      const env = { ...testEnv('unused', { PORT: '0', DATA_DIR: path.join(file, 'data') }), DATABASE_URL: '', REDIS_URL: '' };
      expectNamed(await runApi(env), /DATA_DIR \(.*a-file\/data\)/, /ENOTDIR/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('names DATA_DIR under /proc, where Node\'s recursive mkdir never returned (the start spun a core)', async () => {
    const env = { ...testEnv('unused', { PORT: '0', DATA_DIR: '/proc/concert-data' }), DATABASE_URL: '', REDIS_URL: '' };
    expectNamed(await runApi(env), /DATA_DIR \(\/proc\/concert-data\)/, /ENOENT/);
  }, 90_000);
});
