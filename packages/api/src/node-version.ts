// Imported first by main.ts, before anything that needs Node 24: run on an older Node (the
// system's 20, say, without `pnpm start`), the server died at start in a dependency with a stack
// trace (undici's decompress interceptor) instead of saying what it needs (an outside review).
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 24 || (major === 24 && minor < 11)) {
  process.stderr.write(
    `The concert API needs Node.js 24.11 or later; this is Node.js ${process.versions.node}. \`pnpm start\` runs it on the project's own Node 24 (README).\n`,
  );
  process.exit(1);
}

export {};
