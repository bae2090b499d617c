import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import superjson from 'superjson';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { admin, client, createTestDatabase, key, REDIS_URL, seedSale, spawnApi, type SpawnedApi, testEnv } from '../../../test/harness.ts';

/**
 * SIGTERM while a payment is in flight: the process stops taking work (/readyz 503, no new
 * connections), lets the payment finish, and exits 0. The payment is made to wait by a row lock
 * on the payer that the test holds in an open transaction.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A tRPC mutation over node:http (one connection of its own, kept alive as a browser's or a load
 * balancer's is: with `agent: false` the request itself asked for `connection: close`, and the
 * server's drain was never seen to say so), to see the status and headers.
 */
function postRaw(url: string, procedure: string, input: unknown, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: { result?: { data: unknown }; error?: unknown } }>((resolve, reject) => {
    const body = JSON.stringify(superjson.serialize(input));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const req = http.request(`${url}/trpc/${procedure}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      res.once('end', () => agent.destroy());
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Whether a new TCP connection is accepted and answered; refused or closed without an answer both count as "not taking work". */
function newConnectionAnswers(port: number): Promise<'refused' | 'closed' | 'answered'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    s.on('data', (d) => (got += d));
    s.once('connect', () => s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'closed'));
    s.once('close', () => resolve(got.startsWith('HTTP/1.1 200') ? 'answered' : 'closed'));
    setTimeout(() => {
      s.destroy();
      resolve(got ? 'answered' : 'closed');
    }, 2_000).unref();
  });
}

describe('graceful shutdown drains an in-flight payment', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let api: SpawnedApi;
  let after: SpawnedApi | undefined;
  let locker: InstanceType<typeof pg.Client>;
  /** Outside any transaction: pg_stat_activity is a snapshot taken once per transaction. */
  let watch: InstanceType<typeof pg.Client>;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    env = testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: `opsdown${randomBytes(4).toString('hex')}:`, LOG_LEVEL: 'info' });
    api = await spawnApi(env);
    locker = new pg.Client({ connectionString: db.url });
    watch = new pg.Client({ connectionString: db.url });
    await Promise.all([locker.connect(), watch.connect()]);
  });
  afterAll(async () => {
    await locker?.query('ROLLBACK').catch(() => {});
    await locker?.end();
    await watch?.end();
    await api?.stop('SIGKILL');
    await after?.stop();
    await db?.drop();
  });

  it('SIGTERM: readiness 503, no new connections, the blocked payment completes with 200, exit code 0', async () => {
    const sale = await seedSale(api.url, { users: 1, balance: 1_000_000 });
    const userId = sale.userIds[0]!;
    await admin(api.url).admin.queue.configure.mutate({ concertId: sale.concertId, maxActive: 100 });
    const t = await client(api.url, { userId }).queue.enter.mutate({ concertId: sale.concertId });
    const fan = client(api.url, { userId, queueToken: t.token }, { batch: false });
    const held = await fan.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [7, 8], idempotencyKey: key() });
    const port = Number(new URL(api.url).port);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => api.child.once('close', (code, signal) => resolve({ code, signal })));

    // A load balancer's readiness probe, already connected with its request started (a started request is not idle).
    const probe = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => probe.once('connect', resolve).once('error', reject));
    let probeAnswer = '';
    probe.on('data', (d) => (probeAnswer += d));
    const probeClosed = new Promise<void>((resolve) => probe.once('close', () => resolve()));
    probe.write('GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n');

    // Hold the payer's row, then pay: the payment's transaction waits on the lock.
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [userId]);
    const payKey = key('pay');
    const payment = postRaw(api.url, 'payments.pay', { reservationId: held.reservationId, idempotencyKey: payKey }, { 'x-user-id': String(userId), 'x-queue-token': t.token });
    const dbName = new URL(db.url).pathname.slice(1);
    let blocked = false;
    for (let i = 0; i < 100 && !blocked; i++) {
      const r = await watch.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [dbName]);
      blocked = r.rows[0].n > 0;
      if (!blocked) await sleep(50);
    }
    expect(blocked, 'the payment is waiting on the payer’s row lock').toBe(true);

    const termAt = Date.now();
    api.child.kill('SIGTERM');
    // Draining once new connections are no longer taken (whenever a busy machine delivers the signal).
    await vi.waitFor(async () => expect(['refused', 'closed']).toContain(await newConnectionAnswers(port)), { timeout: 15_000, interval: 50 });
    // The started probe is answered 503, and its connection is closed.
    probe.write('\r\n');
    await probeClosed;
    expect(probeAnswer).toMatch(/^HTTP\/1\.1 503/);
    expect(probeAnswer.toLowerCase()).toContain('connection: close');
    expect(probeAnswer).toContain('"draining":true');
    // The process waits for the payment rather than exiting under it.
    await sleep(700);
    expect(api.child.exitCode).toBeNull();

    const releasedAt = Date.now();
    await locker.query('COMMIT');
    const paid = await payment;
    expect(paid.status).toBe(200);
    expect(paid.headers.connection).toBe('close');
    const result = superjson.deserialize<{ status: string; reservationId: string; amount: number }>(paid.body.result!.data as never);
    expect([result.status, result.reservationId, result.amount]).toEqual(['COMPLETED', held.reservationId, 200_000]);
    const { code, signal } = await exited;
    const exitAt = Date.now();
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(api.output()).toContain('shutting down');
    expect(api.output()).not.toContain('drain timed out');

    // Another process on the same database: the payment is whole and the books balance.
    after = await spawnApi(env);
    const audit = await admin(after.url).admin.audit.query({});
    expect(audit.ok, JSON.stringify(audit.checks)).toBe(true);
    expect((await client(after.url, { userId }).reservations.get.query({ reservationId: held.reservationId })).status).toBe('PAID');
    expect((await client(after.url, { userId }).balance.get.query({})).balance).toBe(800_000);
    // A replay of the payment's key returns the same payment.
    const replay = await client(after.url, { userId }).payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: payKey });
    expect(replay.status).toBe('COMPLETED');
    console.log(`[ops.shutdown] SIGTERM -> exit ${exitAt - termAt} ms (lock held ${releasedAt - termAt} ms of it; drain after release ${exitAt - releasedAt} ms)`);
  });
});
