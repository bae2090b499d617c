import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, admin, createTestDatabase, deleteRedisKeys, REDIS_URL, seedSale, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';
import { appCodesOf, httpText, rawRequest } from '../../../test/raw-http.ts';

/**
 * Requests well under the 1 MiB body cap that once held a process's event loop for seconds, or
 * were answered with tens of megabytes (an outside hostile review, 2026-12-02, second round).
 * Each is refused or answered quickly, and the process keeps serving /healthz meanwhile.
 */

const PORT_OF = (url: string) => Number(new URL(url).port);

describe('work per request is bounded', () => {
  let db: TestDatabase;
  let api: SpawnedApi;
  let port: number;
  let userId: number;
  const prefix = `limits${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix }));
    port = PORT_OF(api.url);
    userId = (await seedSale(api.url, { users: 1 })).userIds[0]!;
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
    await deleteRedisKeys(prefix);
  });

  /** How long /healthz takes to answer while `during` is in flight (the event loop's stall). */
  async function healthzStallMs(during: Promise<unknown>): Promise<number> {
    let worst = 0;
    let done = false;
    void during.finally(() => (done = true));
    while (!done) {
      const t = performance.now();
      await fetch(`${api.url}/healthz`, { signal: AbortSignal.timeout(30_000) });
      worst = Math.max(worst, performance.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
    return worst;
  }

  // superjson's setDeep/getDeep walk a Set (or Map) from its start for every path that goes
  // through it (accessDeep.js getNthKey), so N referentialEqualities paths into an N-element Set
  // cost O(N^2): ~450 KB of body held the process for seconds (~790 KB: ~12 s, /healthz ~10 s).
  it('superjson paths into a large Set are refused before superjson walks them', { timeout: 60_000 }, async () => {
    const n = 30_000;
    const body = JSON.stringify({
      json: { amount: 1, idempotencyKey: 'limits-quadratic', s: Array.from({ length: n }, (_, i) => i), t: {} },
      meta: { values: { s: ['set'] }, referentialEqualities: { t: Array.from({ length: n }, () => `s.${n - 1}`) } },
    });
    expect(body.length).toBeLessThan(1024 * 1024);
    const request = rawRequest(port, httpText('POST', '/trpc/balance.charge', { headers: { 'x-user-id': String(userId), 'content-type': 'application/json' }, body }), { timeoutMs: 50_000 });
    const stall = await healthzStallMs(request);
    const r = await request;
    expect([r.status, appCodesOf(r.body).appCodes]).toEqual([400, ['INVALID_INPUT']]);
    expect(stall, 'the longest /healthz answer while the request ran (ms)').toBeLessThan(1_000);
    expect(r.ms).toBeLessThan(2_000);
  });

  // zod checks every element of seatNumbers before the array's max(4), and every failing element
  // is an issue; the error envelope (tRPC's formatter and REST's problem+json) sent them all: an
  // 800 KB body was answered with 13-27 MB after ~3.5-8 s of one core, and 8 such requests at once
  // held a process unresponsive for ~35 s at 1.7 GB RSS.
  for (const [name, target, body, headers] of [
    ['tRPC', '/trpc/reservations.hold', (n: number) => JSON.stringify({ json: { scheduleId: 1, seatNumbers: Array(n).fill('a'), idempotencyKey: 'limits-issues' } }), {}],
    ['REST', '/v1/reservations', (n: number) => JSON.stringify({ scheduleId: 1, seatNumbers: Array(n).fill('a') }), { 'idempotency-key': 'limits-issues' }],
  ] as const) {
    it(`${name}: an input with 100,000 bad array elements is refused quickly with a bounded error body`, { timeout: 60_000 }, async () => {
      const r = await rawRequest(port, httpText('POST', target, { headers: { 'x-user-id': String(userId), 'content-type': 'application/json', ...headers }, body: body(100_000) }), { timeoutMs: 50_000 });
      expect([r.status, appCodesOf(r.body).appCodes]).toEqual([400, ['INVALID_INPUT']]);
      expect(r.body).toContain('seatNumbers: an array of more than 1000 elements');
      expect(r.body.length, 'error body bytes').toBeLessThan(10_000);
      expect(r.ms).toBeLessThan(1_000);
    });

    it(`${name}: an input error carries the first 20 issues and counts the rest`, async () => {
      const r = await rawRequest(port, httpText('POST', target, { headers: { 'x-user-id': String(userId), 'content-type': 'application/json', ...headers }, body: body(1000) }));
      expect([r.status, appCodesOf(r.body).appCodes]).toEqual([400, ['INVALID_INPUT']]);
      const parsed = JSON.parse(r.body) as { error?: { json: { data: Record<string, unknown> } } } & Record<string, unknown>;
      const carrier = parsed.error ? parsed.error.json.data : parsed;
      expect([(carrier.issues as unknown[]).length, carrier.issuesOmitted]).toEqual([20, 981]);
    });
  }

  // REST read and parsed a POST's body before it knew who was calling (tRPC reads it only once
  // identity has passed): 1,000 anonymous connections that each sent all but the last byte of a
  // 1 MB body held ~1.3 GB in the process until the request timeout (30 s), and /healthz
  // stalled for seconds when they were let go. The body is now never read for an anonymous caller.
  for (const [name, target, status, appCode] of [
    ['REST', '/v1/balance/charges', 401, 'IDENTITY_REQUIRED'],
    ['REST, a forged identity', '/v1/reservations', 401, 'IDENTITY_REQUIRED'],
    ['tRPC', '/trpc/balance.charge', 401, 'IDENTITY_REQUIRED'],
  ] as const) {
    it(`${name}: an anonymous POST is refused before its body arrives`, async () => {
      const headers = { 'content-type': 'application/json', 'content-length': '1000000', 'idempotency-key': 'limits-anonymous', ...(name.includes('forged') ? { 'x-user-id': 'x' } : {}) };
      // The headers and the body's first byte only; the rest never comes.
      const head = `POST ${target} HTTP/1.1\r\nhost: x\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n{`;
      const r = await rawRequest(port, head, { timeoutMs: 5_000 });
      expect({ status: r.status, appCodes: appCodesOf(r.body).appCodes, error: r.error }).toEqual({ status, appCodes: [appCode], error: undefined });
    });
  }

  // A body of ~150,000 nested objects (or 500,000 nested arrays), under the 1 MiB cap, cost
  // ~0.5 s of JSON.parse and as long again of the walk that bounds arrays, per request; four at
  // once held /healthz for ~4.7 s (an outside hostile review, third round). Nesting is bounded
  // (MAX_INPUT_DEPTH): the paths that parse the body themselves (REST, the fast path) refuse it
  // before JSON.parse, tRPC's handler (a batch) before the walk.
  for (const [name, target, body, headers] of [
    ['tRPC fast path', '/trpc/reservations.hold', (deep: string) => `{"json":{"scheduleId":1,"seatNumbers":${deep},"idempotencyKey":"limits-deep"}}`, {}],
    ['tRPC batch', '/trpc/reservations.hold?batch=1', (deep: string) => `{"0":{"json":{"scheduleId":1,"seatNumbers":${deep},"idempotencyKey":"limits-deep"}}}`, {}],
    ['REST', '/v1/reservations', (deep: string) => `{"scheduleId":1,"seatNumbers":${deep}}`, { 'idempotency-key': 'limits-deep' }],
  ] as const) {
    it(`${name}: an input nested 150,000 deep is refused as too deep, and nesting within the bound still reads`, { timeout: 60_000 }, async () => {
      const n = 150_000;
      const text = body('{"a":'.repeat(n) + '1' + '}'.repeat(n));
      expect(text.length).toBeLessThan(1024 * 1024);
      const send = (t: string) => rawRequest(port, httpText('POST', target, { headers: { 'x-user-id': String(userId), 'content-type': 'application/json', ...headers }, body: t }), { timeoutMs: 50_000 });
      const r = await send(text);
      expect([r.status, appCodesOf(r.body).appCodes]).toEqual([400, ['INVALID_INPUT']]);
      expect(r.body).toContain('the input nests deeper than 64 levels');
      // 60 levels (an input's own limit is 64) is the schema's to refuse, not the bound's.
      const within = await send(body('['.repeat(60) + ']'.repeat(60)));
      expect(within.status).toBe(400);
      expect(within.body).not.toContain('nests deeper');
    });
  }

  // GET /docs/scalar.js is kept gzipped, and a client that did not accept gzip got it gunzipped
  // on every request (~50-60 ms of one core for 4.8 MB): 100 such unauthenticated GETs at once
  // held /healthz for ~6 s.
  it('a flood of /readyz probes shares one check at a time, not a database connection and a Redis PING each', async () => {
    // Each check pings Redis once. Redis's own count of PINGs took any other client's too, and a
    // suite running beside this one (readiness polls of its own servers) once made it 287 of a
    // bound of 250: the PINGs counted are the API process's own, by its connections' ports, as
    // Redis's MONITOR sees them.
    const ports = redisPortsOf(api.child.pid!);
    expect(ports.size).toBeGreaterThan(0);
    const marker = `end-${randomBytes(8).toString('hex')}`;
    let ran = 0;
    let markerSeen = false;
    const monitor = await redisMonitor((args, source) => {
      if (args[0]?.toLowerCase() === 'ping' && ports.has(Number(source.split(':').at(-1)))) ran++;
      if (args[1] === marker) markerSeen = true;
    });
    const other = new Redis(REDIS_URL);
    try {
      const probes = 1_000;
      const answers = await Promise.all(
        Array.from({ length: probes }, async () => {
          const r = await fetch(`${api.url}/readyz`, { signal: AbortSignal.timeout(60_000) });
          return { status: r.status, body: (await r.json()) as { ready: boolean } };
        }),
      );
      // MONITOR shows commands in the order Redis ran them: once the marker is seen, every check's PING was.
      await other.echo(marker);
      await expect.poll(() => markerSeen, { timeout: 10_000 }).toBe(true);
      console.log(`${probes} concurrent /readyz probes ran ${ran} checks`);
      expect(answers.every((a) => a.status === 200 && a.body.ready)).toBe(true);
      expect(ran).toBeGreaterThan(0);
      expect(ran).toBeLessThan(probes / 4);
    } finally {
      monitor.destroy();
      other.disconnect();
    }
  });

  it('GET /docs/scalar.js without Accept-Encoding: gzip costs the server little CPU per request', async () => {
    const cpuMs = () => {
      const f = readFileSync(`/proc/${api.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 100 Hz ticks
    };
    const get = async (encoding: string) => {
      const r = await fetch(`${api.url}/docs/scalar.js`, { headers: { 'accept-encoding': encoding } });
      return { status: r.status, bytes: (await r.arrayBuffer()).byteLength };
    };
    // The one-time work: compressing the bundle, and unzipping it for clients without gzip.
    const first = await get('identity');
    expect(first.status).toBe(200);
    expect(first.bytes).toBeGreaterThan(1_000_000);
    const before = cpuMs();
    const n = 20;
    for (let i = 0; i < n; i++) expect(await get('identity')).toEqual(first);
    const perRequest = (cpuMs() - before) / n;
    expect(perRequest, 'server CPU ms per GET /docs/scalar.js (identity)').toBeLessThan(15);
  });

  // Node parses every pipelined request in what it has read and hands each to the handler, and
  // queues the answers whether or not the client reads: one unauthenticated connection sending
  // 20,000 pipelined GETs of a 15 KB answer (1.3 MB sent) and reading nothing grew the heap by
  // ~500 MB (60,000: ~900 MB, /healthz 3 s). The server now closes such a connection.
  it('a client that pipelines thousands of requests and reads nothing is cut off, the heap barely moving', async () => {
    const schedules = Array.from({ length: 100 }, (_, i) => ({ startsAt: new Date(Date.now() + (i + 2) * 86_400_000).toISOString(), seatCount: 1 }));
    const { concertId } = await admin(api.url).admin.concerts.create.mutate({ title: 'pipelined', venue: 'v'.repeat(100), schedules });
    const heapUsed = async () => {
      const text = await (await fetch(`${api.metricsUrl}/metrics`)).text();
      return Number(/^concert_nodejs_heap_size_used_bytes (\d+)/m.exec(text)?.[1]);
    };
    const before = await heapUsed();
    const logged = api.output().length;
    const socket = net.connect(port, '127.0.0.1');
    socket.pause(); // reads nothing
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    socket.write(`GET /v1/concerts/${concertId}/schedules HTTP/1.1\r\nhost: x\r\n\r\n`.repeat(20_000));
    let peak = 0;
    const deadline = Date.now() + 15_000;
    // Until the server says it closed the connection (and for a few samples after).
    let after = 0;
    while (after < 5 && Date.now() < deadline) {
      peak = Math.max(peak, (await heapUsed()) - before);
      if (api.output().slice(logged).includes('pipelined too far ahead')) after++;
      await new Promise((r) => setTimeout(r, 100));
    }
    socket.destroy();
    expect(peak / 1e6, 'heap growth (MB) while the client read nothing').toBeLessThan(150);
    expect(api.output().slice(logged), 'the server closed the connection').toContain('pipelined too far ahead');
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);

    // A client that pipelines a little, and reads, is served as before.
    const reader = net.connect(port, '127.0.0.1');
    const answered = await new Promise<number>((resolve) => {
      let text = '';
      const count = () => text.match(/HTTP\/1\.1 200 /g)?.length ?? 0;
      const timer = setTimeout(() => resolve(count()), 10_000);
      reader.on('error', () => {});
      reader.on('close', () => resolve(count()));
      reader.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (count() === 32) {
          clearTimeout(timer);
          resolve(32);
        }
      });
      reader.write(`GET /v1/concerts/${concertId}/schedules HTTP/1.1\r\nhost: x\r\n\r\n`.repeat(32));
    });
    reader.destroy();
    expect(answered, 'answers to 32 pipelined requests').toBe(32);
  });

  // Lone UTF-16 surrogates were accepted and stored as U+FFFD (NUL was refused, they were not):
  // two tiers with grades "\ud800" and "\udfff" passed the "each grade once, with one price"
  // check and were stored as one grade "\ufffd" with two prices.
  it('text with lone surrogates is refused (INVALID_INPUT) on every text input, not silently rewritten', async () => {
    const post = (procedure: string, input: unknown) =>
      rawRequest(port, httpText('POST', `/trpc/${procedure}`, { headers: { 'x-admin-key': ADMIN_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ json: input }) }));
    const tiers = [{ grade: '\ud800', price: 1, fromSeat: 1, toSeat: 1 }, { grade: '\udfff', price: 999, fromSeat: 2, toSeat: 2 }];
    const schedules = [{ startsAt: '2027-05-01T19:00:00Z', seatCount: 2, tiers }];
    for (const [procedure, input, field] of [
      ['admin.concerts.create', { title: 'surrogates', schedules }, 'schedules.0.tiers.0.grade'],
      ['admin.concerts.create', { title: 'a\udc00b', schedules: [{ startsAt: '2027-05-01T19:00:00Z' }] }, 'title'],
      ['admin.users.create', { name: '\ud83d' }, 'name'],
      ['admin.webhooks.create', { url: 'https://example.invalid/h', events: ['payment.completed'], description: 'x\udfffy' }, 'description'],
      // URL parsing percent-encodes a lone surrogate as U+FFFD and passes; the text sent is what is stored.
      ['admin.webhooks.create', { url: 'https://example.invalid/h\udc00', events: ['payment.completed'] }, 'url'],
      ['admin.webhooks.create', { url: 'https://example.invalid/h?q=\ud800', events: ['payment.completed'] }, 'url'],
    ] as const) {
      const r = await post(procedure, input);
      expect({ field, status: r.status, codes: appCodesOf(r.body).appCodes }).toEqual({ field, status: 400, codes: ['INVALID_INPUT'] });
      const issues = (JSON.parse(r.body) as { error: { json: { data: { issues: Array<{ path: unknown[]; message: string }> } } } }).error.json.data.issues;
      expect(issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toContain(`${field}: must be well-formed Unicode (a lone UTF-16 surrogate is not a character)`);
    }
    // A well-formed pair (an emoji) is text like any other.
    const ok = await post('admin.users.create', { name: '\ud83c\udfb5 fan' });
    expect(ok.status).toBe(200);
  });
});

/**
 * Redis's MONITOR on a socket of its own, a line per command: `+<time> [<db> <source>] "<cmd>" "<arg>"…`.
 * ioredis's monitor() was not used: it enters monitoring mode a tick after MONITOR's OK, and when
 * another client's command arrived in the same read as the OK (a busy Redis, other suites beside
 * this one), it took that line for a reply with no command waiting and failed the test with
 * "Command queue state error" (a fresh-clone CI run, 2026-12-05).
 */
async function redisMonitor(onCommand: (args: string[], source: string) => void): Promise<net.Socket> {
  const url = new URL(REDIS_URL);
  const socket = net.connect(Number(url.port || 6379), url.hostname);
  socket.setEncoding('utf8');
  let buffered = '';
  let oksToCome = url.password ? 2 : 1; // AUTH's, then MONITOR's
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line.startsWith('-')) reject(new Error(`MONITOR refused: ${line}`));
        else if (line === '+OK') {
          if (--oksToCome === 0) resolve();
        }
        else {
          const m = /^\+\S+ \[\d+ (\S+)\] "(.*)"$/.exec(line);
          if (m) onCommand(m[2]!.split('" "'), m[1]!);
        }
      }
    });
  });
  if (url.password) socket.write(`AUTH ${url.username ? `${decodeURIComponent(url.username)} ` : ''}${decodeURIComponent(url.password)}\r\n`);
  socket.write('MONITOR\r\n');
  await ready;
  return socket;
}

/** The local ports of a process's TCP connections to the tests' Redis: its socket inodes, found in /proc/net/tcp. */
function redisPortsOf(pid: number): Set<number> {
  const redisPort = `:${Number(new URL(REDIS_URL).port || 6379).toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed between the listing and the read
    }
  }
  const ports = new Set<number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [, local, remote, , , , , , , inode] = f;
    if (inodes.has(inode!) && remote!.endsWith(redisPort)) ports.add(parseInt(local!.split(':')[1]!, 16));
  }
  return ports;
}
