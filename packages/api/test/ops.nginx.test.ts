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
 * RATE_LIMITED answer, identified callers are left to the API's own per-user limits, and
 * /metrics is not served on the public port.
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

  it('does not serve /metrics on the public port', async () => {
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
  });
});
