import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, ROOT, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';

/** What `pnpm start` and the image run: the compiled server on Node 24, no TypeScript at run time. */
describe('the compiled server', () => {
  let db: TestDatabase;
  let api: SpawnedApi;
  beforeAll(async () => {
    await promisify(execFile)(path.join(ROOT, 'node_modules/.bin/tsc'), ['-b', 'packages/api/tsconfig.build.json'], { cwd: ROOT, timeout: 300_000 });
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url, { LOG_LEVEL: 'info', SEED_DEMO: 'always' }), { compiled: true });
  }, 400_000);
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('serves from packages/api/dist on Node 24, started without tsx, and says which Node it runs on', async () => {
    const res = await fetch(`${api.url}/trpc/concerts.list`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { result: { data: { json: { items: unknown[] } } } };
    expect(body.result.data.json.items.length).toBeGreaterThan(0);

    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(24);
    const listening = api.output().split('\n').find((l) => l.includes('listening on'));
    expect(listening, api.output()).toContain(`on Node ${process.version}`);

    const argv = readFileSync(`/proc/${api.child.pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toContain(path.join(ROOT, 'packages/api/dist/main.js'));
    expect(argv.join(' ')).not.toMatch(/tsx|\.ts\b/);
  });
});
