import { type ChildProcess, spawn } from 'node:child_process';
import { portOpen } from './harness.ts';

export interface RedisServer {
  child: ChildProcess;
  port: number;
  url: string;
  /** SIGKILL by default: a crash, not a shutdown. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * A redis-server of the test's own on a loopback port, for tests that stop, freeze or restart
 * it (the shared Redis is never touched). Without `dir` it keeps nothing on disk; with
 * `appendOnly` it keeps an append-only file in `dir` (fsync every second), as production does.
 */
export async function startRedisServer(port: number, opts: { dir?: string; appendOnly?: boolean } = {}): Promise<RedisServer> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', ''];
  args.push('--appendonly', opts.appendOnly ? 'yes' : 'no', '--appendfsync', 'everysec');
  if (opts.dir) args.push('--dir', opts.dir);
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await portOpen(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on ${port}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
