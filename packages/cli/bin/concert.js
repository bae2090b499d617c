#!/usr/bin/env node
/* global process, console, URL */
// The built CLI (pnpm --filter @concert/cli build); `pnpm concert` at the root runs the sources instead.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/concert.js', import.meta.url);
if (!existsSync(bundle)) {
  console.error('concert: not built yet; run `pnpm --filter @concert/cli build`, or `pnpm concert …` from the repository root');
  process.exit(2);
}
await import(bundle.href);
