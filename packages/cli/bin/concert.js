#!/usr/bin/env node
/* global URL */
// `concert`: runs the one-file bundle dist/concert.js. Installed from the packed package it is just
// that; in the repository (src/ beside it) a bundle older than its sources is rebuilt first, so
// `pnpm concert` never runs stale code and never needs tsx.
import { existsSync } from 'node:fs';
import module from 'node:module';

// Node 22.1+ keeps V8's compiled code between runs: the bundle is parsed and compiled once.
module.enableCompileCache?.();

if (existsSync(new URL('../src/main.ts', import.meta.url))) {
  const { buildIfStale } = await import('../build.mjs');
  await buildIfStale();
}
await import(new URL('../dist/concert.js', import.meta.url).href);
