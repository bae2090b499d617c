import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nginxConfig } from '../../../deploy/stack/shape.ts';
import { createTestDatabase, freePort, portOpen, REDIS_URL, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';

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
  let dir: string;
  let url: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: `nginx${process.pid}:` }));
    dir = mkdtempSync(path.join(tmpdir(), 'nginx-'));
    mkdirSync(path.join(dir, 'tmp'));
    chmodSync(path.join(dir, 'tmp'), 0o777);
    const port = await freePort();
    writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, { http: port, apis: [Number(new URL(api.url).port)] }));
    execFileSync('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
    url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (!(await portOpen(port))) {
      if (Date.now() > deadline) throw new Error('nginx did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    try {
      execFileSync('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-s', 'quit']);
    } catch {
      // not running
    }
    await api?.stop();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('limits anonymous requests per address with RATE_LIMITED (tRPC and REST shapes), not identified ones', async () => {
    const fire = (n: number, headers: Record<string, string> = {}) =>
      Promise.all(Array.from({ length: n }, () => fetch(`${url}/trpc/concerts.list`, { headers }).then(async (r) => ({ status: r.status, body: await r.text() }))));
    const anonymous = await fire(150);
    const limited = anonymous.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(anonymous.filter((r) => r.status >= 500)).toEqual([]);
    expect(JSON.parse(limited[0]!.body).error.json.data.appCode).toBe('RATE_LIMITED');
    const rest = await fetch(`${url}/v1/concerts`);
    if (rest.status === 429) expect(((await rest.json()) as { appCode?: string }).appCode).toBe('RATE_LIMITED');

    const identified = await fire(150, { 'x-user-id': '1' });
    expect(identified.filter((r) => r.status === 429)).toEqual([]);
  });

  // Identified callers in the tests below: the rate-limit test above spends the address's allowance.
  const identified = { 'x-user-id': '1' };

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
});

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
