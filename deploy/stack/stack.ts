/**
 * `pnpm stack up | status | down [--purge] | rehearse [--fans N] [--seats N] [--shows N] …`: the production shape
 * on this machine, without Docker, from Debian's packages — nginx in front (the compose file's
 * deploy/nginx.conf with this machine's upstreams), three API processes on compiled output, a
 * three-master Redis Cluster with append-only files, and PgBouncer in transaction pooling in
 * front of the local PostgreSQL. Everything it starts keeps its pid, config, data and logs under
 * `.stack/` in the repository.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { cli as redisCli, startRedisCluster, stopRedisCluster } from '../../test/redis-cluster.ts';
import { parseRehearseArgs, REHEARSE_USAGE, RehearseUsageError, rehearse } from './rehearse.ts';
import {
  alive,
  apiEnv,
  apiUrl,
  DATABASE,
  dbUrl,
  ensureDatabase,
  ensurePackages,
  isAlive,
  PORTS,
  portOpen,
  POSTGRES_URL,
  ROOT,
  say,
  secrets,
  startApi,
  startNginx,
  startPgBouncer,
  STATE,
  stopApi,
  waitFor,
} from './shape.ts';

async function up(): Promise<void> {
  ensurePackages();
  mkdirSync(STATE, { recursive: true });
  secrets();
  say('PostgreSQL: database ' + DATABASE);
  await ensureDatabase();
  say(`Redis Cluster: 3 masters on ${PORTS.redis.join(', ')} (append-only, fsync every second)`);
  await startRedisCluster({ dir: path.join(STATE, 'redis'), ports: PORTS.redis, appendOnly: true });
  say(`PgBouncer (transaction pooling) on ${PORTS.pgbouncer}`);
  await startPgBouncer();
  // Migrations first, straight to PostgreSQL, as a deployment's migrate job does.
  execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'packages/core/src/db/migrate.cli.ts')], {
    stdio: 'inherit',
    env: { ...apiEnv(0), DATABASE_URL: dbUrl(false) },
  });
  // Compiled output, as `pnpm start` and the image run it (incremental: a no-op when up to date).
  say('building packages/api/dist (tsc -b packages/api/tsconfig.build.json)');
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', path.join(ROOT, 'packages/api/tsconfig.build.json')], { stdio: 'inherit' });
  say(`API processes on ${PORTS.apis.join(', ')} (metrics on ${PORTS.metrics.join(', ')})`);
  await Promise.all(PORTS.apis.map((_, i) => startApi(i)));
  say(`nginx on ${PORTS.http}`);
  await startNginx();
  say(`up: ${apiUrl()}/trpc  (admin key in .stack/secrets.json)`);
}

async function status(): Promise<boolean> {
  const rows: Array<[string, string, boolean]> = [];
  const check = async (name: string, detail: string, ok: () => Promise<boolean>) => rows.push([name, detail, await ok().catch(() => false)]);
  await check('nginx', apiUrl(), async () => (await fetch(`${apiUrl()}/readyz`)).ok);
  for (const [i, port] of PORTS.apis.entries()) {
    await check(`api-${i + 1}`, `pid ${alive(`api-${i + 1}`) ?? '-'} :${port}`, async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
  }
  await check('pgbouncer', `:${PORTS.pgbouncer}`, () => portOpen(PORTS.pgbouncer));
  for (const port of PORTS.redis) await check(`redis ${port}`, 'cluster master', async () => (await redisCli(port, 'cluster', 'info')).includes('cluster_state:ok'));
  for (const [name, detail, ok] of rows) console.log(`${ok ? 'up  ' : 'DOWN'}  ${name.padEnd(12)} ${detail}`);
  return rows.every(([, , ok]) => ok);
}

async function down(purge: boolean): Promise<void> {
  const nginxDir = path.join(STATE, 'nginx');
  if (existsSync(path.join(nginxDir, 'nginx.pid'))) {
    try {
      execFileSync('/usr/sbin/nginx', ['-p', nginxDir, '-c', path.join(nginxDir, 'nginx.conf'), '-s', 'quit'], { stdio: 'ignore' });
    } catch {
      // not running
    }
  }
  const pids = PORTS.apis.map((_, i) => stopApi(i)).filter((p): p is number => p !== undefined);
  await waitFor('the API processes to drain', async () => pids.every((pid) => !isAlive(pid)), 30_000).catch(() => pids.forEach((pid) => isAlive(pid) && process.kill(pid, 'SIGKILL')));
  const bouncer = alive('pgbouncer');
  if (bouncer) {
    // runuser's child is PgBouncer itself; its own pid file names it.
    const own = Number(readFileSync(path.join(STATE, 'pgbouncer', 'pgbouncer.pid'), 'utf8').trim());
    if (isAlive(own)) process.kill(own, 'SIGTERM');
    await waitFor('PgBouncer to stop', async () => !isAlive(own), 10_000).catch(() => {});
    // runuser does not always follow its child out.
    if (isAlive(bouncer)) process.kill(bouncer, 'SIGKILL');
  }
  await stopRedisCluster(PORTS.redis);
  if (purge) {
    rmSync(STATE, { recursive: true, force: true });
    const c = new pg.Client({ connectionString: POSTGRES_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`).finally(() => c.end());
  }
  say(purge ? 'down (data removed)' : 'down (data kept in .stack/ and the database; --purge removes it)');
}


const USAGE = `usage: pnpm stack <command>
pnpm stack up                    start nginx, three API processes, a 3-master Redis Cluster and PgBouncer (state in .stack/)
pnpm stack status                what is up; exit 1 when anything is down
pnpm stack down [--purge]        stop it all (--purge also removes .stack/ and the database)
${REHEARSE_USAGE}`;

const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'up') await up();
  else if (cmd === 'status') process.exitCode = (await status()) ? 0 : 1;
  else if (cmd === 'down') await down(rest.includes('--purge'));
  else if (cmd === 'rehearse' && (rest.includes('--help') || rest.includes('-h'))) console.log(REHEARSE_USAGE);
  else if (cmd === 'rehearse') process.exitCode = (await rehearse(parseRehearseArgs(rest))).ok ? 0 : 1;
  else if (cmd === 'help' || cmd === '--help' || cmd === '-h') console.log(USAGE);
  else {
    console.error(USAGE);
    process.exitCode = 2;
  }
} catch (err) {
  console.error(`stack: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof RehearseUsageError) console.error('see: pnpm stack rehearse --help');
  process.exitCode = err instanceof RehearseUsageError ? 2 : 1;
}
