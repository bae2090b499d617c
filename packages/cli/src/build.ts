import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const CLI_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE = path.join(CLI_ROOT, 'dist', 'concert.js');
export const BIN = path.join(CLI_ROOT, 'bin', 'concert.js');

/**
 * Bundles the CLI into one ESM file for Node 20 (bin/concert.js loads it): no tsx at run time, and
 * @concert/core/schemas compiled in. Written to a temporary name and renamed, so test files building
 * at the same time never see half a file.
 */
export async function buildCli(): Promise<string> {
  const result = await build({
    entryPoints: [path.join(CLI_ROOT, 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    write: false,
    legalComments: 'none',
    minify: true,
    keepNames: true,
    logLevel: 'warning',
    // commander and cli-table3 are CommonJS and require() Node's built-ins.
    banner: { js: "import { createRequire as __concertCreateRequire } from 'node:module'; const require = __concertCreateRequire(import.meta.url);" },
  });
  mkdirSync(path.dirname(BUNDLE), { recursive: true });
  const tmp = `${BUNDLE}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, result.outputFiles[0]!.contents);
  renameSync(tmp, BUNDLE);
  return BUNDLE;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildCli();
  console.log(`built ${path.relative(process.cwd(), out)}`);
}
