import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { BIN, buildCli } from '../build.mjs';
import type { Io } from '../src/context.ts';
import { run } from '../src/program.ts';
import { ADMIN_KEY, createTestDatabase, deleteRedisKeys, freePort, REDIS_URL, spawnApi, TcpProxy, testEnv } from '../../../test/harness.ts';

export { ADMIN_KEY };

/** An Io in memory for run() and Ctx in process: what they print, read back. */
export function memoryIo(env: Record<string, string> = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d));
  stderr.on('data', (d: Buffer) => (err += d));
  const io: Io = { stdin: new PassThrough(), stdout, stderr, env, cwd: process.cwd(), signal: new AbortController().signal };
  return { io, out: () => out, err: () => err };
}

/** The API as its own process on a database of its own, with the waiting-room gate on and Redis keys of its own. */
export async function startGatedApi(extra: Record<string, string> = {}) {
  const db = await createTestDatabase();
  const prefix = `clitest${randomBytes(4).toString('hex')}:`;
  const api = await spawnApi(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix, ...extra }));
  return {
    url: api.url,
    /** The server's database, for suites that write rows in bulk behind the API. */
    dbUrl: db.url,
    output: api.output,
    /** Sends a signal to the API's process: SIGSTOP makes a hung API (connections accepted, nothing answered), SIGCONT resumes it. */
    signal: (sig: NodeJS.Signals) => api.child.kill(sig),
    async stop() {
      await api.stop();
      await db.drop();
      // The waiting room's keys go too, so runs do not pile up in Redis.
      await deleteRedisKeys(prefix);
    },
  };
}

/**
 * For a test file: a gated API of its own (started before its tests, stopped after), a config
 * directory of its own, and the environment the built CLI runs with against them.
 */
export function useGatedCli(): { api: Awaited<ReturnType<typeof startGatedApi>>; env: Record<string, string> } {
  const ctx = {} as { api: Awaited<ReturnType<typeof startGatedApi>>; env: Record<string, string> };
  let cfg: ReturnType<typeof tempConfigDir> | undefined;
  beforeAll(async () => {
    cfg = tempConfigDir();
    [ctx.api] = await Promise.all([startGatedApi(), buildOnce()]);
    ctx.env = { CONCERT_API_URL: ctx.api.url, CONCERT_CONFIG_DIR: cfg.dir };
  });
  afterAll(async () => {
    await ctx.api?.stop();
    cfg?.remove();
  });
  return ctx;
}

/**
 * For a test file: the API as its own process behind a TCP proxy on a port that stays the same,
 * as behind a load balancer, and the CLI's environment pointing at the proxy. `restart()` is a
 * rolling restart: a new API process is started on the same database and Redis keys, the proxy
 * is cut (its connections reset, new ones refused) and the old process stopped; the API stays
 * away until `resume()` puts the new process behind the same address.
 */
export function useRestartableCli() {
  const ctx = {} as { env: Record<string, string>; restart(): Promise<{ resume(): Promise<void> }>; direct(): string };
  const prefix = `clitest${randomBytes(4).toString('hex')}:`;
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let cfg: ReturnType<typeof tempConfigDir> | undefined;
  let serving: Awaited<ReturnType<typeof spawnApi>> | undefined;
  let proxy: TcpProxy | undefined;
  let resume: (() => Promise<void>) | undefined;
  const behind = async (port: number, url: string) => {
    proxy = new TcpProxy(port, { host: '127.0.0.1', port: Number(new URL(url).port) });
    await proxy.start();
  };
  beforeAll(async () => {
    cfg = tempConfigDir();
    db = await createTestDatabase();
    const env = testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: prefix });
    [serving] = await Promise.all([spawnApi(env), buildOnce()]);
    const port = await freePort();
    await behind(port, serving.url);
    ctx.env = { CONCERT_API_URL: `http://127.0.0.1:${port}`, CONCERT_CONFIG_DIR: cfg.dir };
    ctx.direct = () => serving!.url;
    ctx.restart = async () => {
      const next = await spawnApi(env);
      await proxy!.cut();
      await serving!.stop();
      serving = next;
      resume = async () => {
        resume = undefined;
        await behind(port, next.url);
      };
      return { resume: () => resume?.() ?? Promise.resolve() };
    };
  });
  // A test that failed before resuming leaves the API reachable for the next one.
  afterEach(async () => {
    await resume?.();
  });
  afterAll(async () => {
    await proxy?.cut();
    await serving?.stop();
    await db?.drop();
    await deleteRedisKeys(prefix);
    cfg?.remove();
  });
  return ctx;
}

let built: Promise<string> | undefined;
/** The `concert` binary, built once per test file with esbuild (bin/concert.js loads dist/concert.js). */
export function buildOnce(): Promise<string> {
  built ??= buildCli().then(() => BIN);
  return built;
}

/**
 * What the CLI suites run against: a gated API of its own (a short idle timeout keeps the server's
 * polling pace, a third of it at most, quick for the tests), the built binary, and a config
 * directory of its own; `env` points the CLI at both.
 */
export async function startCliSuite() {
  const cfg = tempConfigDir();
  const [api] = await Promise.all([startGatedApi({ QUEUE_IDLE_TIMEOUT_SECONDS: '6' }), buildOnce()]).catch((err: unknown) => {
    cfg.remove();
    throw err;
  });
  return {
    api,
    cfg,
    env: { CONCERT_API_URL: api.url, CONCERT_CONFIG_DIR: cfg.dir } as Record<string, string>,
    async stop() {
      await api.stop();
      cfg.remove();
    },
  };
}
export type CliSuite = Awaited<ReturnType<typeof startCliSuite>>;

export function tempConfigDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'concert-cli-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as exactly one JSON document (throws otherwise). */
  json<T = any>(): T; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** stderr's error envelope. */
  error(): { code: string; appCode: string | null; message: string; issues?: Array<{ path: string; message: string }> };
}

/** Runs the built binary as a script would: no terminal, the given environment. */
export function concert(args: string[], env: Record<string, string>, opts: { cwd?: string } = {}): Promise<CliRun> {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  delete childEnv.FORCE_COLOR;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: childEnv, cwd: opts.cwd ?? process.cwd(), timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({
        code,
        stdout,
        stderr,
        json: () => JSON.parse(stdout),
        error: () => (JSON.parse(stderr) as { error: ReturnType<CliRun['error']> }).error,
      });
    });
  });
}

/** Runs the built binary as `concert` does (no terminal), with its stderr watchable while it runs. */
export function concertLive(args: string[], env: Record<string, string>) {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  delete childEnv.FORCE_COLOR;
  const child = spawn(process.execPath, [BIN, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
  return {
    done,
    stdout: () => stdout,
    stderr: () => stderr,
    /** Whether the process is still running. */
    running: () => child.exitCode === null && child.signalCode === null,
    kill: (signal: NodeJS.Signals) => child.kill(signal),
    /** Waits until stderr shows `re` (the process still running). */
    async waitForStderr(re: RegExp, timeoutMs = 20_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(stderr)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} on stderr:\n${stderr.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

/**
 * Runs the built binary with its stdout not read at first, as a slow consumer of a pipe would:
 * the pipe fills and whatever the CLI writes after that waits inside the CLI's process.
 */
export function concertSlowReader(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string }> {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  delete childEnv.FORCE_COLOR;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.pause();
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    let exited: number | null = null;
    let ended = false;
    const done = () => exited !== null && ended && resolve({ code: exited, stdout: Buffer.concat(chunks).toString() });
    // Reading starts when the CLI has exited (a CLI that exits with output still unwritten loses
    // it), or after a second (one that waits for its pipe to drain, as it should, waits for us).
    const timer = setTimeout(() => child.stdout.resume(), 1_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      child.stdout.resume();
      exited = code ?? 1;
      done();
    });
    child.stdout.once('end', () => ((ended = true), done()));
    child.once('error', reject);
  });
}

/** A pseudo-terminal in-process: a TTY-looking stdin we type into and a TTY-looking stdout we read. */
export function fakeTerminal(env: Record<string, string>, opts: { now?: () => Date } = {}) {
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => stdin });
  let out = '';
  let err = '';
  // Like process.stdout, these never end: each prompt pipes into them and ends its side when done.
  const screen = (append: (s: string) => void) => {
    const w = new Writable({ write: (chunk: Buffer, _enc, cb) => (append(chunk.toString()), cb()) });
    w.end = (() => w) as typeof w.end;
    return Object.assign(w, { isTTY: true, columns: 120, rows: 40 });
  };
  const stdout = screen((s) => (out += s));
  const stderr = screen((s) => (err += s));
  const interrupt = new AbortController();
  const io: Io = { stdin, stdout, stderr, env: { ...env, NO_COLOR: '1' }, cwd: process.cwd(), signal: interrupt.signal, ...(opts.now ? { now: opts.now } : {}) };
  return {
    io,
    interrupt,
    stdout: () => stripAnsi(out),
    stderr: () => stripAnsi(err),
    type: (keys: string) => stdin.write(keys),
    /** Waits until the screen shows `re` after the `from`th character of output. */
    async waitFor(re: RegExp, from = 0, timeoutMs = 20_000): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = stripAnsi(out);
        const m = re.exec(text.slice(from));
        if (m) return from + m.index + m[0].length;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} in:\n${text.slice(-3000)}\n--- stderr:\n${stripAnsi(err).slice(-1000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    run: (argv: string[]) => run(argv, io),
  };
}

export const KEY = { enter: '\r', up: '\x1b[A', down: '\x1b[B', right: '\x1b[C', left: '\x1b[D', space: ' ', ctrlC: '\x03' };

export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}

/**
 * The built binary inside a real pseudo-terminal (util-linux `script`), keystrokes written to it.
 * With `checkTerminal`, the shell around it compares the terminal's modes (`stty -g`) before and
 * after, and prints `[terminal restored]` or `[terminal left changed: …]` once the CLI has exited.
 */
export function inPty(args: string[], env: Record<string, string>, opts: { checkTerminal?: boolean } = {}) {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env, NO_COLOR: '1', COLUMNS: '120', LINES: '40' };
  delete childEnv.FORCE_COLOR;
  const shell = opts.checkTerminal
    ? `stty cols 120 rows 40; saved=$(stty -g); ${command}; rc=$?; if [ "$(stty -g)" = "$saved" ]; then echo '[terminal restored]'; else echo "[terminal left changed: $(stty -a | tr '\\n' ' ')]"; fi; exit $rc`
    : `stty cols 120 rows 40; exec ${command}`;
  const child = spawn('script', ['-qfec', shell, '/dev/null'], { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': the last of the output (the cursor given back, '[terminal restored]') can
  // still be in the pipe when 'exit' fires, and a busy machine read it after (a flake in CI).
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    screen: () => stripAnsi(out),
    /** Everything written to the terminal, escape sequences and all. */
    raw: () => out,
    type: (keys: string) => child.stdin.write(keys),
    exited,
    async waitFor(re: RegExp, from = 0, timeoutMs = 20_000): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = stripAnsi(out);
        const m = re.exec(text.slice(from));
        if (m) return from + m.index + m[0].length;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} on the terminal:\n${text.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    /** Sends a signal to the CLI's own process (under `script` and its shell), as `kill` or `timeout` would. */
    signal: (sig: NodeJS.Signals) => process.kill(cliPid(child.pid!), sig),
    kill: () => child.kill('SIGKILL'),
  };
}

/** The process running the built binary among the descendants of `root`. */
function cliPid(root: number): number {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m) => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
  const tree = new Set([root]);
  for (let grown = true; grown; ) {
    grown = false;
    for (const p of table) {
      if (tree.has(p.ppid) && !tree.has(p.pid)) {
        tree.add(p.pid);
        grown = true;
      }
    }
  }
  const cli = table.find((p) => tree.has(p.pid) && p.pid !== root && p.args.startsWith(`${process.execPath} ${BIN}`));
  if (!cli) throw new Error(`no concert process under ${root}`);
  return cli.pid;
}
