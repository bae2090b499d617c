import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BASE_DATABASE_URL, freePort, portOpen } from './harness.ts';

export interface PgBouncer {
  /** `url` with its host and port moved to PgBouncer. */
  via(url: string): string;
  port: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Debian's PgBouncer in transaction pooling in front of the test PostgreSQL, as the production
 * shape runs it: a server connection is lent for one transaction only, so anything that relies
 * on session state breaks here. PgBouncer refuses to run as root; it runs as `postgres`.
 */
export async function startPgBouncer(opts: { poolSize?: number; roundRobin?: boolean } = {}): Promise<PgBouncer> {
  const bin = which('pgbouncer');
  if (!bin) throw new Error('PgBouncer is not installed: apt-get install -y pgbouncer (.ci/run does)');
  const upstream = new URL(BASE_DATABASE_URL);
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbouncer-'));
  writePgBouncerConfig(dir, { upstream, port, poolSize: opts.poolSize ?? 20, roundRobin: opts.roundRobin ?? false });
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  for (const f of ['', 'users.txt', 'pgbouncer.ini']) chownSync(path.join(dir, f), uid, gid);
  chmodSync(dir, 0o700);
  const child: ChildProcess = spawn('runuser', ['-u', 'postgres', '--', bin, path.join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await portOpen(port))) {
    if (child.exitCode !== null) throw new Error(`PgBouncer exited:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`PgBouncer did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    via(url: string) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function which(name: string): string | undefined {
  for (const p of [`/usr/sbin/${name}`, `/usr/bin/${name}`, `/usr/local/bin/${name}`]) {
    try {
      execFileSync('test', ['-x', p]);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * pgbouncer.ini and its users file in `dir`: transaction pooling in front of `upstream` (every
 * database), trust auth for its user, on a loopback port. Shared with `pnpm stack`.
 */
export function writePgBouncerConfig(dir: string, o: { upstream: URL; port: number; poolSize: number; roundRobin?: boolean; pidfile?: string }): void {
  const user = decodeURIComponent(o.upstream.username || 'postgres');
  writeFileSync(path.join(dir, 'users.txt'), `"${user}" ""\n`);
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${o.upstream.hostname} port=${o.upstream.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${o.port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${o.poolSize}`,
      'max_client_conn = 900',
      'server_reset_query =',
      'ignore_startup_parameters = extra_float_digits',
      // Round robin spreads consecutive transactions over server connections (LIFO would hide
      // session-state bugs by handing one idle client the same connection every time).
      `server_round_robin = ${o.roundRobin ? 1 : 0}`,
      ...(o.pidfile ? [`pidfile = ${o.pidfile}`] : []),
      '',
    ].join('\n'),
  );
}
