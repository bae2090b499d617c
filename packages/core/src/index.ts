import { sql } from 'kysely';
import { Kysely } from 'kysely';
import { AdminService } from './admin/admin.service.ts';
import { WatchService } from './admin/watch.service.ts';
import { BalanceService } from './balance/balance.service.ts';
import { appClock, type Clock } from './clock.ts';
import { ConcertsService } from './concerts/concerts.service.ts';
import { type Config, StartupError, withoutPassword } from './config.ts';
import { type Db, migrateToLatest } from './db/database.ts';
import { createDialect, type DialectHandle } from './db/dialect.ts';
import type { DB } from './db/schema.ts';
import { IdempotencyService } from './idempotency/idempotency.service.ts';
import { PaymentsService } from './payments/payments.service.ts';
import { QueueService } from './queue/queue.service.ts';
import { MemoryQueueStore } from './queue/queue.store.memory.ts';
import { RedisQueueStore } from './queue/queue.store.redis.ts';
import type { Inventory } from './queue/queue.store.ts';
import { connectRedis } from './redis/client.ts';
import { getConcert } from './concerts/concerts.repository.ts';
import { MemorySeatVersionStore, RedisSeatVersionStore, SeatMapCache } from './concerts/seatmap.cache.ts';
import { RateLimitService } from './ratelimit/ratelimit.service.ts';
import { MemoryRateLimitStore, RedisRateLimitStore } from './ratelimit/ratelimit.store.ts';
import { ReservationsService } from './reservations/reservations.service.ts';
import { UsersService } from './users/users.service.ts';
import { CatalogService } from './concerts/catalog.service.ts';
import { RefundsService } from './refunds/refunds.service.ts';
import { SchedulesService } from './schedules/schedules.service.ts';
import { WaitlistService } from './waitlist/waitlist.service.ts';
import { WebhooksService } from './webhooks/webhooks.service.ts';
import type { ResolveHost } from './webhooks/webhooks.address.ts';

export * from './errors.ts';
export * from './schemas.ts';
export type * from './types.ts';
export { appClock, type Clock, FakeClock, systemClock } from './clock.ts';
export { type Config, ConfigError, loadConfig, StartupError } from './config.ts';
export type { ActivePass, QueueGate } from './queue/queue.gate.ts';
export type { CreatedConcert } from './concerts/concerts.service.ts';
export type { QueueTicket, QueueStatsView, QueueWatchView } from './queue/queue.service.ts';
export type { LineState, TicketStatus } from './queue/queue.store.ts';
export type { SaleWatch } from './admin/watch.service.ts';
export type { ResolveHost } from './webhooks/webhooks.address.ts';
export type { RateLimitBucket } from './ratelimit/ratelimit.service.ts';
export type { Db } from './db/database.ts';
export { isDatabaseBusy, isDatabaseUnavailable } from './db/database.ts';
export { createRedis, type RedisClient, waitForRedis } from './redis/client.ts';

export interface Core extends AsyncDisposable {
  readonly config: Config;
  readonly clock: Clock;
  readonly db: Db;
  readonly databaseKind: 'postgres' | 'pglite';
  readonly users: UsersService;
  readonly concerts: ConcertsService;
  readonly reservations: ReservationsService;
  readonly balance: BalanceService;
  readonly payments: PaymentsService;
  readonly admin: AdminService;
  readonly watch: WatchService;
  readonly refunds: RefundsService;
  readonly schedules: SchedulesService;
  readonly catalog: CatalogService;
  readonly waitlist: WaitlistService;
  readonly webhooks: WebhooksService;
  readonly idempotency: IdempotencyService;
  readonly queue: QueueService;
  readonly rateLimits: RateLimitService;
  readonly seatMaps: SeatMapCache;
  /**
   * Whether the database and the queue store answer, for /readyz. Callers that ask while a check
   * is running share it: a flood of probes costs one check at a time, not a pool connection each.
   */
  readiness(): Promise<{ database: boolean; queue: boolean }>;
  /** Starts the periodic sweeps (lapsed holds, old idempotency keys). Safe on every replica. */
  startBackgroundWork(hooks?: BackgroundHooks): void;
  /** PostgreSQL pool usage; undefined on PGlite. */
  poolStats(): { total: number; idle: number; waiting: number } | undefined;
  close(): Promise<void>;
}

export interface BackgroundHooks {
  onError?: (err: unknown) => void;
  onHoldsExpired?: (count: number) => void;
}

export interface CoreOverrides {
  clock?: Clock;
  /** Skip running migrations (a test harness that migrated already). */
  skipMigrations?: boolean;
  /** How webhook endpoints' host names resolve (a test's stub DNS); the system's resolver otherwise. */
  webhookResolve?: ResolveHost;
}

/** The composition root: everything the services need is built here, once. */
export async function createCore(config: Config, overrides: CoreOverrides = {}): Promise<Core> {
  const clock = overrides.clock ?? appClock(config.clockOffsetMs);
  // On PostgreSQL, migrations run on a connection of their own that is closed afterwards, so
  // every connection of the pool starts after them and carries the database defaults they set.
  // What the database setting points at: a failure to reach or prepare it names the setting.
  const [setting, where] = config.databaseUrl ? ['DATABASE_URL', withoutPassword(config.databaseUrl)] : ['DATA_DIR', config.dataDir];
  if (config.databaseUrl && !overrides.skipMigrations) {
    const migrator = new Kysely<unknown>({ dialect: createDialect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 }).dialect });
    try {
      await StartupError.naming(setting, where, () => migrateToLatest(migrator));
    } finally {
      await migrator.destroy().catch(() => {});
    }
  }
  const handle: DialectHandle = await StartupError.naming(setting, where, () =>
    createDialect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize, prepared: config.dbPreparedStatements, pipeline: config.dbPipeline }),
  );
  const db = new Kysely<DB>({ dialect: handle.dialect });
  try {
    if (!config.databaseUrl && !overrides.skipMigrations) await StartupError.naming(setting, where, () => migrateToLatest(db as Kysely<unknown>));
  } catch (err) {
    await db.destroy().catch(() => {});
    throw err;
  }

  const idempotency = new IdempotencyService({ db, clock });
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, { keyPrefix: config.redisKeyPrefix, cluster: config.redisCluster }, 3_000) : undefined;
  const knownConcerts = new Set<number>();
  const queue = new QueueService({
    store: redis ? new RedisQueueStore(redis, { etaPrior: config.queueEtaPrior }) : new MemoryQueueStore({ etaPrior: config.queueEtaPrior }),
    clock,
    config,
    // Concerts are never deleted, so a concert seen once needs no second query.
    assertConcert: async (concertId) => {
      if (knownConcerts.has(concertId)) return;
      await getConcert(db, concertId);
      knownConcerts.add(concertId);
    },
    inventory: (concertId: number, now?: Date, seatCap?: number): Promise<Inventory> => concerts.inventory(concertId, now, seatCap),
  });
  const rateLimits = new RateLimitService({
    store: redis ? new RedisRateLimitStore(redis) : new MemoryRateLimitStore(),
    clock,
    config,
  });
  const seatMaps = new SeatMapCache({
    versions: redis ? new RedisSeatVersionStore(redis) : new MemorySeatVersionStore(),
    clock,
    onChange: (concertId: number): Promise<void> => queue.seatsChanged(concertId),
  });
  const users = new UsersService({ db });
  const concerts = new ConcertsService({ db, clock, seatMaps });
  const reservations = new ReservationsService({
    db,
    clock,
    holdTtlSeconds: config.holdTtlSeconds,
    waitlistOfferSeconds: config.waitlistOfferSeconds,
    idempotency,
    seatMaps,
    concerts,
  });
  const refundPolicy = { cutoffHours: config.refundCutoffHours, waitlistOfferSeconds: config.waitlistOfferSeconds };
  const refunds = new RefundsService({ db, clock, idempotency, seatMaps, policy: refundPolicy });
  const schedules = new SchedulesService({ db, clock, seatMaps, policy: refundPolicy });
  const catalog = new CatalogService({ db, clock });
  const waitlist = new WaitlistService({ db, clock, seatMaps, offerSeconds: config.waitlistOfferSeconds });
  const webhooks = new WebhooksService({ db, clock, config: { ...config.webhooks, production: config.nodeEnv === 'production' }, resolve: overrides.webhookResolve });
  const balance = new BalanceService({ db, clock, config, idempotency });
  const payments = new PaymentsService({ db, clock, idempotency, queue, seatMaps });
  const admin = new AdminService({ db, clock });
  const watch = new WatchService({ clock, queue, concerts });

  const shouldSeed = config.seedDemo === 'always' || (config.seedDemo === 'auto' && handle.kind === 'pglite');
  if (shouldSeed && !(await admin.isSeeded())) {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM concerts`.execute(db);
    if (config.seedDemo === 'always' || rows[0]?.n === 0) await admin.seedDemo();
  }

  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  let readinessCheck: Promise<{ database: boolean; queue: boolean }> | undefined;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const t of timers) clearInterval(t);
    await webhooks.drain();
    await webhooks.close();
    await queue.close();
    await db.destroy();
  };

  return {
    config,
    clock,
    db,
    databaseKind: handle.kind,
    users,
    concerts,
    reservations,
    balance,
    payments,
    admin,
    watch,
    refunds,
    schedules,
    catalog,
    waitlist,
    webhooks,
    idempotency,
    queue,
    rateLimits,
    seatMaps,
    readiness() {
      readinessCheck ??= (async () => {
        const database = await sql`SELECT 1`.execute(db).then(
          () => true,
          () => false,
        );
        return { database, queue: await queue.ping().catch(() => false) };
      })().finally(() => {
        readinessCheck = undefined;
      });
      return readinessCheck;
    },
    poolStats() {
      const pool = handle.pool;
      return pool && { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
    },
    startBackgroundWork({ onError = () => {}, onHoldsExpired = () => {} } = {}) {
      const every = (ms: number, job: () => Promise<unknown>) => {
        let running = false;
        const t = setInterval(() => {
          if (running || closed) return;
          running = true;
          job()
            .catch(onError)
            .finally(() => {
              running = false;
            });
        }, ms);
        t.unref();
        timers.push(t);
      };
      // Every replica settles every line: the scripts are atomic, so this is safe and needs no leader.
      every(250, () => queue.tick());
      // Lapsed holds' seats go to the waitlist within two seconds (SKIP LOCKED: every replica sweeps).
      every(1_000, async () => {
        const n = await reservations.sweepExpired();
        if (n > 0) onHoldsExpired(n);
      });
      // A show sold out is announced by the read of its seats after the sale; this catches what a
      // crash between the sale's commit and that read left unannounced (a row lock marks it once).
      every(10_000, () => concerts.announceSellOuts());
      // The webhook delivery worker: every replica claims its share with SKIP LOCKED.
      every(250, async () => {
        while ((await webhooks.deliverDue(20, onError)) > 0 && !closed);
      });
      every(3600_000, () => idempotency.sweep());
      every(3600_000, () => webhooks.sweep());
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

