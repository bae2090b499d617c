import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { createCore, loadConfig } from '@concert/core';
import { ADMIN_KEY, client, createTestDatabase, REDIS_URL, type SpawnedApi, spawnApi, testEnv } from '../../../test/harness.ts';
import { type PgBouncer, startPgBouncer } from '../../../test/pgbouncer.ts';

/**
 * The money suites' rig: a database of their own, PgBouncer in transaction pooling in front of it,
 * and two API processes through it (prepared statements off, rate limits off: one user fires far
 * more calls than a person would). Registers its own beforeAll/afterAll; `sql` and `env` are set
 * once beforeAll has run, and so are `db` and `bouncer`.
 */
export function moneyRig(name: string, extraEnv: Record<string, string> = {}) {
  const rig = {
    db: undefined as unknown as Awaited<ReturnType<typeof createTestDatabase>>,
    bouncer: undefined as unknown as PgBouncer,
    apis: [] as SpawnedApi[],
    env: {} as Record<string, string>,
    sql: undefined as unknown as InstanceType<typeof pg.Client>,
    url: (i: number) => rig.apis[i % rig.apis.length]!.url,
    adminAt: (i: number) => client(rig.url(i), { adminKey: ADMIN_KEY }, { batch: false }),
  };
  beforeAll(async () => {
    const db = (rig.db = await createTestDatabase());
    await (await createCore(loadConfig(testEnv(db.url)))).close();
    const bouncer = (rig.bouncer = await startPgBouncer({ poolSize: 6 }));
    rig.env = testEnv(bouncer.via(db.url), {
      REDIS_URL,
      REDIS_KEY_PREFIX: `${name}-${randomBytes(4).toString('hex')}:`,
      QUEUE_MAX_ACTIVE: '100000',
      DB_POOL_SIZE: '6',
      DB_PREPARED_STATEMENTS: 'off',
      RATE_LIMITS: 'off',
      ...extraEnv,
    });
    for (let i = 0; i < 2; i++) rig.apis.push(await spawnApi(rig.env));
    rig.sql = new pg.Client({ connectionString: db.url });
    await rig.sql.connect();
  });
  afterAll(async () => {
    await rig.sql?.end();
    await Promise.all(rig.apis.map((a) => a.stop()));
    await rig.bouncer?.stop();
    await rig.db?.drop();
  });
  return rig;
}
