// The package a frontend installs (`npm pack ./types`, the api's `pack:client` script):
// the declarations of src/client.ts (emitted by `tsc -b` into dist/) bundled into one
// self-contained types/index.d.ts, with @concert/core's types inlined, plus a manifest of its
// own with no dependency but the @trpc/server peer. Every other bare import is left external,
// so that a server-side type reaching a procedure's input or output shows up as an import in
// index.d.ts, which the pack test (test/pack.test.ts) refuses.
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';
import { dts } from 'rollup-plugin-dts';

const api = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/**
 * The oldest @trpc/server a frontend may pair the types with. Not the server's own range
 * (^11.25): @trpc/tanstack-react-query's newest release, 11.22.1, pins @trpc/client and
 * @trpc/server to exactly 11.22.1, so a React frontend (examples/react) installs 11.22.1. The
 * pack test installs the types with 11.22.1 (examples/react, peers checked by npm) and with the
 * server's version (examples/client) and type-checks both.
 */
const OLDEST_TRPC = '11.22.1';

const manifest = {
  name: api.name,
  version: api.version,
  description: 'Types of the concert booking API for tRPC clients: import type { AppRouter } from "@concert/api"',
  type: 'module',
  types: './index.d.ts',
  exports: { '.': { types: './index.d.ts' } },
  sideEffects: false,
  peerDependencies: { '@trpc/server': `^${OLDEST_TRPC}` },
};

export default {
  input: 'dist/client.d.ts',
  output: { dir: 'types', entryFileNames: 'index.d.ts', format: 'es' },
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('@concert/'),
  plugins: [
    dts({ respectExternal: true, tsconfig: 'tsconfig.build.json' }),
    {
      name: 'manifest',
      generateBundle() {
        this.emitFile({ type: 'asset', fileName: 'package.json', source: `${JSON.stringify(manifest, null, 2)}\n` });
      },
    },
  ],
};
