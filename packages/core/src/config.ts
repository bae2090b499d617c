import { z } from 'zod';

/** The only reader of process.env. Parse once at start; a bad value stops the process with one line. */

const DEV_QUEUE_TOKEN_SECRET = 'dev-only-queue-token-secret-change-me';
const DEV_ADMIN_API_KEY = 'dev-admin-key';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const url = (protocols: string[]) =>
  z
    .string()
    .trim()
    .refine((v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

// One Redis URL, or the comma-separated seed nodes of a Redis Cluster.
const redisUrls = z
  .string()
  .trim()
  .refine((v) => {
    const parts = v.split(',').map((p) => p.trim());
    return (
      parts.length > 0 &&
      parts.every((p) => {
        try {
          return ['redis:', 'rediss:'].includes(new URL(p).protocol);
        } catch {
          return false;
        }
      })
    );
  }, 'must be a URL starting with redis:// or rediss://, or several separated by commas (Redis Cluster seed nodes)');

const ZEnv = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATA_DIR: z.string().trim().min(1).default('./.data'),
  REDIS_URL: redisUrls.optional(),
  REDIS_CLUSTER: z.enum(['auto', 'on']).default('auto'),
  REDIS_KEY_PREFIX: z.string().trim().regex(/^[A-Za-z0-9:_-]{0,50}$/, 'must be up to 50 characters of A-Z a-z 0-9 : _ -').default('concert:'),
  HOLD_TTL_SECONDS: int(1, 86_400).default(300),
  QUEUE_MAX_ACTIVE: int(1, 1_000_000).default(100),
  QUEUE_ACTIVE_TTL_SECONDS: int(1, 86_400).default(600),
  QUEUE_IDLE_TIMEOUT_SECONDS: int(1, 86_400).default(60),
  QUEUE_ETA_PRIOR: z.enum(['on', 'off']).default('on'),
  // Shifts this process's own clock (a drill of clock drift between machines); it decides nothing
  // about holds, payments or the line, whose clocks are PostgreSQL's and Redis's.
  CLOCK_OFFSET_MS: z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number of milliseconds')
    .transform(Number)
    .pipe(z.number().int().min(-86_400_000, 'must be at least -86400000').max(86_400_000, 'must be at most 86400000'))
    .default(0),
  AUTH_MODE: z.enum(['dev', 'jwt']).default('dev'),
  AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  // How far ahead a token's exp may be (a token that never expires in practice is refused).
  AUTH_JWT_MAX_LIFETIME_SECONDS: int(60, 315_360_000).default(2_592_000),
  QUEUE_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  ADMIN_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  CHARGE_MAX_PER_TX: int(1).default(1_000_000),
  CHARGE_MONTHLY_LIMIT: int(1).default(5_000_000),
  DB_POOL_SIZE: int(1, 1000).default(20),
  // Named (server-side prepared) statements: off behind a transaction pooler that cannot carry
  // them from one server connection to the next (PgBouncer before 1.21, or max_prepared_statements = 0).
  DB_PREPARED_STATEMENTS: z.enum(['on', 'off']).default('on'),
  DB_PIPELINE: z.enum(['on', 'off']).default('on'),
  RATE_LIMITS: z.enum(['on', 'off']).default('on'),
  RATE_LIMIT_MUTATIONS_PER_10S: int(1, 1_000_000).default(200),
  RATE_LIMIT_ENTER_PER_10S: int(1, 1_000_000).default(20),
  REFUND_CUTOFF_HOURS: int(0, 8760).default(24),
  WAITLIST_OFFER_SECONDS: int(1, 86_400).default(600),
  WEBHOOK_RETRY_BASE_SECONDS: z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, 'must be a number of seconds')
    .transform(Number)
    .pipe(z.number().min(0.01, 'must be at least 0.01').max(3600, 'must be at most 3600'))
    .default(5),
  WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false']).optional(),
  SEED_DEMO: z.enum(['auto', 'always', 'never']).default('auto'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  METRICS_PORT: int(1, 65535).optional(),
  CORS_ORIGINS: z
    .string()
    .transform((v) => v.split(',').map((o) => o.trim()).filter(Boolean))
    .refine((list) => list.every((o) => o === '*' || isOrigin(o)), 'must be * or a comma-separated list of origins such as https://tickets.example.com')
    .optional(),
  HTTP_HEADERS_TIMEOUT_SECONDS: int(1, 600).default(10),
  HTTP_REQUEST_TIMEOUT_SECONDS: int(1, 3600).default(30),
  TRPC_FAST_PATH: z.enum(['on', 'off']).default('on'),
});

function isOrigin(v: string): boolean {
  try {
    return new URL(v).origin === v;
  } catch {
    return false;
  }
}

export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  /** Talk to a Redis Cluster (several seed nodes in REDIS_URL, or REDIS_CLUSTER=on). */
  redisCluster: boolean;
  /** Namespaces this deployment's keys when a Redis is shared. */
  redisKeyPrefix: string;
  holdTtlSeconds: number;
  queue: { maxActive: number; activeTtlSeconds: number; idleTimeoutSeconds: number };
  /** The ETA learns from the deployment's earlier sales (ETA_PRIOR_EVERY_MS in queue.store.ts). */
  queueEtaPrior: boolean;
  auth: { mode: 'dev' | 'jwt'; jwtSecret: string | undefined; jwtMaxLifetimeSeconds: number };
  queueTokenSecret: string;
  adminApiKey: string;
  charge: { maxPerTx: number; monthlyLimit: number };
  dbPoolSize: number;
  /** Statements run as named (prepared) statements; off behind a pooler that cannot carry them. */
  dbPreparedStatements: boolean;
  /** BEGIN sent with a transaction's first statement, COMMIT with the hold's and the payment's last (db/pipeline.ts). */
  dbPipeline: boolean;
  /** Per-user limits shared by every replica (through the queue store's Redis). */
  rateLimits: { enabled: boolean; mutationsPer10s: number; enterPer10s: number };
  refundCutoffHours: number;
  waitlistOfferSeconds: number;
  /** Outgoing webhooks: the first retry's delay (doubling after), and whether loopback/private endpoints are allowed. */
  webhooks: { retryBaseSeconds: number; allowPrivate: boolean };
  seedDemo: 'auto' | 'always' | 'never';
  logLevel: string;
  /** CLOCK_OFFSET_MS: the process clock's shift (a drift drill); 0 normally. */
  clockOffsetMs: number;
  http: {
    /** Where /metrics is served; undefined: nowhere (never on the public port). */
    metricsPort: number | undefined;
    /** Origins a browser may call from (`*` for any); empty: no cross-origin access. */
    corsOrigins: string[];
    /** Slow clients are cut off: all headers within the first limit, the whole request within the second. */
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    /** Unbatched calls of the hot procedures skip tRPC's fetch adapter (off: everything through tRPC's handler). */
    fastPath: boolean;
  };
  /** Which secrets fell back to their dev-only defaults (for a start-up warning). */
  devDefaults: string[];
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * A start that failed on what a setting points at (a database that refuses or does not exist, a
 * data directory that cannot be made): the message names the setting and what it points at (a
 * URL's password hidden), then the cause, as a bad value's ConfigError names its variable.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    readonly variable: string,
    where: string,
    cause: unknown,
  ) {
    super(`${variable} (${where}): ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }

  /** Runs one step of the start; a failure becomes a StartupError naming `variable`. */
  static async naming<T>(variable: string, where: string, step: () => T | Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      throw new StartupError(variable, where, err);
    }
  }
}

/**
 * A *_URL value that did not parse, as it may be shown: whatever stands between `//user:` and
 * the last `@` replaced by ***. A password with a `/` or `#` is why such a URL does not parse, so
 * the URL parser cannot be asked where the password ends; the last `@` is past it (a host has none).
 */
export function hidePasswords(value: string): string {
  return value.replace(/(\/\/[^:/@]*:).*@/g, '$1***@');
}

/** A connection string as it may be shown: its password replaced by ***. */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the URL given';
  }
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "not set", as in most twelve-factor tooling.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = ZEnv.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const got = env[name];
    const shown = name.includes('SECRET') || name.includes('KEY') || got === undefined ? '' : ` (got "${name.endsWith('_URL') ? hidePasswords(got) : got}")`;
    throw new ConfigError(`Invalid configuration: ${name} ${issue.message}${shown}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const devDefaults: string[] = [];
  if (e.AUTH_MODE === 'dev') {
    if (production) throw new ConfigError('Invalid configuration: AUTH_MODE=dev is refused when NODE_ENV=production (use AUTH_MODE=jwt)');
    devDefaults.push('AUTH_MODE');
  }
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT === e.PORT) {
    throw new ConfigError(`Invalid configuration: METRICS_PORT must differ from PORT: metrics are never served on the public port (got "${e.METRICS_PORT}")`);
  }
  if (e.AUTH_MODE === 'jwt' && !e.AUTH_JWT_SECRET) {
    throw new ConfigError('Invalid configuration: AUTH_JWT_SECRET is required when AUTH_MODE=jwt');
  }
  for (const name of ['QUEUE_TOKEN_SECRET', 'ADMIN_API_KEY'] as const) {
    if (!e[name]) {
      if (production) throw new ConfigError(`Invalid configuration: ${name} is required when NODE_ENV=production`);
      devDefaults.push(name);
    }
  }
  // The dev-only secret is in this repository for anyone to read: given explicitly, it is no
  // secret either (an outside review started production with it). The dev-only admin key is
  // shorter than any key the schema takes.
  if (production && e.QUEUE_TOKEN_SECRET === DEV_QUEUE_TOKEN_SECRET) {
    throw new ConfigError('Invalid configuration: QUEUE_TOKEN_SECRET is the dev-only default, which is public; set a secret of your own when NODE_ENV=production');
  }
  // Each replica would sell the same seats from a database and a line of its own: an env file
  // that lost its DATABASE_URL served a sale on embedded PGlite, demo data and all (a review).
  if (production && (!e.DATABASE_URL || !e.REDIS_URL)) {
    const missing = [!e.DATABASE_URL && 'DATABASE_URL', !e.REDIS_URL && 'REDIS_URL'].filter(Boolean).join(' and ');
    throw new ConfigError(
      `Invalid configuration: ${missing} required when NODE_ENV=production: the embedded database and the in-process queue serve one process only`,
    );
  }
  return {
    nodeEnv: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER === 'on' || (e.REDIS_URL?.includes(',') ?? false),
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    holdTtlSeconds: e.HOLD_TTL_SECONDS,
    queue: {
      maxActive: e.QUEUE_MAX_ACTIVE,
      activeTtlSeconds: e.QUEUE_ACTIVE_TTL_SECONDS,
      idleTimeoutSeconds: e.QUEUE_IDLE_TIMEOUT_SECONDS,
    },
    queueEtaPrior: e.QUEUE_ETA_PRIOR === 'on',
    auth: { mode: e.AUTH_MODE, jwtSecret: e.AUTH_JWT_SECRET, jwtMaxLifetimeSeconds: e.AUTH_JWT_MAX_LIFETIME_SECONDS },
    queueTokenSecret: e.QUEUE_TOKEN_SECRET ?? DEV_QUEUE_TOKEN_SECRET,
    adminApiKey: e.ADMIN_API_KEY ?? DEV_ADMIN_API_KEY,
    charge: { maxPerTx: e.CHARGE_MAX_PER_TX, monthlyLimit: e.CHARGE_MONTHLY_LIMIT },
    dbPoolSize: e.DB_POOL_SIZE,
    dbPreparedStatements: e.DB_PREPARED_STATEMENTS === 'on',
    dbPipeline: e.DB_PIPELINE === 'on',
    rateLimits: { enabled: e.RATE_LIMITS === 'on', mutationsPer10s: e.RATE_LIMIT_MUTATIONS_PER_10S, enterPer10s: e.RATE_LIMIT_ENTER_PER_10S },
    refundCutoffHours: e.REFUND_CUTOFF_HOURS,
    waitlistOfferSeconds: e.WAITLIST_OFFER_SECONDS,
    webhooks: {
      retryBaseSeconds: e.WEBHOOK_RETRY_BASE_SECONDS,
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE ? e.WEBHOOK_ALLOW_PRIVATE === 'true' : !production,
    },
    seedDemo: e.SEED_DEMO,
    logLevel: e.LOG_LEVEL,
    clockOffsetMs: e.CLOCK_OFFSET_MS,
    http: {
      metricsPort: e.METRICS_PORT,
      corsOrigins: e.CORS_ORIGINS ?? [],
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_SECONDS * 1000,
      requestTimeoutMs: Math.max(e.HTTP_REQUEST_TIMEOUT_SECONDS, e.HTTP_HEADERS_TIMEOUT_SECONDS) * 1000,
      fastPath: e.TRPC_FAST_PATH === 'on',
    },
    devDefaults,
  };
}
