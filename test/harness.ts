import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppRouter } from '@concert/api';
import { createServer } from '@concert/api';
import { type Clock, type Core, createCore, loadConfig } from '@concert/core';
import { createTRPCClient, httpBatchLink, httpLink, TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, vi } from 'vitest';
import pg from 'pg';
import { deleteRedisKeys as deleteKeysAt } from './redis-keys.ts';
import superjson from 'superjson';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ADMIN_KEY = 'test-admin-key-0123456789';
export const BASE_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A database of the suite's own on the real PostgreSQL, dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `concert_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: BASE_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(BASE_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: BASE_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export type TestDatabase = Awaited<ReturnType<typeof createTestDatabase>>;

/**
 * A database and an in-process API of the suite's own: made before the suite's tests (its own
 * beforeAll hooks run after this one) and removed after them. Read `.api` and `.db` inside tests.
 */
export function useApi(extraEnv: Record<string, string> = {}, opts: { clock?: Clock } = {}): { api: TestApi; db: TestDatabase } {
  const suite = {} as { api: TestApi; db: TestDatabase };
  beforeAll(async () => {
    suite.db = await createTestDatabase();
    suite.api = await startApi(testEnv(suite.db.url, extraEnv), opts);
  });
  afterAll(async () => {
    await suite.api?.close();
    await suite.db?.drop();
  });
  return suite;
}

export function testEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    ADMIN_API_KEY: ADMIN_KEY,
    QUEUE_TOKEN_SECRET: 'test-queue-token-secret-0123456789abcdef',
    SEED_DEMO: 'never',
    // Suites run three at a time (vitest.config.ts), each with up to three API processes: stay under max_connections (100).
    DB_POOL_SIZE: '8',
    LOG_LEVEL: 'warn',
    // The vitest project that runs the suites through tRPC's own handler only (vitest.config.ts).
    ...(process.env.TRPC_FAST_PATH ? { TRPC_FAST_PATH: process.env.TRPC_FAST_PATH } : {}),
    ...extra,
  };
}

export interface TestApi {
  url: string;
  core: Core;
  close(): Promise<void>;
}

/** The API in this process, on a port of its own. */
export async function startApi(env: Record<string, string>, opts: { clock?: Clock; background?: boolean } = {}): Promise<TestApi> {
  const core = await createCore(loadConfig(env), opts.clock ? { clock: opts.clock } : {});
  const server = createServer(core);
  // `background: false` leaves out the timers (admission ticks, sweeps, deliveries): a caller
  // that records the statements of one request sees that request's only.
  if (opts.background !== false) core.startBackgroundWork();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    core,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await core.close();
    },
  };
}

export interface SpawnedApi {
  url: string;
  /** Where its /metrics are served (METRICS_PORT: a free port unless the env gives one; '' serves none). */
  metricsUrl: string;
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * The API as its own OS process, for multi-process tests: its sources through tsx, or with
 * `compiled` what `pnpm start` and the image run (packages/api/dist, built by the caller with
 * `tsc -b packages/api/tsconfig.build.json`).
 */
export async function spawnApi(env: Record<string, string>, opts: { compiled?: boolean; nodeArgs?: string[]; firstPort?: number } = {}): Promise<SpawnedApi> {
  // freePort() closes the port it found before the API binds it, so another process (or the
  // other spawnApi of a Promise.all) can take it in between: start again on fresh ports then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnApiOnce(env, opts, attempt === 1 ? opts.firstPort : undefined);
    } catch (err) {
      if (attempt >= 5 || !(err instanceof PortTaken)) throw err;
    }
  }
}

class PortTaken extends Error {}

async function spawnApiOnce(env: Record<string, string>, opts: { compiled?: boolean; nodeArgs?: string[] }, fixedPort?: number): Promise<SpawnedApi> {
  const port = fixedPort ?? (await freePort());
  const metricsPort = env.METRICS_PORT ?? String(await freePort());
  const entry = opts.compiled
    ? ['--conditions=concert-dist', path.join(ROOT, 'packages/api/dist/main.js')]
    : ['--import', 'tsx', path.join(ROOT, 'packages/api/src/main.ts')];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...entry], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', METRICS_PORT: metricsPort },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  // 'close', not 'exit': the output is all read by then (what an early exit said is in the error).
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  // Generous: on a busy two-core machine a cold start (tsx transpiling the sources) can take a while.
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) {
      await exited;
      throw new (/EADDRINUSE/.test(out) ? PortTaken : Error)(`API process exited early:\n${out}`);
    }
    // Bounded: whatever holds a taken port may accept the connection and never answer.
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`API process did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * A TCP proxy in front of a real server (PostgreSQL, Redis) that a test cuts (every connection
 * reset, new ones refused, as when the server restarts) and restores on the same port.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async start(): Promise<void> {
    const server = net.createServer((down) => {
      const up = net.connect(this.target);
      this.sockets.add(down).add(up);
      const end = () => {
        down.destroy();
        up.destroy();
        this.sockets.delete(down);
        this.sockets.delete(up);
      };
      down.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
      down.pipe(up);
      up.pipe(down);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Stops listening and resets every open connection. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    await closed;
  }
}

/** Whether something accepts TCP connections on this loopback port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface ClientIdentity {
  userId?: number;
  bearer?: string;
  queueToken?: string;
  adminKey?: string;
  headers?: Record<string, string>;
}

/**
 * A typed client as a frontend would build it. `batch: false` sends one HTTP request per call;
 * without it, calls are batched, unless the vitest project `fast-path` (TEST_TRPC_LINK=single)
 * sends every call on its own, so the hot procedures take the server's fast path.
 */
export function client(url: string, who: ClientIdentity = {}, opts: { batch?: boolean } = {}) {
  const batch = opts.batch ?? process.env.TEST_TRPC_LINK !== 'single';
  const headers = () => ({
    ...(who.userId !== undefined ? { 'x-user-id': String(who.userId) } : {}),
    ...(who.bearer ? { authorization: `Bearer ${who.bearer}` } : {}),
    ...(who.queueToken ? { 'x-queue-token': who.queueToken } : {}),
    ...(who.adminKey ? { 'x-admin-key': who.adminKey } : {}),
    ...who.headers,
  });
  const link = !batch ? httpLink({ url: `${url}/trpc`, transformer: superjson, headers }) : httpBatchLink({ url: `${url}/trpc`, transformer: superjson, headers });
  return createTRPCClient<AppRouter>({ links: [link] });
}

export const admin = (url: string) => client(url, { adminKey: ADMIN_KEY });

/** Every item of a paged list, fetching page after page (100 at a time) until nextCursor is null. */
export async function everyPage<T>(fetchPage: (page: { limit: number; cursor?: string }) => Promise<{ items: T[]; nextCursor: string | null }>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetchPage({ limit: 100, ...(cursor !== undefined ? { cursor } : {}) });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return items;
}

/** The appCode of a failed call, or 'OK' when it succeeded: handy for tallying races. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    if (err instanceof TRPCClientError) return String((err.data as { appCode?: string } | undefined)?.appCode ?? `HTTP_${err.data?.httpStatus}`);
    throw err;
  }
}

/** How long a call took, and its appCode ('OK' on success, 'NETWORK' with no answer) and HTTP status. */
export async function timed(p: () => Promise<unknown>): Promise<{ code: string; ms: number; httpStatus?: number }> {
  const started = performance.now();
  try {
    await p();
    return { code: 'OK', ms: performance.now() - started };
  } catch (err) {
    const ms = performance.now() - started;
    if (err instanceof TRPCClientError) {
      const data = err.data as { appCode?: string; httpStatus?: number } | undefined;
      return { code: data?.appCode ?? 'NETWORK', ms, ...(data?.httpStatus ? { httpStatus: data.httpStatus } : {}) };
    }
    throw err;
  }
}

/** Expects the call to fail with this appCode, and returns the error. */
export async function expectAppError(p: Promise<unknown>, appCode: string): Promise<TRPCClientError<AppRouter>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TRPCClientError && (err.data as { appCode?: string } | undefined)?.appCode === appCode) return err;
    throw new Error(`expected ${appCode}, got ${err instanceof TRPCClientError ? JSON.stringify(err.data) : String(err)}`);
  }
  throw new Error(`expected ${appCode}, but the call succeeded`);
}

export function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

export function key(prefix = 'k'): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

/** A concert with one open schedule in the future, and funded users. */
export async function seedSale(url: string, opts: { seatCount?: number; users?: number; balance?: number } = {}) {
  const a = admin(url);
  const now = Date.now();
  const concert = await a.admin.concerts.create.mutate({
    title: `Test concert ${key()}`,
    venue: 'Test Hall',
    schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: opts.seatCount ?? 50 }],
  });
  const userIds: number[] = [];
  for (let i = 0; i < (opts.users ?? 1); i++) {
    userIds.push((await a.admin.users.create.mutate({ name: `user ${i}`, initialBalance: opts.balance ?? 1_000_000 })).userId);
  }
  return { concertId: concert.concertId, scheduleId: concert.schedules[0]!.scheduleId, userIds };
}

/** Deletes every key under a prefix, on a single Redis or on each master of a Redis Cluster. */
export const deleteRedisKeys = (prefix: string) => deleteKeysAt(REDIS_URL, prefix);

/**
 * Every statement this process's node-postgres clients send from now on (their texts, in order),
 * until `vi.restoreAllMocks()`: for tests that count the round trips an in-process API makes.
 */
export function recordStatements(): string[] {
  const sent: string[] = [];
  const query = pg.Client.prototype.query;
  vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: InstanceType<typeof pg.Client>, ...args: unknown[]) {
    // A statement sent with its transaction's BEGIN or COMMIT in one round trip (DB_PIPELINE,
    // db/pipeline.ts) carries them beside its text: recorded in the order they run.
    const q = args[0] as string | { text?: string; before?: Array<{ text: string }>; after?: string };
    if (typeof q === 'string') sent.push(q);
    else {
      for (const l of q?.before ?? []) sent.push(l.text);
      sent.push(q?.text ?? '');
      if (q?.after) sent.push(q.after);
    }
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query);
  return sent;
}
