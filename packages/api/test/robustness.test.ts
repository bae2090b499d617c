import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, REDIS_URL, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';
import { httpText, rawRequest } from '../../../test/raw-http.ts';

describe('no request takes the process down', () => {
  let db: TestDatabase;
  let api: SpawnedApi;
  let port: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: `robust${randomBytes(4).toString('hex')}:` }));
    port = Number(new URL(api.url).port);
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('malformed percent-encodings in the procedure path are a 4xx with an appCode (once a URIError killed the process)', async () => {
    for (const path of ['%', '%zz', '%E0%A4%A', '%E0', 'queue.status%', 'queue.status%C0', '%FF%FE']) {
      for (const method of ['GET', 'POST']) {
        const r = await rawRequest(port, httpText(method, `/trpc/${path}`, method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}));
        expect({ path, method, status: r.status, appCode: r.data?.appCode }).toEqual({ path, method, status: expect.toSatisfy((s: number) => s >= 400 && s < 500), appCode: expect.any(String) });
      }
    }
    expect(api.child.exitCode).toBeNull();
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });
});
