import http from 'node:http';
import pg from 'pg';
import { createRedis, waitForRedis } from '../packages/core/src/redis/client.ts';
import { RedisQueueStore } from '../packages/core/src/queue/queue.store.redis.ts';
import type { QueueSettings } from '../packages/core/src/queue/queue.store.ts';

/**
 * The fastest thing that does the same job: a bare node:http handler, no tRPC, no superjson,
 * no identity or token checks, calling the same Redis script or running the same SQL.
 */
const { PORT, DATABASE_URL, REDIS_URL, REDIS_KEY_PREFIX } = process.env;
const redis = createRedis(REDIS_URL!, { keyPrefix: REDIS_KEY_PREFIX });
await waitForRedis(redis, 5_000);
const store = new RedisQueueStore(redis);
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 20 });
const defaults: QueueSettings = { maxActive: 100, activeTtlSeconds: 600, idleTimeoutSeconds: 60, paused: false, opensAt: null };

const SEAT_MAP_SQL = `SELECT seat_number, grade, price, held_until,
  CASE WHEN sold_at IS NOT NULL THEN 'SOLD' WHEN reservation_id IS NOT NULL AND held_until > $2 THEN 'HELD' ELSE 'AVAILABLE' END AS status
  FROM seats WHERE schedule_id = $1 ORDER BY seat_number`;

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url!, 'http://x');
    const q = (k: string) => url.searchParams.get(k)!;
    let body: unknown;
    if (url.pathname === '/status') body = await store.status(Number(q('c')), q('t'), Date.now(), defaults, false);
    else if (url.pathname === '/enter') body = await store.enter(Number(q('c')), Number(q('u')), q('t'), Date.now(), defaults);
    else if (url.pathname === '/seats') body = (await pool.query(SEAT_MAP_SQL, [Number(q('s')), new Date()])).rows;
    else {
      res.writeHead(404).end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  } catch (err) {
    res.writeHead(500).end(String(err));
  }
});
server.keepAliveTimeout = 65_000;
server.listen(Number(PORT), '127.0.0.1', () => console.log('baseline ready'));
process.on('SIGTERM', () => {
  server.close();
  redis.disconnect();
  void pool.end().then(() => process.exit(0));
});
