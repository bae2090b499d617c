import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../../test/harness.ts';

/**
 * @concert/api as a frontend gets it: packed to a tarball, installed with npm into a project
 * outside the repository, and each example frontend type-checked against it: examples/client
 * (next to @trpc/client, @trpc/server and superjson only, at the server's versions) and
 * examples/react (@trpc/tanstack-react-query, which pins tRPC 11.22.1). Installs from the npm
 * registry (cached).
 */

const API = path.join(ROOT, 'packages/api');
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

/** The version of `pkg` installed in `dir` (the repository's own when dir is ROOT). */
const versionIn = async (dir: string, pkg: string) => JSON.parse(await readFile(path.join(dir, 'node_modules', pkg, 'package.json'), 'utf8')).version as string;

/** The packages in a project's node_modules, scoped ones as @scope/name. */
async function installedIn(project: string): Promise<string[]> {
  const dir = path.join(project, 'node_modules');
  const entries = (await readdir(dir)).filter((d) => !d.startsWith('.'));
  const scoped = await Promise.all(entries.map(async (d) => (d.startsWith('@') ? (await readdir(path.join(dir, d))).map((n) => `${d}/${n}`) : [d])));
  return scoped.flat();
}

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

/** Built, bundled and packed once for both examples. */
let packing: Promise<{ tarball: string; build: Run; bundle: Run; pack: Run }> | undefined;
function packed() {
  packing ??= (async () => {
    const build = await ok(path.join(BIN, 'tsc'), ['-b', 'tsconfig.build.json'], API);
    const bundle = await ok(path.join(BIN, 'rollup'), ['-c', 'build/dts.config.js', '--silent'], API);
    const dir = await tempDir('concert-pack-');
    const pack = await ok('npm', ['pack', './types', '--pack-destination', dir], API);
    const name = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
    if (!name) throw new Error(`npm pack made no tarball:\n${pack.out}`);
    return { tarball: path.join(dir, name), build, bundle, pack };
  })();
  return packing;
}

const temps: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/**
 * An example (its tsconfig.json, src/ and wrong-input file) copied into a new project outside
 * the repository, the tarball and `specs` installed there with npm, then tsc run over src/ (good,
 * with --listFiles) and over the wrong-input file alone (bad).
 */
async function frontend(example: string, wrongInput: string, specs: string[], npmFlags: string[]) {
  const { tarball } = await packed();
  const project = await tempDir('concert-frontend-');
  expect(path.relative(ROOT, project).startsWith('..')).toBe(true);
  const dir = path.join(ROOT, 'examples', example);
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'frontend', private: true, type: 'module' }, null, 2));
  await cp(path.join(dir, 'tsconfig.json'), path.join(project, 'tsconfig.json'));
  await cp(path.join(dir, 'src'), path.join(project, 'src'), { recursive: true });
  await cp(path.join(dir, wrongInput), path.join(project, wrongInput));
  await writeFile(path.join(project, 'tsconfig.wrong.json'), JSON.stringify({ extends: './tsconfig.json', include: [wrongInput] }));
  await cp(tarball, path.join(project, path.basename(tarball)));
  const install = await ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...npmFlags, `./${path.basename(tarball)}`, ...specs], project);
  const top = await installedIn(project);
  for (const pkg of SERVER_SIDE) expect(top.filter((n) => n === pkg || n.startsWith(`${pkg}/`)), `${pkg} installed`).toEqual([]);

  // With declarations on (tsc --init's default), as a frontend library would build: a function
  // whose return type the package declares but did not export was TS4058 (an outside review:
  // QueueTicket, Page and WaitlistEntry).
  const good = await run(path.join(BIN, 'tsc'), ['-p', 'tsconfig.json', '--listFiles', '--noEmit', 'false', '--declaration', '--emitDeclarationOnly', '--outDir', 'declarations'], project);
  expect(good.code, good.out).toBe(0);
  const loaded = good.out.split('\n').map((l) => l.trim()).filter((l) => /\.(d\.)?[cm]?tsx?$/.test(l));
  const byOrigin = new Map<string, number>();
  for (const f of loaded) byOrigin.set(origin(f, project), (byOrigin.get(origin(f, project)) ?? 0) + 1);
  const origins = [...byOrigin.keys()];
  expect(origins.filter((o) => o.startsWith('repo:') || o.startsWith('elsewhere:'))).toEqual([]);
  for (const pkg of SERVER_SIDE) expect(origins).not.toContain(pkg);
  expect(loaded.filter((f) => f.includes('@concert/api')).map((f) => path.basename(f))).toEqual(['index.d.ts']);

  const bad = await run(path.join(BIN, 'tsc'), ['-p', 'tsconfig.wrong.json'], project);
  expect(bad.code).not.toBe(0);
  expect(bad.out.split('\n').filter((l) => l.startsWith(`${wrongInput}(`) && / error TS\d+: /.test(l))).not.toEqual([]);
  return { project, install, top, good, loaded, byOrigin, origins, bad };
}

function report(title: string, f: Awaited<ReturnType<typeof frontend>>, more: string[]): string {
  return [
    title,
    `node_modules of the frontend: ${f.top.join(', ')}`,
    `npm install ${f.install.ms} ms, tsc good ${f.good.ms} ms, tsc bad ${f.bad.ms} ms`,
    `tsc loaded ${f.loaded.length} files: ${[...f.byOrigin].map(([o, n]) => `${o} ${n}`).join(', ')}`,
    `wrong input rejected: ${f.bad.out.split('\n').find((l) => l.includes('error TS'))}`,
    ...more,
  ].join('\n');
}

describe('@concert/api packed for a frontend', () => {
  afterAll(async () => {
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('installs from a tarball next to @trpc/client, @trpc/server and superjson, and type-checks a good client and rejects a wrong input', { timeout: 600_000 }, async () => {
    const t0 = performance.now();
    const { tarball, build, bundle, pack } = await packed();

    // The packed manifest: no workspace: protocol, no dependency but the @trpc/server peer.
    const listing = await ok('tar', ['-xzOf', tarball, 'package/package.json'], path.dirname(tarball));
    const manifest = JSON.parse(listing.out);
    expect(listing.out).not.toMatch(/workspace:/);
    expect(manifest.name).toBe('@concert/api');
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(Object.keys(manifest.peerDependencies ?? {})).toEqual(['@trpc/server']);
    const files = await ok('tar', ['-tzf', tarball], path.dirname(tarball));
    expect(files.out.trim().split('\n').sort()).toEqual(['package/index.d.ts', 'package/package.json']);
    // Every type the bundle declares is exported, so a frontend can name whatever a procedure returns.
    const dts = (await ok('tar', ['-xzOf', tarball, 'package/index.d.ts'], path.dirname(tarball))).out;
    const declaredTypes = [...dts.matchAll(/^(?:declare )?(?:interface|type) (\w+)/gm)].map((m) => m[1]!);
    const exportedTypes = new Set([...dts.matchAll(/^export type \{([^}]*)\}/gm)].flatMap((m) => m[1]!.split(',').map((n) => n.trim().split(' as ').pop()!)));
    expect(declaredTypes.length).toBeGreaterThan(20);
    expect(declaredTypes.filter((n) => !exportedTypes.has(n))).toEqual([]);

    // examples/client at the server's own versions; skipLibCheck is off there, so the packed
    // index.d.ts is itself checked. Every file tsc loaded comes from the project or its four packages.
    const wanted = [`@trpc/client@${await versionIn(ROOT, '@trpc/client')}`, `@trpc/server@${await versionIn(ROOT, '@trpc/server')}`, `superjson@${await versionIn(ROOT, 'superjson')}`];
    const f = await frontend('client', 'wrong-input.ts', wanted, ['--legacy-peer-deps']);
    expect(f.origins.filter((o) => !['project', 'typescript lib', '@concert/api', '@trpc/client', '@trpc/server', 'superjson'].includes(o))).toEqual([]);
    expect(f.bad.out).toMatch(/idempotencyKey|'string' is not assignable to type 'number'/);

    const total = Math.round(performance.now() - t0);
    console.log(
      report(`pack test (examples/client): ${total} ms in all (build ${build.ms} ms, d.ts bundle ${bundle.ms} ms, pack ${pack.ms} ms)`, f, [
        `peerDependencies: ${JSON.stringify(manifest.peerDependencies)}`,
      ]),
    );
  });

  it('installs examples/react (@trpc/tanstack-react-query with tRPC 11.22.1) with its peers checked by npm, type-checks its components and rejects a wrong hold', { timeout: 600_000 }, async () => {
    const t0 = performance.now();
    // The versions are the example's own (package.json); npm checks every peer range (no
    // --legacy-peer-deps) but installs no peer that is not asked for (typescript).
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'examples/react/package.json'), 'utf8'));
    const specs = Object.entries({ ...pkg.dependencies, ...pkg.devDependencies } as Record<string, string>)
      .filter(([name]) => name !== '@concert/api' && name !== 'typescript')
      .map(([name, range]) => `${name}@${range}`);
    const f = await frontend('react', 'wrong-input.tsx', specs, ['--omit=peer']);
    const trpc = await Promise.all(['@trpc/client', '@trpc/server', '@trpc/tanstack-react-query'].map((p) => versionIn(f.project, p)));
    expect(trpc).toEqual([pkg.dependencies['@trpc/client'], pkg.dependencies['@trpc/server'], pkg.dependencies['@trpc/tanstack-react-query']]);
    // Every file tsc loaded comes from the project or a package installed in it.
    expect(f.origins.filter((o) => !['project', 'typescript lib', ...f.top].includes(o))).toEqual([]);
    expect(f.origins).toEqual(expect.arrayContaining(['@trpc/tanstack-react-query', '@tanstack/react-query', '@types/react']));
    expect(f.bad.out).toMatch(/wrong-input\.tsx\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);

    console.log(
      report(`pack test (examples/react): ${Math.round(performance.now() - t0)} ms in all`, f, [
        `installed: @trpc/client ${trpc[0]}, @trpc/server ${trpc[1]}, @trpc/tanstack-react-query ${trpc[2]}, react ${await versionIn(f.project, 'react')}, @tanstack/react-query ${await versionIn(f.project, '@tanstack/react-query')}`,
      ]),
    );
  });
});
