import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, deleteRedisKeys, REDIS_URL, seedSale, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';

/**
 * A client that sends batches of reads and hangs up at once (an outside hostile review, third
 * round): 20 connections sending GET batches of 50 `concerts.list` calls with a junk `x-user-id`
 * (which nginx's per-address limit does not count) and leaving after 5 ms made about 1,000
 * requests in 15 s, and every other client's `concerts.get` timed out at 10 s: the abandoned
 * calls' queries still waited for the database pool, one after another, and ran.
 */

const CALLS = 50;
const path = `/trpc/${Array<string>(CALLS).fill('concerts.list').join(',')}?batch=1&input=${encodeURIComponent(
  JSON.stringify(Object.fromEntries(Array.from({ length: CALLS }, (_, i) => [i, { json: { limit: 100 } }]))),
)}`;

describe('calls whose client has gone', () => {
  let db: TestDatabase;
  let api: SpawnedApi;
  const prefix = `abandoned${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix, DB_POOL_SIZE: '5' }));
    await seedSale(api.url, { users: 1 });
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
    await deleteRedisKeys(prefix);
  });

  /** How many concerts.list calls ran to an answer, from the process's own metrics. */
  async function listCallsRun(): Promise<number> {
    const text = await (await fetch(`${api.metricsUrl}/metrics`)).text();
    const m = /concert_procedure_duration_seconds_count\{procedure="concerts\.list",outcome="ok"\} (\d+)/.exec(text);
    return m ? Number(m[1]) : 0;
  }

  /** 20 connections, each sending `request` and hanging up 5 ms later, over and over until stopped: calls sent. */
  function flood(request: string, calls: number): { stop: () => Promise<number> } {
    const port = Number(new URL(api.url).port);
    let stopped = false;
    let sent = 0;
    const worker = async () => {
      while (!stopped) {
        await new Promise<void>((resolve) => {
          const socket = net.connect(port, '127.0.0.1');
          socket.on('error', () => {});
          socket.on('close', () => resolve());
          socket.on('connect', () => {
            socket.write(request);
            sent += calls;
            setTimeout(() => socket.destroy(), 5);
          });
        });
      }
    };
    const workers = Promise.all(Array.from({ length: 20 }, worker));
    return {
      stop: async () => {
        stopped = true;
        await workers;
        return sent;
      },
    };
  }

  /** The calls of concerts.list run since `before`, once the process has finished what it had in hand. */
  async function settledRuns(before: number): Promise<number> {
    let ran = -1;
    await expect
      .poll(
        async () => {
          const last = ran;
          ran = (await listCallsRun()) - before;
          return ran === last;
        },
        { timeout: 60_000, interval: 1_000 },
      )
      .toBe(true);
    return ran;
  }

  it('take turns with other clients: batches of one do not keep the read of another waiting', { timeout: 120_000 }, async () => {
    // 20 batches of 50 reads from clients that stay (1,000 calls for 5 read slots), then one read
    // from another client: first come, first served, it ran after every call of the batches.
    const ranBefore = await listCallsRun();
    const answered: string[] = [];
    const batchUrl = `${api.url}${path}`;
    const batches = Array.from({ length: 20 }, async (_, i) => {
      const r = await fetch(batchUrl, { headers: { 'x-user-id': 'junk' }, signal: AbortSignal.timeout(100_000) });
      await r.arrayBuffer();
      answered.push(`batch ${i}`);
      return r.status;
    });
    // The batches are in the process (their first calls have run) before the other client asks.
    await expect.poll(async () => (await listCallsRun()) - ranBefore, { timeout: 60_000, interval: 20 }).toBeGreaterThanOrEqual(20);
    const probe = await fetch(`${api.url}/trpc/concerts.get?input=${encodeURIComponent(JSON.stringify({ json: { concertId: 1 } }))}`, { signal: AbortSignal.timeout(100_000) });
    await probe.arrayBuffer();
    answered.push('probe');
    const statuses = await Promise.all(batches);
    console.log(`answered in this order: ${answered.join(', ')}`);
    expect(probe.status).toBe(200);
    expect(statuses).toEqual(Array(20).fill(200));
    expect(answered.indexOf('probe'), 'batches answered before the read of the other client').toBe(0);
  });

  it('are not run for a client that hung up, and other clients are answered meanwhile', { timeout: 120_000 }, async () => {
    const ranBefore = await listCallsRun();
    const batches = flood(`GET ${path} HTTP/1.1\r\nhost: x\r\nx-user-id: junk\r\n\r\n`, CALLS);
    // Another client's reads while the flood runs: each must be answered.
    const probes: number[] = [];
    const refused: number[] = [];
    const until = performance.now() + 6_000;
    while (performance.now() < until) {
      const t = performance.now();
      const r = await fetch(`${api.url}/trpc/concerts.get?input=${encodeURIComponent(JSON.stringify({ json: { concertId: 1 } }))}`, { signal: AbortSignal.timeout(30_000) });
      await r.arrayBuffer();
      if (r.status !== 200) refused.push(r.status);
      probes.push(performance.now() - t);
    }
    const sent = await batches.stop();
    const ran = await settledRuns(ranBefore);
    const worst = Math.max(...probes);
    console.log(`${sent} calls sent by clients that hung up after 5 ms; ${ran} ran (${((ran / sent) * 100).toFixed(1)}%); ${probes.length} probes, worst ${worst.toFixed(0)} ms, ${refused.length} refused`);
    expect(refused, 'statuses of the probes not answered 200').toEqual([]);
    expect(sent).toBeGreaterThan(1_000);
    // Before the change: 2 probes in the 6 s, the worst 7.5 s, one refused 503 (the pool's wait ran out).
    expect(probes.length, 'probes answered in the 6 s of the flood').toBeGreaterThanOrEqual(10);
  });
});
