import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
});
