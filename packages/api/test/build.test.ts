import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, freePort, portOpen, ROOT, spawnApi, type SpawnedApi, type TestDatabase, testEnv } from '../../../test/harness.ts';

/** What `pnpm start` and the image run: the compiled server on Node 24, no TypeScript at run time. */
describe('the compiled server', () => {
  let db: TestDatabase;
  let api: SpawnedApi;
  beforeAll(async () => {
    await promisify(execFile)(path.join(ROOT, 'node_modules/.bin/tsc'), ['-b', 'packages/api/tsconfig.build.json'], { cwd: ROOT, timeout: 300_000 });
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url, { LOG_LEVEL: 'info', SEED_DEMO: 'always' }), { compiled: true });
  }, 400_000);
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('serves from packages/api/dist on Node 24, started without tsx, and says which Node it runs on', async () => {
    const res = await fetch(`${api.url}/trpc/concerts.list`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { result: { data: { json: { items: unknown[] } } } };
    expect(body.result.data.json.items.length).toBeGreaterThan(0);

    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(24);
    const listening = api.output().split('\n').find((l) => l.includes('listening on'));
    expect(listening, api.output()).toContain(`on Node ${process.version}`);

    const argv = readFileSync(`/proc/${api.child.pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toContain(path.join(ROOT, 'packages/api/dist/main.js'));
    expect(argv.join(' ')).not.toMatch(/tsx|\.ts\b/);
  });

  // On the system's Node 20 it died in undici with a stack trace (an outside review).
  it('refuses an older Node in one line, naming the Node it needs (the system Node 20 of this machine)', async () => {
    const old = '/usr/bin/node';
    const version = await promisify(execFile)(old, ['--version']).then((r) => r.stdout.trim());
    expect(Number(/^v(\d+)/.exec(version)?.[1]), `this test needs the system's Node older than 24 at ${old}`).toBeLessThan(24);
    const run = await promisify(execFile)(old, ['--conditions=concert-dist', path.join(ROOT, 'packages/api/dist/main.js')], { env: { PATH: process.env.PATH, PORT: '0' } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(run).toEqual({ code: 1, stderr: `The concert API needs Node.js 24.11 or later; this is Node.js ${version.slice(1)}. \`pnpm start\` runs it on the project's own Node 24 (README).\n` });
  });
});

/** The processes under pid, with their command lines (from /proc). */
function descendants(pid: number): Array<{ pid: number; cmd: string }> {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return [{ pid: Number(d), ppid, cmd: readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ') }];
      } catch {
        return [];
      }
    });
  const out: Array<{ pid: number; cmd: string }> = [];
  const walk = (p: number) => {
    for (const c of all.filter((x) => x.ppid === p)) {
      out.push({ pid: c.pid, cmd: c.cmd });
      walk(c.pid);
    }
  };
  walk(pid);
  return out;
}

// An outside review (2026-12-05): a SIGTERM to pnpm ended pnpm and left the server running,
// holding its port and DATA_DIR, because the script ran Node through node_modules/.bin/node, a
// shell script that runs the binary as its child and passes no signal on. The script now execs
// the binary itself, so pnpm's signal reaches the server, which drains and stops.
describe('pnpm start', () => {
  it('stops, draining, on a SIGTERM to pnpm', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-start-'));
    const port = await freePort();
    const env: Record<string, string | undefined> = { ...process.env, PORT: String(port), DATA_DIR: dir, LOG_LEVEL: 'info' };
    for (const k of ['DATABASE_URL', 'REDIS_URL', 'NODE_OPTIONS', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID', 'NODE_ENV']) delete env[k];
    const launcher = spawn('npx', ['-y', 'pnpm@10', 'start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    launcher.stdout.on('data', (d) => (output += d));
    launcher.stderr.on('data', (d) => (output += d));
    try {
      await vi.waitFor(() => expect(output).toContain('listening on'), { timeout: 150_000, interval: 200 });
      const tree = descendants(launcher.pid!);
      const pnpm = tree.find((p) => /pnpm(\.c?js)? start/.test(p.cmd) && !p.cmd.startsWith('/bin/sh') && !p.cmd.startsWith('sh '));
      const server = tree.find((p) => p.cmd.includes('packages/api/dist/main.js') && !p.cmd.startsWith('/bin/sh') && !p.cmd.startsWith('sh '));
      expect({ pnpm: pnpm?.cmd, server: server?.cmd }, JSON.stringify(tree)).toEqual({ pnpm: expect.any(String), server: expect.any(String) });
      process.kill(pnpm!.pid, 'SIGTERM');
      await vi.waitFor(async () => expect(await portOpen(port)).toBe(false), { timeout: 20_000, interval: 100 });
      await vi.waitFor(() => expect(existsPid(server!.pid)).toBe(false), { timeout: 20_000, interval: 100 });
      expect(output).toContain('shutting down: draining in-flight requests');
      expect(output).toContain('"msg":"stopped"');
    } finally {
      try {
        process.kill(-launcher.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function existsPid(pid: number): boolean {
  try {
    // A zombie (exited, not yet reaped) is gone for this purpose.
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
