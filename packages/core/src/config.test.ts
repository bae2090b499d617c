import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

const SECRETS = {
  AUTH_MODE: 'jwt',
  AUTH_JWT_SECRET: 'jwt-secret-for-tests-0123456789abcdef',
  QUEUE_TOKEN_SECRET: 'queue-secret-for-tests-0123456789abcdef',
  ADMIN_API_KEY: 'admin-key-for-tests-0123',
};

/** The ConfigError loadConfig throws for this environment. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('gives the contract defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      nodeEnv: 'development',
      port: 3000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      redisUrl: undefined,
      holdTtlSeconds: 300,
      queue: { maxActive: 100, activeTtlSeconds: 600, idleTimeoutSeconds: 60 },
      auth: { mode: 'dev', jwtSecret: undefined, jwtMaxLifetimeSeconds: 2_592_000 },
      charge: { maxPerTx: 1_000_000, monthlyLimit: 5_000_000 },
    });
    // The dev-only fallbacks are there, and named so the server can warn about each.
    expect(c.queueTokenSecret.length).toBeGreaterThan(0);
    expect(c.adminApiKey.length).toBeGreaterThan(0);
    expect([...c.devDefaults].sort()).toEqual(['ADMIN_API_KEY', 'AUTH_MODE', 'QUEUE_TOKEN_SECRET']);
  });

  it('reads every variable it is given', () => {
    const c = loadConfig({
      NODE_ENV: 'test',
      PORT: '8080',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://u@db:5432/concert',
      REDIS_URL: 'redis://cache:6379',
      HOLD_TTL_SECONDS: ' 120 ',
      QUEUE_MAX_ACTIVE: '7',
      QUEUE_ACTIVE_TTL_SECONDS: '30',
      QUEUE_IDLE_TIMEOUT_SECONDS: '15',
      CHARGE_MAX_PER_TX: '5000',
      CHARGE_MONTHLY_LIMIT: '20000',
      ...SECRETS,
    });
    expect(c).toMatchObject({
      nodeEnv: 'test',
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: 'postgres://u@db:5432/concert',
      redisUrl: 'redis://cache:6379',
      holdTtlSeconds: 120,
      queue: { maxActive: 7, activeTtlSeconds: 30, idleTimeoutSeconds: 15 },
      auth: { mode: 'jwt', jwtSecret: SECRETS.AUTH_JWT_SECRET, jwtMaxLifetimeSeconds: 2_592_000 },
      queueTokenSecret: SECRETS.QUEUE_TOKEN_SECRET,
      adminApiKey: SECRETS.ADMIN_API_KEY,
      charge: { maxPerTx: 5000, monthlyLimit: 20000 },
      devDefaults: [],
    });
  });

  it('treats an empty variable as unset', () => {
    const c = loadConfig({ PORT: '', HOLD_TTL_SECONDS: '', DATABASE_URL: '', AUTH_MODE: '' });
    expect(c.port).toBe(3000);
    expect(c.holdTtlSeconds).toBe(300);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.auth.mode).toBe('dev');
  });

  const bad: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['HOST', '   '],
    ['DATABASE_URL', 'mysql://db/concert'],
    ['DATABASE_URL', 'not a url'],
    ['REDIS_URL', 'http://cache:6379'],
    ['HOLD_TTL_SECONDS', '0'],
    ['HOLD_TTL_SECONDS', '1.5'],
    ['HOLD_TTL_SECONDS', '3e2'],
    ['HOLD_TTL_SECONDS', '99999999999999999999'],
    ['QUEUE_MAX_ACTIVE', '0'],
    ['QUEUE_ACTIVE_TTL_SECONDS', 'ten'],
    ['QUEUE_IDLE_TIMEOUT_SECONDS', '-5'],
    ['AUTH_MODE', 'oauth'],
    ['AUTH_JWT_SECRET', 'too-short'],
    ['QUEUE_TOKEN_SECRET', 'too-short'],
    ['ADMIN_API_KEY', 'short'],
    ['CHARGE_MAX_PER_TX', '0'],
    ['CHARGE_MAX_PER_TX', '1,000'],
    ['CHARGE_MONTHLY_LIMIT', 'lots'],
    ['NODE_ENV', 'staging'],
  ];
  it.each(bad)('refuses %s=%s with one line naming the variable', (name, value) => {
    const err = configError({ [name]: value });
    expect(err.message).toContain(name);
    expect(err.message).not.toContain('\n');
    expect(err.message.length).toBeLessThan(300);
  });

  it('names the first bad variable only, still in one line, when several are bad', () => {
    const err = configError({ PORT: 'x', HOLD_TTL_SECONDS: 'y' });
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(/PORT|HOLD_TTL_SECONDS/);
  });

  it('shows the bad value of an ordinary variable but never a secret', () => {
    expect(configError({ PORT: 'abc' }).message).toContain('abc');
    const secret = 'leaky-secret';
    for (const name of ['AUTH_JWT_SECRET', 'QUEUE_TOKEN_SECRET', 'ADMIN_API_KEY']) {
      const err = configError({ [name]: secret });
      expect(err.message).toContain(name);
      expect(err.message).not.toContain(secret);
    }
  });

  // A URL that does not parse was shown whole, password and all: a password with a / (pasted
  // into DATABASE_URL by docker-compose.yml, as it was) or a bad port printed it (an outside review).
  it('shows a bad URL without its password', () => {
    for (const [name, url, password] of [
      ['DATABASE_URL', 'postgres://concert:a/b+c@d@postgres:5432/concert', 'a/b+c@d'],
      ['DATABASE_URL', 'postgres://concert:s3cretPW@postgres:54x32/concert', 's3cretPW'],
      ['REDIS_URL', 'redis://:hunter2pw@redis:63x79', 'hunter2pw'],
      ['REDIS_URL', 'redis://a:pw1@r1:1x,redis://a:pw2@r2:6379', 'pw1'],
    ] as const) {
      const err = configError({ [name]: url });
      expect(err.message).toContain(name);
      expect(err.message).toContain('***@');
      expect(err.message).not.toContain(password);
      expect(err.message).not.toContain('pw2');
    }
    expect(configError({ DATABASE_URL: 'mysql://db/x' }).message).toContain('must be a URL starting with postgres:// or postgresql:// (got "mysql://db/x")');
  });

  // The API listened on PORT, logged that it was up, then died of an unhandled EADDRINUSE (a
  // stack trace, not a line) binding the metrics listener to the same port.
  it('refuses a METRICS_PORT that is the public PORT, in one line naming it', () => {
    for (const env of [{ METRICS_PORT: '3000' }, { PORT: '8080', METRICS_PORT: '8080' }]) {
      const err = configError(env);
      expect(err.message).toContain('METRICS_PORT');
      expect(err.message).not.toContain('\n');
    }
    expect(loadConfig({ PORT: '8080', METRICS_PORT: '9464' }).http.metricsPort).toBe(9464);
    expect(loadConfig({ PORT: '0', METRICS_PORT: '9464' }).http.metricsPort).toBe(9464);
  });

  it('requires AUTH_JWT_SECRET in jwt mode', () => {
    const err = configError({ AUTH_MODE: 'jwt' });
    expect(err.message).toContain('AUTH_JWT_SECRET');
    expect(err.message).not.toContain('\n');
  });

  describe('in production', () => {
    const prod = { NODE_ENV: 'production', DATABASE_URL: 'postgres://db.example/concert', REDIS_URL: 'redis://redis.example:6379', ...SECRETS };

    it('starts with jwt identity and real secrets, with no dev defaults', () => {
      const c = loadConfig(prod);
      expect(c.nodeEnv).toBe('production');
      expect(c.auth.mode).toBe('jwt');
      expect(c.devDefaults).toEqual([]);
    });

    it('refuses AUTH_MODE=dev, whether explicit or by default', () => {
      for (const env of [{ ...prod, AUTH_MODE: 'dev' }, { ...prod, AUTH_MODE: undefined }]) {
        const err = configError(env);
        expect(err.message).toContain('AUTH_MODE');
        expect(err.message).not.toContain('\n');
      }
    });

    it.each(['QUEUE_TOKEN_SECRET', 'ADMIN_API_KEY'])('refuses to fall back to the dev-only %s', (name) => {
      const err = configError({ ...prod, [name]: undefined });
      expect(err.message).toContain(name);
      expect(err.message).not.toContain('\n');
      // An empty value is "unset", so it is refused too.
      expect(configError({ ...prod, [name]: '' }).message).toContain(name);
    });

    // (The dev-only ADMIN_API_KEY is shorter than the 16 characters a key must have anywhere.)
    it('refuses the dev-only QUEUE_TOKEN_SECRET given explicitly (it is public)', () => {
      const value = 'dev-only-queue-token-secret-change-me';
      const err = configError({ ...prod, QUEUE_TOKEN_SECRET: value });
      expect(err.message).toContain('QUEUE_TOKEN_SECRET');
      expect(err.message).not.toContain('\n');
      // Outside production it is the default it always was.
      expect(loadConfig({ QUEUE_TOKEN_SECRET: value }).queueTokenSecret).toBe(value);
    });

    it.each(['DATABASE_URL', 'REDIS_URL'])('refuses to run without %s: embedded stores serve one process only', (name) => {
      for (const env of [{ ...prod, [name]: undefined }, { ...prod, [name]: '' }]) {
        const err = configError(env);
        expect(err.message).toContain(name);
        expect(err.message).not.toContain('\n');
      }
      expect(configError({ ...prod, DATABASE_URL: undefined, REDIS_URL: undefined }).message).toContain('DATABASE_URL and REDIS_URL');
    });
  });
});
