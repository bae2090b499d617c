import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nginxConfig } from '../../../deploy/stack/shape.ts';
import { ADMIN_KEY, BASE_DATABASE_URL, createTestDatabase, freePort, portOpen, REDIS_URL, spawnApi, type SpawnedApi, startApi, TcpProxy, type TestApi, type TestDatabase, testEnv } from '../../../test/harness.ts';
import { appCodesOf, rawRequest } from '../../../test/raw-http.ts';

/**
 * deploy/nginx.conf, as compose and `pnpm stack` run it (Debian's nginx, its upstream line set to
 * a spawned API): anonymous requests are limited per client address with the contract's
 * RATE_LIMITED answer, identified callers are left to the API's own per-user limits, /metrics
 * is not served on the public port, /docs works, and what nginx answers itself (a body over
 * 1 MiB, a path it does not serve) carries the contract's appCode.
 */
describe('nginx in front of the API (deploy/nginx.conf)', () => {
  let db: TestDatabase;
  let api: SpawnedApi;
  let nginx: Nginx;
  let url: string;
  let port: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: `nginx${process.pid}:` }));
    nginx = await startNginx([Number(new URL(api.url).port)]);
    ({ url, port } = nginx);
  });
  afterAll(async () => {
    nginx?.stop();
    await api?.stop();
    await db?.drop();
  });

  it('limits anonymous requests per address with RATE_LIMITED (tRPC and REST shapes), not identified ones', async () => {
    const fire = (n: number, headers: Record<string, string> = {}) =>
      Promise.all(Array.from({ length: n }, () => fetch(`${url}/trpc/concerts.list`, { headers }).then(async (r) => ({ status: r.status, body: await r.text() }))));
    const anonymous = await fire(150);
    const limited = anonymous.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(anonymous.filter((r) => r.status >= 500)).toEqual([]);
    expect(JSON.parse(limited[0]!.body).error.json.data.appCode).toBe('RATE_LIMITED');
    // The REST surface shares the address's budget and answers in its own shape (problem+json).
    // A burst, not one request: a single one may come after the bucket has refilled a slot.
    const rest = await Promise.all(
      Array.from({ length: 150 }, () =>
        fetch(`${url}/v1/concerts`).then(async (r) => ({ status: r.status, type: r.headers.get('content-type'), retryAfter: r.headers.get('retry-after'), body: await r.text() })),
      ),
    );
    const restLimited = rest.filter((r) => r.status === 429);
    expect(restLimited.length).toBeGreaterThan(0);
    expect(rest.filter((r) => r.status >= 500)).toEqual([]);
    for (const r of restLimited) {
      expect(r.type).toContain('application/problem+json');
      expect(r.retryAfter).toBe('1');
      expect(JSON.parse(r.body)).toMatchObject({ status: 429, appCode: 'RATE_LIMITED' });
    }

    const identified = await fire(150, { 'x-user-id': '1' });
    expect(identified.filter((r) => r.status === 429)).toEqual([]);
  });

  // Operators' calls carry x-admin-key and no user: nginx counted them as anonymous, so through
  // it `concert simulate --users 300` lost 175 users to RATE_LIMITED at admin.users.create and
  // `concert admin watch --json` beside it exited 1 (an outside acceptance sweep).
  it('does not count operators (x-admin-key) as anonymous', async () => {
    const input = encodeURIComponent(JSON.stringify({ json: { concertId: 1 } }));
    const answers = await Promise.all(
      Array.from({ length: 150 }, () => fetch(`${url}/trpc/admin.queue.stats?input=${input}`, { headers: { 'x-admin-key': ADMIN_KEY } }).then((r) => r.status)),
    );
    expect(answers.filter((s) => s === 429)).toEqual([]);
  });

  // Identified callers in the tests below: the rate-limit test above spends the address's allowance.
  const identified = { 'x-user-id': '1' };

  // nginx set X-Request-Id to its own $request_id on every request, so a client's id (README:
  // logs carry `requestId` "from x-request-id") never reached the API behind it: the answer and
  // the API's log line named an id the client had never seen.
  it('passes a client’s x-request-id through to the API and back, and gives one to a request without', async () => {
    const mine = 'checkout-7f3a9c21-retry-2';
    const given = await fetch(`${url}/trpc/concerts.list`, { headers: { ...identified, 'x-request-id': mine } });
    await given.arrayBuffer();
    expect(given.headers.get('x-request-id')).toBe(mine);
    const none = await fetch(`${url}/trpc/concerts.list`, { headers: identified });
    await none.arrayBuffer();
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('does not serve /metrics on the public port', async () => {
    const r = await fetch(`${url}/metrics`, { headers: identified });
    expect([r.status, await appCodeOf(r)]).toEqual([404, 'PROCEDURE_NOT_FOUND']);
  });

  // `location = /docs` matched only the page: the two scripts it loads were nginx's 404, and the
  // reference page was blank in production (an outside hostile review, 2026-12-02).
  it('serves the reference page at /docs and the two scripts it loads', async () => {
    const page = await fetch(`${url}/docs`, { headers: identified });
    expect(page.status).toBe(200);
    const scripts = [...(await page.text()).matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts).toEqual(['/docs/scalar.js', '/docs/init.js']);
    for (const src of scripts) {
      const r = await fetch(`${url}${src}`, { headers: identified });
      expect({ src, status: r.status, type: r.headers.get('content-type') }).toEqual({ src, status: 200, type: 'text/javascript; charset=utf-8' });
      await r.arrayBuffer();
    }
  });

  // nginx's own answers were its HTML pages, without the contract's appCode.
  it('answers a body over 1 MiB with PAYLOAD_TOO_LARGE in the contract shape of each surface', async () => {
    const body = JSON.stringify({ amount: 1, pad: 'y'.repeat(1_100_000) });
    const headers = { ...identified, 'content-type': 'application/json' };
    const rest = await fetch(`${url}/v1/balance/charges`, { method: 'POST', headers: { ...headers, 'idempotency-key': 'nginx-too-large' }, body });
    expect([rest.status, rest.headers.get('content-type'), await appCodeOf(rest)]).toEqual([413, 'application/problem+json', 'PAYLOAD_TOO_LARGE']);
    const trpc = await fetch(`${url}/trpc/balance.charge`, { method: 'POST', headers, body: JSON.stringify({ json: JSON.parse(body) }) });
    expect([trpc.status, trpc.headers.get('content-type'), await appCodeOf(trpc)]).toEqual([413, 'application/json', 'PAYLOAD_TOO_LARGE']);
  });

  it('leaves every other path to the API: its 404 with an appCode, never nginx’s page or a redirect', async () => {
    for (const p of ['/', '/nope', '/trpc', '/v1', '/docsx', '/favicon.ico']) {
      const r = await fetch(`${url}${p}`, { headers: identified, redirect: 'manual' });
      expect({ p, status: r.status, appCode: await appCodeOf(r) }).toEqual({ p, status: 404, appCode: 'PROCEDURE_NOT_FOUND' });
    }
  });

  // nginx's own pages for a request it cannot parse were HTML without an appCode (and its 501 and
  // 505 were 5xx); error_page to named locations made them nginx's 500, as a broken request line
  // has no URI to redirect with (an outside hostile review, third round).
  it('answers a request it cannot parse in the contract shape, with a 4xx and an appCode', async () => {
    const cases: Array<[string, string, number, string, string]> = [
      ['a request line that is not HTTP', 'GARBAGE\r\n\r\n', 400, 'application/json', 'INVALID_INPUT'],
      ['a lowercase method', 'get /trpc/concerts.list HTTP/1.1\r\nhost: x\r\n\r\n', 400, 'application/json', 'INVALID_INPUT'],
      ['a path above the root', 'GET /../x HTTP/1.1\r\nhost: x\r\n\r\n', 400, 'application/json', 'INVALID_INPUT'],
      ['HTTP/2.0 on a text connection', 'GET /trpc/concerts.list HTTP/2.0\r\nhost: x\r\n\r\n', 400, 'application/json', 'INVALID_INPUT'],
      ['no Host', 'GET /trpc/concerts.list HTTP/1.1\r\n\r\n', 400, 'application/json', 'INVALID_INPUT'],
      ['two Content-Lengths', 'POST /trpc/balance.charge HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}', 400, 'application/json', 'INVALID_INPUT'],
      ['a transfer-coding nginx does not know', 'POST /trpc/balance.charge HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n', 400, 'application/json', 'INVALID_INPUT'],
      ['TRACE', 'TRACE /trpc/concerts.list HTTP/1.1\r\nhost: x\r\n\r\n', 405, 'application/json', 'INVALID_INPUT'],
      ['a 10 KB request line', `GET /trpc/concerts.list?x=${'a'.repeat(10_000)} HTTP/1.1\r\nhost: x\r\n\r\n`, 414, 'application/json', 'PAYLOAD_TOO_LARGE'],
      ['5,000 headers', `GET /trpc/concerts.list HTTP/1.1\r\nhost: x\r\n${'x-a: b\r\n'.repeat(5000)}\r\n`, 431, 'application/json', 'PAYLOAD_TOO_LARGE'],
      ['a broken chunk to tRPC', 'POST /trpc/balance.charge HTTP/1.1\r\nhost: x\r\nx-user-id: 1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 400, 'application/json', 'INVALID_INPUT'],
      ['a broken chunk to REST', 'POST /v1/balance/charges HTTP/1.1\r\nhost: x\r\nx-user-id: 1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 400, 'application/problem+json', 'INVALID_INPUT'],
      ['one of nginx\'s error pages asked for directly', 'GET /_nginx/400 HTTP/1.1\r\nhost: x\r\nx-user-id: 1\r\n\r\n', 404, 'application/json', 'PROCEDURE_NOT_FOUND'],
    ];
    for (const [what, bytes, status, type, appCode] of cases) {
      const r = await rawRequest(port, bytes, { timeoutMs: 10_000 });
      expect({ what, status: r.status, type: r.headers['content-type'], appCodes: appCodesOf(r.body).appCodes }).toEqual({ what, status, type, appCodes: [appCode] });
    }
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});

// With no replica answering (all restarting, a rolling deploy's closed connection) nginx
// answered its HTML 502 page, without an appCode (an outside hostile review, fourth round).
describe('nginx with no API replica answering', () => {
  let nginx: Nginx;
  let port: number;
  let upstream: net.Server;

  beforeAll(async () => {
    // A replica that closes every connection without a word (as one going down in a rolling
    // restart does). It holds its port, so nothing else can take it and answer for it.
    upstream = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    nginx = await startNginx([(upstream.address() as net.AddressInfo).port]);
    port = nginx.port;
  });
  afterAll(() => {
    nginx?.stop();
    upstream.close();
  });

  it('answers SERVICE_UNAVAILABLE (503) with Retry-After in the contract shape of each surface', async () => {
    const url = `http://127.0.0.1:${port}`;
    const json = { 'x-user-id': '1', 'content-type': 'application/json' };
    const cases: Array<[string, RequestInit, string]> = [
      ['/trpc/concerts.list', {}, 'application/json'],
      ['/trpc/balance.charge', { method: 'POST', headers: json, body: JSON.stringify({ json: { amount: 1, idempotencyKey: 'nginx-down-1' } }) }, 'application/json'],
      ['/v1/concerts', {}, 'application/problem+json'],
      ['/v1/balance/charges', { method: 'POST', headers: { ...json, 'idempotency-key': 'nginx-down-2' }, body: '{"amount":1}' }, 'application/problem+json'],
      ['/docs', {}, 'application/problem+json'],
      ['/healthz', {}, 'application/json'],
      ['/readyz', {}, 'application/json'],
      ['/nope', {}, 'application/json'],
      ['/trpc', {}, 'application/json'],
      ['/v1', {}, 'application/problem+json'],
    ];
    for (const [p, init, type] of cases) {
      const r = await fetch(`${url}${p}`, { headers: { 'x-user-id': '1' }, ...init });
      expect({ p, status: r.status, type: r.headers.get('content-type'), retryAfter: r.headers.get('retry-after'), appCode: await appCodeOf(r) }).toEqual({
        p,
        status: 503,
        type,
        retryAfter: '1',
        appCode: 'SERVICE_UNAVAILABLE',
      });
    }
  });
});

// A PostgreSQL blip (PgBouncer restarted) made every replica answer its own 503
// SERVICE_UNAVAILABLE, which nginx counted as failures of the replicas (proxy_next_upstream
// listed http_503, max_fails=2): it then took every replica out for fail_timeout and answered
// "No API process is answering" for about 4 s after the database was back and the replicas
// answered 200 (an outside SRE's rehearsal on the production shape).
describe('nginx while the database blinks, with two replicas', () => {
  let db: TestDatabase;
  let pgProxy: TcpProxy;
  let api: TestApi;
  let second: TcpProxy;
  let nginx: Nginx;
  let url: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(BASE_DATABASE_URL);
    pgProxy = new TcpProxy(await freePort(), { host: target.hostname, port: Number(target.port || 5432) });
    await pgProxy.start();
    const viaProxy = new URL(db.url);
    viaProxy.port = String(pgProxy.port);
    api = await startApi(testEnv(viaProxy.toString(), { REDIS_URL, REDIS_KEY_PREFIX: `nginxblink${process.pid}:` }));
    // Two upstream addresses (with one, nginx never takes the server out): the API and a proxy to it.
    const apiPort = Number(new URL(api.url).port);
    second = new TcpProxy(await freePort(), { host: '127.0.0.1', port: apiPort });
    await second.start();
    nginx = await startNginx([apiPort, second.port]);
    url = nginx.url;
  });
  afterAll(async () => {
    nginx?.stop();
    await second?.cut();
    await api?.close();
    await pgProxy?.cut();
    await db?.drop();
  });

  it('passes the replicas’ own 503 through and serves again as soon as they do', async () => {
    const list = (base: string) =>
      fetch(`${base}/v1/concerts`, { headers: { 'x-user-id': '1' } }).then(async (r) => ({ status: r.status, detail: ((await r.json()) as { detail?: string }).detail }));
    expect((await list(url)).status).toBe(200);
    await pgProxy.cut();
    // Every replica answers its own 503 while the database is away, more than max_fails times each.
    for (let i = 0; i < 6; i++) expect((await list(url)).status).toBe(503);
    await pgProxy.start();
    const deadline = Date.now() + 10_000;
    while ((await list(api.url)).status !== 200) {
      if (Date.now() > deadline) throw new Error('the API did not recover');
      await new Promise((r) => setTimeout(r, 50));
    }
    // The replica answers again: so does nginx, at once (not "No API process is answering").
    expect(await list(url)).toEqual({ status: 200, detail: undefined });
  });
});

interface Nginx {
  port: number;
  url: string;
  /** Quits nginx and removes its folder. */
  stop(): void;
}

/** deploy/nginx.conf as compose and `pnpm stack` run it, in a folder of its own, in front of these API ports. */
async function startNginx(apis: number[]): Promise<Nginx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nginx-'));
  mkdirSync(path.join(dir, 'tmp'));
  chmodSync(path.join(dir, 'tmp'), 0o777);
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, { http: port, apis }));
  execFileSync('/usr/sbin/nginx', ['-p', dir, '-c', conf]);
  const deadline = Date.now() + 10_000;
  while (!(await portOpen(port))) {
    if (Date.now() > deadline) throw new Error('nginx did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stop() {
      try {
        execFileSync('/usr/sbin/nginx', ['-p', dir, '-c', conf, '-s', 'quit']);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The appCode of an error answer, tRPC's envelope or REST's problem+json; undefined if it has none. */
async function appCodeOf(r: Response): Promise<string | undefined> {
  const text = await r.text();
  try {
    const body = JSON.parse(text) as { appCode?: string; error?: { json?: { data?: { appCode?: string } } } };
    return body.appCode ?? body.error?.json?.data?.appCode;
  } catch {
    return undefined;
  }
}
