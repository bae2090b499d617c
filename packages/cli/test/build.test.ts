import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BUNDLE, CLI_ROOT } from '../build.mjs';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(CLI_ROOT, '../..');

/** The chunks the bundle loads on demand, by name. */
const chunksOf = () => [...new Set(readFileSync(BUNDLE, 'utf8').match(/chunks\/[\w-]+\.js/g) ?? [])].sort();

describe('the CLI bundle', () => {
  // The tests build from the repository's root and `pnpm pack` builds (with --clean) from
  // packages/cli, while other tests run the CLI. When the two builds named the same chunks
  // differently, the clean build deleted the chunks a running `concert` had yet to load, and
  // it died on its first request (a CI run's `admin watch --json` printed nothing).
  it('names its chunks the same whichever directory it is built from', { timeout: 120_000 }, async () => {
    await run(process.execPath, [path.join(CLI_ROOT, 'build.mjs')], { cwd: REPO_ROOT });
    const fromRoot = chunksOf();
    await run(process.execPath, [path.join(CLI_ROOT, 'build.mjs')], { cwd: CLI_ROOT });
    const fromPackage = chunksOf();
    expect(fromRoot.length).toBeGreaterThan(3);
    expect(fromPackage).toEqual(fromRoot);
  });

  // esbuild names its inputs relative to absWorkingDir (CLI_ROOT): they were resolved against the
  // build's cwd, so a bundle built from the repository's root listed 311 of its 312 inputs under
  // paths that do not exist, and `pnpm concert` (run from the root) rebuilt it on every command.
  it('is not rebuilt by `pnpm concert` from the repository root when nothing changed', { timeout: 120_000 }, async () => {
    await run(process.execPath, [path.join(CLI_ROOT, 'build.mjs')], { cwd: REPO_ROOT });
    const inputs = JSON.parse(readFileSync(path.join(CLI_ROOT, 'dist', 'concert.inputs.json'), 'utf8')) as string[];
    expect(inputs.length).toBeGreaterThan(100);
    expect(inputs.filter((file) => !existsSync(file))).toEqual([]);
    const built = statSync(BUNDLE).mtimeMs;
    await run(process.execPath, [path.join(CLI_ROOT, 'bin', 'concert.js'), '--version'], { cwd: REPO_ROOT });
    expect(statSync(BUNDLE).mtimeMs).toBe(built);
  });
});
