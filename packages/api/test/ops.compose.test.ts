import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@concert/core';
import pg from 'pg';
import { ROOT } from '../../../test/harness.ts';

/**
 * docker-compose.yml, checked without a Docker daemon: `docker-compose config` (Debian's
 * docker-compose) validates and resolves it, and the test asserts the production shape.
 * A missing docker-compose fails this suite; it is not skipped.
 */

const run = promisify(execFile);
const SECRETS = {
  POSTGRES_PASSWORD: 'sentinel-pg-password-4f1c9a',
  AUTH_JWT_SECRET: 'sentinel-jwt-secret-0123456789abcdef0123456789',
  QUEUE_TOKEN_SECRET: 'sentinel-queue-secret-0123456789abcdef01234567',
  ADMIN_API_KEY: 'sentinel-admin-key-0123456789',
};

interface Service {
  command?: string[];
  image?: string;
  build?: unknown;
  environment?: Record<string, string | null>;
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  volumes?: Array<string | { source?: string; target?: string }>;
}

/** The environment docker-compose runs in: this process's, minus any secrets it might carry, plus `extra`. */
function composeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(SECRETS)) delete env[name];
  return { ...env, ...extra };
}

async function compose(args: string[], env: Record<string, string>) {
  return run('docker-compose', ['--project-directory', ROOT, '-f', path.join(ROOT, 'docker-compose.yml'), ...args], {
    cwd: ROOT,
    env: composeEnv(env),
    timeout: 30_000,
  });
}

/** YAML to JSON through PyYAML, which Debian's docker-compose itself depends on. */
function parseYaml(text: string): { services: Record<string, Service> } {
  const r = spawnSync('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: text, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`could not parse docker-compose output: ${r.error?.message ?? r.stderr}`);
  return JSON.parse(r.stdout) as { services: Record<string, Service> };
}

const volumeTargets = (s: Service) => (s.volumes ?? []).map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v));

describe('docker-compose.yml (validated by docker-compose, no daemon needed)', () => {
  it('docker-compose is installed', async () => {
    const { stdout } = await run('docker-compose', ['version'], { timeout: 20_000 });
    expect(stdout).toMatch(/docker-compose version/i);
  });

  it('is valid with the secrets given, and refuses to resolve without them', async () => {
    await expect(compose(['config', '-q'], SECRETS)).resolves.toBeDefined();
    for (const missing of Object.keys(SECRETS)) {
      const without = Object.fromEntries(Object.entries(SECRETS).filter(([k]) => k !== missing));
      const err = await compose(['config', '-q'], without).then(
        () => undefined,
        (e: { stderr?: string; code?: number }) => e,
      );
      expect(err, `config must fail without ${missing}`).toBeDefined();
      expect(String(err!.stderr)).toContain(missing);
    }
  });

  it('has postgres, redis, >= 2 api replicas and an nginx load balancer, each with a health check', async () => {
    const { stdout } = await compose(['config'], SECRETS);
    const { services } = parseYaml(stdout);
    const names = Object.keys(services);
    expect(names).toEqual(expect.arrayContaining(['postgres', 'redis', 'api']));
    expect(services.postgres!.image).toMatch(/^postgres:/);
    expect(services.redis!.image).toMatch(/^redis:/);
    // The line survives a Redis restart: an append-only file on a volume.
    expect(services.redis!.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--appendfsync', 'everysec']));
    expect(volumeTargets(services.redis!).map((v) => v.target)).toContain('/data');
    const lbName = names.find((n) => /^nginx(:|$)/.test(services[n]!.image ?? ''));
    expect(lbName, 'a service running nginx').toBeDefined();
    const lb = services[lbName!]!;

    for (const name of ['postgres', 'redis', 'api', lbName!]) {
      const hc = services[name]!.healthcheck;
      expect(hc?.disable, `${name} health check`).not.toBe(true);
      const test = Array.isArray(hc?.test) ? hc.test : [hc?.test ?? ''];
      expect(test.join(' '), `${name} health check`).toMatch(/\S/);
      expect(test[0], `${name} health check`).not.toBe('NONE');
    }
    expect(JSON.stringify(services.api!.healthcheck!.test)).toContain('/readyz');

    const api = services.api!;
    expect(api.build, 'the api is built from this repository').toBeDefined();
    expect(existsSync(path.join(ROOT, 'Dockerfile'))).toBe(true);
    expect(api.deploy?.replicas).toBeGreaterThanOrEqual(2);
    const env = api.environment!;
    expect(env.NODE_ENV).toBe('production');
    expect(env.AUTH_MODE).toBe('jwt');
    expect(env.DATABASE_URL).toMatch(/^postgres(ql)?:\/\/[^@]+@postgres[:/]/);
    expect(env.REDIS_URL).toMatch(/^rediss?:\/\/redis[:/]/);
    // The secrets are the ones given through the environment.
    expect(env.AUTH_JWT_SECRET).toBe(SECRETS.AUTH_JWT_SECRET);
    expect(env.QUEUE_TOKEN_SECRET).toBe(SECRETS.QUEUE_TOKEN_SECRET);
    expect(env.ADMIN_API_KEY).toBe(SECRETS.ADMIN_API_KEY);
    // The database password travels beside the URL (node-postgres reads PGPASSWORD), not in it.
    expect(env.PGPASSWORD).toBe(SECRETS.POSTGRES_PASSWORD);
    expect(env.DATABASE_URL).not.toContain(SECRETS.POSTGRES_PASSWORD);
    expect(services.postgres!.environment!.POSTGRES_PASSWORD).toBe(SECRETS.POSTGRES_PASSWORD);
    // The api waits for healthy dependencies; the balancer for a healthy api.
    expect(api.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(api.depends_on?.redis?.condition).toBe('service_healthy');
    expect(lb.depends_on?.api).toBeDefined();

    // The balancer runs deploy/nginx.conf, which spreads /trpc over the api service's port.
    const conf = volumeTargets(lb).find((v) => v.target === '/etc/nginx/nginx.conf');
    expect(conf?.source).toBe(path.join(ROOT, 'deploy/nginx.conf'));
    const nginx = readFileSync(path.join(ROOT, 'deploy/nginx.conf'), 'utf8');
    const port = env.PORT ?? '3000';
    expect(nginx).toMatch(new RegExp(`upstream\\s+api\\s*\\{[^}]*server\\s+api:${port}\\b`));
    expect(nginx).toMatch(/location\s+\/trpc\/\s*\{[^}]*proxy_pass\s+http:\/\/api;/);
    expect(nginx).toMatch(/location\s+=\s+\/healthz/);
    // Replicas added by --scale (or recreated under new addresses) are found: the name is resolved
    // while nginx runs (`resolve`, with a zone and Docker's resolver; nginx 1.27.3 or later), not
    // once at its start.
    expect(nginx).toMatch(new RegExp(`upstream\\s+api\\s*\\{[^}]*zone\\s+api\\s[^}]*server\\s+api:${port}\\b[^;]*\\sresolve;`));
    expect(nginx).toMatch(/^\s*resolver\s+127\.0\.0\.11\b/m);
    const [major, minor] = (lb.image!.match(/^nginx:(\d+)\.(\d+)/) ?? []).slice(1).map(Number);
    expect(major! * 1000 + minor!, `${lb.image} has the upstream's resolve`).toBeGreaterThanOrEqual(1028);
  });

  it('takes a database password that a URL cannot carry as it is (/, ?, #, @)', async () => {
    const password = 'a/b+c@d?e#f%g';
    const { stdout } = await compose(['config'], { ...SECRETS, POSTGRES_PASSWORD: password });
    const env = parseYaml(stdout).services.api!.environment! as Record<string, string>;
    // The API's own configuration takes the URL (it refused the one with the password pasted in).
    expect(loadConfig({ ...env, DATA_DIR: undefined }).databaseUrl).toBe(env.DATABASE_URL);
    // And node-postgres connects with the password as it was given.
    const saved = process.env.PGPASSWORD;
    process.env.PGPASSWORD = env.PGPASSWORD;
    try {
      const client = new pg.Client({ connectionString: env.DATABASE_URL });
      expect([client.user, client.host, client.database, client.password]).toEqual(['concert', 'postgres', 'concert', password]);
    } finally {
      if (saved === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = saved;
    }
  });

  it('hard-codes no secret: each comes from a ${VARIABLE}', async () => {
    const { stdout } = await compose(['config', '--no-interpolate'], SECRETS);
    const { services } = parseYaml(stdout);
    const fromVar = (v: string | null | undefined, name: string) => expect(v, name).toMatch(new RegExp(`\\$\\{${name}(:?[?-][^}]*)?\\}`));
    const env = services.api!.environment!;
    fromVar(env.AUTH_JWT_SECRET, 'AUTH_JWT_SECRET');
    fromVar(env.QUEUE_TOKEN_SECRET, 'QUEUE_TOKEN_SECRET');
    fromVar(env.ADMIN_API_KEY, 'ADMIN_API_KEY');
    fromVar(env.PGPASSWORD, 'POSTGRES_PASSWORD');
    fromVar(services.postgres!.environment!.POSTGRES_PASSWORD, 'POSTGRES_PASSWORD');
    // And no default value sneaks a secret in (`${X:-default}`).
    const raw = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    for (const name of Object.keys(SECRETS)) expect(raw, name).not.toMatch(new RegExp(`\\$\\{${name}:?-`));
  });
});
