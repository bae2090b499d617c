/**
 * The stack's parts (see stack.ts): the production shape
 * on this machine, without Docker, from Debian's packages — nginx in front (the compose file's
 * deploy/nginx.conf with this machine's upstreams), three API processes on compiled output, a
 * three-master Redis Cluster with append-only files, and PgBouncer in transaction pooling in
 * front of the local PostgreSQL. Everything it starts keeps its pid, config, data and logs under
 * `.stack/` in the repository.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { portOpen } from '../../test/harness.ts';
import { writePgBouncerConfig } from '../../test/pgbouncer.ts';
import { urlOf } from '../../test/redis-cluster.ts';

export { portOpen };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const STATE = path.join(ROOT, '.stack');

export const PORTS = {
  http: Number(process.env.STACK_HTTP_PORT ?? 8080),
  apis: [3101, 3102, 3103],
  metrics: [9101, 9102, 9103],
  pgbouncer: 6433,
  redis: [7301, 7302, 7303],
};
export const POSTGRES_URL = process.env.STACK_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const DATABASE = 'concert_stack';

export interface Secrets {
  authJwtSecret: string;
  queueTokenSecret: string;
  adminApiKey: string;
}

export function dbUrl(viaBouncer: boolean): string {
  const u = new URL(POSTGRES_URL);
  u.pathname = `/${DATABASE}`;
  if (viaBouncer) {
    u.hostname = '127.0.0.1';
    u.port = String(PORTS.pgbouncer);
  }
  return u.toString();
}

export function secrets(): Secrets {
  const file = path.join(STATE, 'secrets.json');
  if (!existsSync(file)) {
    mkdirSync(STATE, { recursive: true });
    const s: Secrets = {
      authJwtSecret: randomBytes(32).toString('hex'),
      queueTokenSecret: randomBytes(32).toString('hex'),
      adminApiKey: randomBytes(16).toString('hex'),
    };
    writeFileSync(file, JSON.stringify(s, null, 2), { mode: 0o600 });
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Secrets;
}

export const apiUrl = () => `http://127.0.0.1:${PORTS.http}`;

export function say(line: string): void {
  console.log(`stack: ${line}`);
}

/** Debian's packages for what is missing: nginx, pgbouncer, redis-server (redis-cli comes with it). */
export function ensurePackages(): void {
  const want: Array<[string, string]> = [
    ['nginx', '/usr/sbin/nginx'],
    ['pgbouncer', '/usr/sbin/pgbouncer'],
    ['redis-server', '/usr/bin/redis-server'],
  ];
  const missing = want.filter(([, bin]) => !existsSync(bin)).map(([pkg]) => pkg);
  if (!missing.length) return;
  say(`installing ${missing.join(', ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '-q', ...missing], { stdio: 'ignore', env });
  } catch {
    execFileSync('apt-get', ['update', '-q'], { stdio: 'ignore', env });
    execFileSync('apt-get', ['install', '-y', '-q', ...missing], { stdio: 'ignore', env });
  }
}

export async function waitFor(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const pidFile = (name: string) => path.join(STATE, 'pids', `${name}.pid`);

export function alive(name: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(name), 'utf8'));
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** A long-running process of the stack, detached from this command, its output in .stack/logs. */
function daemon(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  mkdirSync(path.join(STATE, 'logs'), { recursive: true });
  mkdirSync(path.join(STATE, 'pids'), { recursive: true });
  const log = openSync(path.join(STATE, 'logs', `${name}.log`), 'a');
  const child = spawn(cmd, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', log, log] });
  child.unref();
  writeFileSync(pidFile(name), String(child.pid));
  return child;
}

export async function ensureDatabase(): Promise<void> {
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  try {
    const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) await c.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await c.end();
  }
}

export async function startPgBouncer(): Promise<void> {
  if (alive('pgbouncer')) return;
  const dir = path.join(STATE, 'pgbouncer');
  mkdirSync(dir, { recursive: true });
  const upstream = new URL(POSTGRES_URL);
  // Three API processes of DB_POOL_SIZE 20 share these server connections.
  writePgBouncerConfig(dir, { upstream, port: PORTS.pgbouncer, poolSize: 20, pidfile: path.join(dir, 'pgbouncer.pid') });
  // PgBouncer refuses to run as root.
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  for (const f of ['', 'users.txt', 'pgbouncer.ini']) chownSync(path.join(dir, f), uid, gid);
  daemon('pgbouncer', 'runuser', ['-u', 'postgres', '--', '/usr/sbin/pgbouncer', path.join(dir, 'pgbouncer.ini')]);
  await waitFor('PgBouncer', () => portOpen(PORTS.pgbouncer));
}

/** What `pnpm start` runs: the compiled API, resolving @concert/core to its compiled dist too. */
function apiEntry(): string[] {
  const compiled = path.join(ROOT, 'packages/api/dist/main.js');
  if (!existsSync(compiled)) throw new Error('packages/api/dist/main.js is missing: `pnpm stack up` builds it first');
  return ['--conditions=concert-dist', compiled];
}

export function apiEnv(i: number): NodeJS.ProcessEnv {
  const s = secrets();
  return {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(PORTS.apis[i]),
    METRICS_PORT: String(PORTS.metrics[i]),
    DATABASE_URL: dbUrl(true),
    // Debian's PgBouncer (1.18) cannot carry named statements between server connections.
    DB_PREPARED_STATEMENTS: 'off',
    REDIS_URL: urlOf(PORTS.redis),
    AUTH_MODE: 'jwt',
    AUTH_JWT_SECRET: s.authJwtSecret,
    QUEUE_TOKEN_SECRET: s.queueTokenSecret,
    ADMIN_API_KEY: s.adminApiKey,
    DB_POOL_SIZE: '20',
    LOG_LEVEL: 'warn',
  };
}

export async function startApi(i: number): Promise<void> {
  if (alive(`api-${i + 1}`)) return;
  daemon(`api-${i + 1}`, process.execPath, apiEntry(), apiEnv(i));
  await waitFor(`API ${i + 1}`, async () => (await fetch(`http://127.0.0.1:${PORTS.apis[i]}/readyz`)).ok, 120_000);
}

export function stopApi(i: number, signal: NodeJS.Signals = 'SIGTERM'): number | undefined {
  const pid = alive(`api-${i + 1}`);
  if (pid) process.kill(pid, signal);
  return pid;
}

/** deploy/nginx.conf as compose runs it, with this machine's upstreams, port and paths. */
export function nginxConfig(dir: string, ports: { http: number; apis: number[] } = PORTS): string {
  const base = readFileSync(path.join(ROOT, 'deploy/nginx.conf'), 'utf8');
  const servers = ports.apis.map((p) => `server 127.0.0.1:${p} max_fails=2 fail_timeout=5s;`).join('\n    ');
  let conf = base.replace(/server api:3000[^;]*;/, servers).replace(/listen 80;/, `listen 127.0.0.1:${ports.http};`);
  if (conf === base || !conf.includes(`127.0.0.1:${ports.apis[0]}`)) throw new Error('deploy/nginx.conf no longer has the upstream line "server api:3000 …;" this stack replaces');
  const tmp = path.join(dir, 'tmp');
  conf = conf.replace(
    /^http \{/m,
    `http {\n  access_log ${path.join(dir, 'access.log')};\n  client_body_temp_path ${tmp}/body;\n  proxy_temp_path ${tmp}/proxy;\n  fastcgi_temp_path ${tmp}/fastcgi;\n  uwsgi_temp_path ${tmp}/uwsgi;\n  scgi_temp_path ${tmp}/scgi;`,
  );
  return `pid ${path.join(dir, 'nginx.pid')};\nerror_log ${path.join(dir, 'error.log')};\nworker_processes 1;\n${conf}`;
}

export async function startNginx(): Promise<void> {
  const dir = path.join(STATE, 'nginx');
  if (existsSync(path.join(dir, 'nginx.pid')) && (await portOpen(PORTS.http))) return;
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  chmodSync(path.join(dir, 'tmp'), 0o777);
  writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir));
  execFileSync('/usr/sbin/nginx', ['-t', '-q', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'inherit' });
  execFileSync('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'inherit' });
  await waitFor('nginx', async () => (await fetch(`${apiUrl()}/readyz`)).ok);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

