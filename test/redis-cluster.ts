import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RedisClusterOptions {
  /** Where each node keeps its nodes.conf and append-only file (one folder per port). */
  dir: string;
  /** One port per master; 3 makes the smallest real cluster. */
  ports: number[];
  /** Append-only file with fsync every second, so a restart keeps the line. */
  appendOnly?: boolean;
}

/**
 * A Redis Cluster of real `redis-server` processes in cluster mode, made with
 * `redis-cli --cluster create` (no replicas): what `pnpm stack up` and `pnpm test:cluster` run.
 * The servers daemonize; `stopRedisCluster` shuts them down.
 */
export async function startRedisCluster(opts: RedisClusterOptions): Promise<string> {
  for (const port of opts.ports) {
    const dir = path.join(opts.dir, String(port));
    mkdirSync(dir, { recursive: true });
    await run('redis-server', [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--daemonize', 'yes',
      '--dir', dir,
      '--pidfile', path.join(dir, 'redis.pid'),
      '--logfile', path.join(dir, 'redis.log'),
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', '5000',
      '--save', '',
      '--appendonly', opts.appendOnly ? 'yes' : 'no',
      '--appendfsync', 'everysec',
      '--maxmemory-policy', 'noeviction',
    ]);
  }
  for (const port of opts.ports) await waitFor(async () => (await cli(port, 'ping')) === 'PONG', `redis on ${port}`);
  // A cluster made before in these folders comes back by itself from its nodes.conf.
  const made = (await cli(opts.ports[0]!, 'cluster', 'info')).includes('cluster_known_nodes:' + opts.ports.length);
  if (!made) await run('redis-cli', ['--cluster', 'create', ...opts.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
  for (const port of opts.ports) {
    await waitFor(async () => (await cli(port, 'cluster', 'info')).includes('cluster_state:ok'), `cluster state ok on ${port}`);
  }
  return urlOf(opts.ports);
}

export async function stopRedisCluster(ports: number[]): Promise<void> {
  await Promise.all(ports.map((port) => cli(port, 'shutdown', 'nosave').catch(() => '')));
}

/** The REDIS_URL the API takes for the cluster: every seed node, comma-separated. */
export function urlOf(ports: number[]): string {
  return ports.map((p) => `redis://127.0.0.1:${p}`).join(',');
}

export async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return stdout.trim();
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// `tsx test/redis-cluster.ts up|down DIR PORT...`: the same cluster from a shell.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const [cmd, dir, ...ports] = process.argv.slice(2);
  const nums = ports.map(Number);
  if (cmd === 'up' && dir) console.log(await startRedisCluster({ dir, ports: nums, appendOnly: true }));
  else if (cmd === 'down') await stopRedisCluster(nums);
  else {
    console.error('usage: redis-cluster.ts up DIR PORT... | down - PORT...');
    process.exit(2);
  }
}
