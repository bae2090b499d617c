#!/usr/bin/env node
/* global URL, process */
// `concert`: runs the one-file bundle dist/concert.js. Installed from the packed package it is just
// that; in the repository (src/ beside it) a bundle older than its sources is rebuilt first, so
// `pnpm concert` never runs stale code and never needs tsx.
import { existsSync, readFileSync } from 'node:fs';
import module from 'node:module';

// npm only warns about `engines`, so an older Node installs the package and runs it: `concert
// book` then held the seats and died at the pay question on a missing `node:util` export (INTERNAL),
// the hold left behind. Refuse to start instead, naming the Node it needs (exit 1).
const floor = /^>=(\d+)\.(\d+)/.exec(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node);
const [major, minor] = process.versions.node.split('.').map(Number);
if (floor && (major < Number(floor[1]) || (major === Number(floor[1]) && minor < Number(floor[2])))) {
  const message = `concert needs Node.js ${floor[1]}.${floor[2]} or later; this is Node.js ${process.versions.node}`;
  process.stderr.write(
    process.argv.includes('--json')
      ? `${JSON.stringify({ error: { code: 'UNSUPPORTED_NODE', appCode: null, message } })}\n`
      : `error: ${message} (UNSUPPORTED_NODE)\nInstall a newer Node.js, then run concert again\n`,
  );
  process.exit(1);
}

// Node 22.1+ keeps V8's compiled code between runs: the bundle is parsed and compiled once.
module.enableCompileCache?.();

if (existsSync(new URL('../src/main.ts', import.meta.url))) {
  const { buildIfStale } = await import('../build.mjs');
  await buildIfStale();
}
await import(new URL('../dist/concert.js', import.meta.url).href);
