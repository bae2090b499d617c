import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../../test/harness.ts';

/**
 * @concert/api as a frontend gets it: packed to a tarball, installed with npm into a project
 * outside the repository next to @trpc/client, @trpc/server and superjson only, and the example
 * client (examples/client) type-checked against it. Installs from the npm registry (cached).
 */

const API = path.join(ROOT, 'packages/api');
const EXAMPLE = path.join(ROOT, 'examples/client');
const BIN = path.join(ROOT, 'node_modules/.bin');
/** Packages only the server needs: none of them may reach a frontend. */
const SERVER_SIDE = ['kysely', 'kysely-pglite-dialect', 'pg', 'pg-pool', 'pg-protocol', 'ioredis', '@electric-sql', 'pino', 'jose', 'prom-client', 'zod', '@types/node', '@concert/core', 'tsx'];

interface Run {
  code: number;
  out: string;
  ms: number;
}

function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 240_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_yes: 'true' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}`, ms: Math.round(performance.now() - started) });
    });
  });
}

async function ok(cmd: string, args: string[], cwd: string): Promise<Run> {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.out}`);
  return r;
}

const installed = async (pkg: string) => JSON.parse(await readFile(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version as string;

/** Where a file tsc loaded comes from: the package (or 'project' / 'typescript lib' / 'repo'). */
function origin(file: string, project: string): string {
  if (file.startsWith(path.join(project, 'node_modules') + path.sep)) {
    const parts = path.relative(path.join(project, 'node_modules'), file).split(path.sep);
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (file.startsWith(project + path.sep)) return 'project';
  if (/node_modules\/typescript\/lib\/lib\.[^/]+\.d\.ts$/.test(file)) return 'typescript lib';
  return file.startsWith(ROOT) ? `repo: ${path.relative(ROOT, file)}` : `elsewhere: ${file}`;
}

describe('@concert/api packed for a frontend', () => {
  let project = '';
  afterAll(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  it('installs from a tarball next to @trpc/client, @trpc/server and superjson, and type-checks a good client and rejects a wrong input', { timeout: 600_000 }, async () => {
    const t0 = performance.now();
    // Build (tsc -b, then the declaration bundle and its manifest) and pack.
    const build = await ok(path.join(BIN, 'tsc'), ['-b', 'tsconfig.build.json'], API);
    const bundle = await ok(path.join(BIN, 'rollup'), ['-c', 'build/dts.config.js', '--silent'], API);
    project = await mkdtemp(path.join(os.tmpdir(), 'concert-frontend-'));
    expect(path.relative(ROOT, project).startsWith('..')).toBe(true);
    const pack = await ok('npm', ['pack', './types', '--pack-destination', project], API);
    const tarball = (await readdir(project)).find((f) => f.endsWith('.tgz'));
    expect(tarball, pack.out).toBeDefined();

    // The packed manifest: no workspace: protocol, no dependency but the @trpc/server peer.
    const listing = await ok('tar', ['-xzOf', path.join(project, tarball!), 'package/package.json'], project);
    const manifest = JSON.parse(listing.out);
    expect(listing.out).not.toMatch(/workspace:/);
    expect(manifest.name).toBe('@concert/api');
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(Object.keys(manifest.peerDependencies ?? {})).toEqual(['@trpc/server']);
    const files = await ok('tar', ['-tzf', path.join(project, tarball!)], project);
    expect(files.out.trim().split('\n').sort()).toEqual(['package/index.d.ts', 'package/package.json']);

    // A frontend project outside the repository.
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'frontend', private: true, type: 'module' }, null, 2));
    await cp(path.join(EXAMPLE, 'tsconfig.json'), path.join(project, 'tsconfig.json'));
    await cp(path.join(EXAMPLE, 'src'), path.join(project, 'src'), { recursive: true });
    await cp(path.join(EXAMPLE, 'wrong-input.ts'), path.join(project, 'wrong-input.ts'));
    await writeFile(path.join(project, 'tsconfig.wrong.json'), JSON.stringify({ extends: './tsconfig.json', include: ['wrong-input.ts'] }));
    const wanted = [`./${tarball}`, `@trpc/client@${await installed('@trpc/client')}`, `@trpc/server@${await installed('@trpc/server')}`, `superjson@${await installed('superjson')}`];
    const install = await ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--legacy-peer-deps', ...wanted], project);
    const top = (await readdir(path.join(project, 'node_modules'))).filter((d) => !d.startsWith('.'));
    for (const pkg of SERVER_SIDE) expect(top, `${pkg} installed`).not.toContain(pkg.split('/')[0] === '@types' ? '@types' : pkg);

    // The good client compiles; every file tsc loaded comes from the project or its four packages.
    const good = await run(path.join(BIN, 'tsc'), ['-p', 'tsconfig.json', '--listFiles'], project);
    expect(good.code, good.out).toBe(0);
    const loaded = good.out.split('\n').filter((l) => /\.(d\.)?[cm]?tsx?$/.test(l.trim()));
    const byOrigin = new Map<string, number>();
    for (const f of loaded) byOrigin.set(origin(f.trim(), project), (byOrigin.get(origin(f.trim(), project)) ?? 0) + 1);
    const origins = [...byOrigin.keys()];
    expect(origins.filter((o) => o.startsWith('repo:') || o.startsWith('elsewhere:'))).toEqual([]);
    for (const pkg of SERVER_SIDE) expect(origins).not.toContain(pkg);
    expect(origins.filter((o) => !['project', 'typescript lib', '@concert/api', '@trpc/client', '@trpc/server', 'superjson'].includes(o))).toEqual([]);
    expect(loaded.filter((f) => f.includes('@concert/api')).map((f) => path.basename(f.trim()))).toEqual(['index.d.ts']);

    // The wrong input does not.
    const bad = await run(path.join(BIN, 'tsc'), ['-p', 'tsconfig.wrong.json'], project);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/wrong-input\.ts\(\d+,\d+\): error TS\d+/);
    expect(bad.out).toMatch(/idempotencyKey|'string' is not assignable to type 'number'/);

    const total = Math.round(performance.now() - t0);
    console.log(
      [
        `pack test: ${total} ms in all (build ${build.ms} ms, d.ts bundle ${bundle.ms} ms, pack ${pack.ms} ms, npm install ${install.ms} ms, tsc good ${good.ms} ms, tsc bad ${bad.ms} ms)`,
        `node_modules of the frontend: ${top.join(', ')}`,
        `tsc loaded ${loaded.length} files: ${[...byOrigin].map(([o, n]) => `${o} ${n}`).join(', ')}`,
        `wrong input rejected: ${bad.out.split('\n').find((l) => l.includes('error TS'))}`,
      ].join('\n'),
    );
  });
});
