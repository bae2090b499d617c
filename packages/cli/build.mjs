/* global process, console */
// Bundles the CLI into dist/: concert.js and the chunks it loads on demand, every dependency inside
// (commander, the tRPC client, inquirer, the core's zod schemas), so the packed package installs
// with no dependencies and runs without tsx. Plain JavaScript, so it runs on any Node without a
// TypeScript loader.
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI_ROOT = path.dirname(fileURLToPath(import.meta.url));
export const BUNDLE = path.join(CLI_ROOT, 'dist', 'concert.js');
export const BIN = path.join(CLI_ROOT, 'bin', 'concert.js');
/** The files the bundle was made from (esbuild's metafile), to tell when it is stale. */
const INPUTS = path.join(CLI_ROOT, 'dist', 'concert.inputs.json');

/**
 * Code-split: what a command imports dynamically (the tRPC client, inquirer, zod, cli-progress)
 * lands in dist/chunks/ and is read only when that command runs, so --help parses about 100 kB
 * instead of 700 kB (in one file, esbuild builds every module's export object at start-up, zod's
 * hundreds included). Chunks have content-hashed names, so builds running at once write the same
 * bytes to the same names; concert.js is written to a temporary name and renamed, last.
 */
export async function buildCli({ clean = false } = {}) {
  const { build } = await import('esbuild');
  const dist = path.dirname(BUNDLE);
  const result = await build({
    // Chunk names hash the sources' paths relative to the working directory: without this a
    // build run from the repository's root (the tests) and one run from here (`pnpm pack`) name
    // the same chunks differently, and the clean build deletes chunks a running CLI still loads.
    absWorkingDir: CLI_ROOT,
    entryPoints: { concert: path.join(CLI_ROOT, 'src', 'main.ts') },
    outdir: dist,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    platform: 'node',
    // The installed command runs on whatever Node the user has; 20.17 is the oldest it supports.
    target: 'node20.17',
    format: 'esm',
    write: false,
    metafile: true,
    legalComments: 'none',
    minify: true,
    logLevel: 'warning',
    // commander and cli-table3 are CommonJS and require() Node's built-ins.
    banner: { js: "import { createRequire as __concertCreateRequire } from 'node:module'; const require = __concertCreateRequire(import.meta.url);" },
  });
  mkdirSync(path.join(dist, 'chunks'), { recursive: true });
  const tmp = `${BUNDLE}.${process.pid}.${Date.now()}.tmp`;
  for (const file of result.outputFiles) {
    if (file.path === BUNDLE) writeFileSync(tmp, file.contents, { mode: 0o755 });
    else {
      // Written whole under a temporary name, then renamed: a CLI loading this chunk while a
      // build rewrites it (the same bytes) never reads a truncated file.
      const part = `${file.path}.${process.pid}.tmp`;
      writeFileSync(part, file.contents);
      renameSync(part, file.path);
    }
  }
  chmodSync(tmp, 0o755);
  // The metafile names inputs relative to absWorkingDir, whatever directory the build runs from.
  const inputs = Object.keys(result.metafile.inputs).map((p) => path.resolve(CLI_ROOT, p));
  writeFileSync(`${INPUTS}.${process.pid}.tmp`, JSON.stringify(inputs));
  renameSync(`${INPUTS}.${process.pid}.tmp`, INPUTS);
  renameSync(tmp, BUNDLE);
  // `clean` (prepack) removes the chunks of older builds, so none is packed. It never empties
  // dist/ first: a CLI already running from it (a test beside `pnpm pack`) loads its chunks on
  // demand, and this build's chunks have the same content-hashed names as theirs.
  if (clean) {
    const fresh = new Set(result.outputFiles.map((f) => path.resolve(f.path)));
    const chunks = path.join(dist, 'chunks');
    for (const name of readdirSync(chunks)) {
      const file = path.join(chunks, name);
      // A .tmp is another build's chunk being written: it renames it into place itself.
      if (!fresh.has(file) && !name.endsWith('.tmp')) rmSync(file, { force: true });
    }
  }
  return BUNDLE;
}

/** In the repository: rebuild when the bundle is missing or older than any file it was made from. */
export async function buildIfStale() {
  try {
    const built = statSync(BUNDLE).mtimeMs;
    const inputs = JSON.parse(readFileSync(INPUTS, 'utf8'));
    if (inputs.every((file) => statSync(file, { throwIfNoEntry: false })?.mtimeMs <= built)) return BUNDLE;
  } catch {
    // No bundle or no list of inputs yet: build.
  }
  return buildCli();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // `node build.mjs --clean` (prepack): a fresh dist/, so no chunk of an older build is packed.
  const out = await buildCli({ clean: process.argv.includes('--clean') });
  console.log(`built ${path.relative(process.cwd(), out)}`);
}
