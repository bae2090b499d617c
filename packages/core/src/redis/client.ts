import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** A single Redis or a Redis Cluster: every command the stores send works on both. */
export type RedisClient = Redis | Cluster;

/**
 * `REDIS_URL` names one server (`redis://host:6379`) or, comma-separated, the seed nodes of a
 * Redis Cluster (`redis://a:7001,redis://b:7002`); `cluster: true` also makes one seed a cluster.
 */
export function parseRedisUrls(url: string): URL[] {
  return url
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u) => new URL(u));
}

/**
 * A Redis connection that fails fast instead of hanging: no offline queue (a call while
 * disconnected errors at once), a per-command timeout, and no replay of commands that were
 * in flight when the connection dropped (a replayed script could admit or enter twice).
 * Every script touches the keys of one hash tag, so the same code runs on a Cluster.
 */
export function createRedis(url: string, opts: { keyPrefix?: string; connectionName?: string; cluster?: boolean } = {}): RedisClient {
  const nodes = parseRedisUrls(url);
  const first = nodes[0];
  if (!first) throw new Error('REDIS_URL names no server');
  const base: RedisOptions = {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    // Nothing is retried or resent: a connection that closes fails what was in flight at once.
    maxRetriesPerRequest: 0,
    // A hung Redis is found by the watchdog within a second; this bounds a call that is merely
    // slow, so it must leave room for a burst (a thousand scripts queued on one connection).
    commandTimeout: 2_500,
    connectTimeout: 2_000,
    connectionName: opts.connectionName ?? 'concert-api',
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  let redis: RedisClient;
  if (nodes.length > 1 || opts.cluster) {
    redis = new Cluster(
      nodes.map((n) => ({ host: n.hostname, port: Number(n.port || 6379) })),
      {
        keyPrefix: opts.keyPrefix ?? '',
        enableOfflineQueue: false,
        // Writes and reads go to masters: the line must read its own writes.
        scaleReads: 'master',
        clusterRetryStrategy: (times) => Math.min(100 * times, 1_000),
        redisOptions: base,
      },
    );
  } else {
    redis = new Redis(url, {
      ...base,
      lazyConnect: false,
      keyPrefix: opts.keyPrefix ?? '',
      retryStrategy: (times) => Math.min(100 * times, 1_000),
      // Commands sent in one turn of the event loop leave in one write (a hold's seat-map bump and
      // the line's change mark, many fans' polls): fewer syscalls on both sides. Not on a Cluster,
      // where a pipeline that meets MOVED mid-resharding fails whole instead of being redirected.
      enableAutoPipelining: true,
    });
  }
  // Connection errors surface on the commands; the client reconnects by itself.
  redis.on('error', () => {});
  watchdog(redis);
  return redis;
}

/** How often the connection is pinged, and how long a ping may go unanswered. */
const WATCHDOG_EVERY_MS = 250;
// No longer than a second: a Redis that sends nothing for this long is failing commands anyway.
const WATCHDOG_DEADLINE_MS = 750;

/**
 * A Redis that hangs (frozen, partitioned) keeps its TCP connection open, and without this every
 * command would wait out commandTimeout, one after another, for as long as the hang lasts. A
 * ping that goes unanswered while nothing else arrives either drops the connection: commands
 * then fail at once (no offline queue) until a reconnect gets a ready answer. A Redis that is
 * busy (a burst of a thousand scripts ahead of the ping) keeps sending replies, and is left alone.
 * On a Cluster every node has its own watchdog.
 */
function watchdog(redis: RedisClient): void {
  if (redis instanceof Cluster) {
    redis.on('+node', (node: Redis) => watchNode(node));
    return;
  }
  watchNode(redis);
}

function watchNode(redis: Redis): void {
  let probing = false;
  let lastReplyAt = 0;
  const onData = () => (lastReplyAt = performance.now());
  // A reconnect brings a new socket.
  const hook = () => redis.stream?.on('data', onData);
  redis.on('connect', hook);
  hook();
  const timer = setInterval(() => {
    if (probing || redis.status !== 'ready') return;
    probing = true;
    let answered = false;
    const deadline = setTimeout(() => {
      // After this loop turn's I/O, so a reply that is already waiting (a busy event loop) counts.
      setImmediate(() => {
        const silentFor = performance.now() - lastReplyAt;
        // destroy, not end: a half-close waits for a peer that will never answer.
        if (!answered && redis.status === 'ready' && silentFor >= WATCHDOG_DEADLINE_MS) redis.stream.destroy();
      });
    }, WATCHDOG_DEADLINE_MS);
    redis
      .ping()
      .catch(() => {})
      .finally(() => {
        answered = true;
        probing = false;
        clearTimeout(deadline);
      });
  }, WATCHDOG_EVERY_MS);
  timer.unref();
  redis.once('end', () => clearInterval(timer));
}

/**
 * createRedis, given `waitMs` to connect (the API starts either way and /readyz tells). One URL
 * without `cluster` that names a node of a Redis Cluster is then reached as that Cluster: as a
 * single server it answered the keys of its own slots and MOVED for the rest, while PING said
 * ready (an outside review: half the concerts' lines were 503). Found only when the node answers
 * at start; one that does not is taken as a single server (REDIS_CLUSTER=on says otherwise).
 */
export async function connectRedis(url: string, opts: Parameters<typeof createRedis>[1] = {}, waitMs = 3_000): Promise<RedisClient> {
  const redis = createRedis(url, opts);
  await waitForRedis(redis, waitMs);
  if (redis instanceof Cluster && redis.status !== 'ready' && (await singleServer(url))) {
    // Told to be a Cluster by a server that says it is not one: it would never be ready, and the
    // log filled with "Cluster isn't ready" four times a second (an outside review).
    redis.disconnect();
    throw new Error(
      `REDIS_URL names a single Redis server (${parseRedisUrls(url)[0]!.host}), not a node of a Redis Cluster${opts.cluster ? ': unset REDIS_CLUSTER (auto) to use it as one server' : ': name one server, or the seed nodes of a Cluster'}`,
    );
  }
  if (redis instanceof Cluster || redis.status !== 'ready') return redis;
  const info = await redis.info('cluster').catch(() => '');
  if (!/^cluster_enabled:1\s*$/m.test(info)) return redis;
  redis.disconnect();
  const cluster = createRedis(url, { ...opts, cluster: true });
  await waitForRedis(cluster, waitMs);
  return cluster;
}

/** Whether the first node REDIS_URL names answers that it is not a Cluster node (false when it does not answer). */
async function singleServer(url: string): Promise<boolean> {
  const first = parseRedisUrls(url)[0]!;
  const probe = createRedis(first.toString());
  try {
    await waitForRedis(probe, 2_000);
    if (probe.status !== 'ready') return false;
    return /^cluster_enabled:0\s*$/m.test(await probe.info('cluster'));
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Gives a starting Redis a moment to connect; the API starts either way and /readyz tells. */
export async function waitForRedis(redis: RedisClient, ms: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done);
  });
}

