import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ROOT } from '../build.mjs';
import { ADMIN_KEY, startGatedApi } from './helpers.ts';

// The CLI as a user installs it: `pnpm pack`, then `npm install -g` of the tarball into a prefix of
// its own, then the installed `concert` on the PATH, against the API as its own process.
const run = promisify(execFile);
let tmp: string;
let prefix: string;
let tarball: string;
let api: Awaited<ReturnType<typeof startGatedApi>>;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'concert-install-'));
  prefix = path.join(tmp, 'prefix');
  const packed = path.join(tmp, 'packed');
  // The same pnpm the project uses (the README's), so workspace: ranges are rewritten as they are on release.
  const pack = run('npx', ['-y', 'pnpm@10', 'pack', '--pack-destination', packed], { cwd: CLI_ROOT, timeout: 240_000 });
  [api] = await Promise.all([startGatedApi({ QUEUE_IDLE_TIMEOUT_SECONDS: '6' }), pack]);
  tarball = path.join(packed, readdirSync(packed).find((f) => f.endsWith('.tgz'))!);
  // --offline: the tarball must need nothing from a registry.
  await run('npm', ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball], { timeout: 120_000 });
}, 360_000);

afterAll(async () => {
  await api?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const installedEnv = (extra: Record<string, string> = {}) => {
  const env: Record<string, string | undefined> = { ...process.env, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`, ...extra };
  // Nothing of the repository's tooling may leak in: no tsx loader, no pnpm script context.
  delete env.NODE_OPTIONS;
  delete env.INIT_CWD;
  delete env.FORCE_COLOR;
  return env;
};

describe('the installed concert command', () => {
  it('is one package with no dependencies and no workspace: range; --help and --version run from the PATH', async () => {
    const { stdout: listing } = await run('tar', ['-tzf', tarball]);
    expect(listing.split('\n').filter(Boolean).sort()).toEqual(expect.arrayContaining(['package/bin/concert.js', 'package/dist/concert.js', 'package/package.json']));
    expect(listing).not.toMatch(/package\/src\/|\.ts\n/);
    const manifest = readFileSync(path.join(prefix, 'lib/node_modules/@concert/cli/package.json'), 'utf8');
    expect(manifest).not.toContain('workspace:');
    expect(JSON.parse(manifest).dependencies ?? {}).toEqual({});
    expect(readdirSync(path.join(prefix, 'lib/node_modules'))).toEqual(['@concert']);

    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const { stdout } = await run('concert', ['--help'], { env: installedEnv(), cwd: tmp });
      times.push(performance.now() - t0);
      expect(stdout).toContain('Usage: concert [global options] <command> [options]');
      expect(stdout).toMatch(/\n {2}book .*\n/);
    }
    // Measured, not asserted (the box is shared): the report quotes it.
    console.log(`installed concert --help: median of 5 ${Math.round(times.sort((a, b) => a - b)[2]!)} ms (${times.map(Math.round).join(', ')})`);
    const { stdout: version } = await run('concert', ['--version'], { env: installedEnv() });
    expect(version.trim()).toBe(JSON.parse(manifest).version);
  }, 120_000);

  it("runs the testers' script from the CLI guide verbatim", async () => {
    const guide = readFileSync(path.join(CLI_ROOT, 'README.md'), 'utf8');
    const at = guide.indexOf('`book-a-seat.sh`:');
    const script = /```bash\n([\s\S]*?)```/.exec(guide.slice(at))![1]!;
    const file = path.join(tmp, 'book-a-seat.sh');
    writeFileSync(file, script);
    chmodSync(file, 0o755);
    const child = spawn(file, [], {
      cwd: tmp,
      env: installedEnv({ CONCERT_API_URL: api.url, CONCERT_ADMIN_KEY: ADMIN_KEY, CONCERT_CONFIG_DIR: path.join(tmp, 'config') }),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, `${out}\n${err}`).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[0]).toBe('{"status":"ACTIVE","position":null}');
    expect(JSON.parse(lines[1]!)).toMatchObject({ status: 'HELD', seats: [expect.any(Number)] });
    expect(JSON.parse(lines[2]!)).toEqual({ charged: 200_000, balance: 200_000 });
    expect(JSON.parse(lines[3]!)).toMatchObject({ status: 'COMPLETED', queueTokenExpired: true });
    expect(lines[4]).toBe('{"status":"PAID"}');
    expect(lines[5]).toBe('exit status 1');
    // The queue gate refuses the hold: pay spent the token and the CLI forgot it, and a missing token
    // is TOKEN_INVALID (401) on the tRPC path and the fast path alike (API.md, Errors), as the guide shows.
    expect(JSON.parse(err.trim()).error).toMatchObject({ code: 'UNAUTHORIZED', appCode: 'TOKEN_INVALID' });
    // A dozen processes one after another: generous on a loaded machine.
  }, 240_000);
});
