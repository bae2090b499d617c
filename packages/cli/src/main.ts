#!/usr/bin/env node
import path from 'node:path';
import { EXIT } from './errors.ts';
import { run } from './program.ts';

// Ctrl-C aborts whatever is in flight (a wait in line, a request, a question) so the command can
// leave cleanly; a second Ctrl-C leaves at once. A polite kill (SIGTERM: `kill`, `timeout`, a
// supervisor) does the same and exits 143: killed where it stood, `admin watch` left the cursor
// hidden and `book` left the terminal in raw mode and its hold standing. If the command has not
// left 10 s later (longer than a hold's release may take, 5 s), the process does.
const interrupt = new AbortController();
let signalled: number | undefined;
for (const [name, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(name, () => {
    if (interrupt.signal.aborted) process.exit(signalled ?? status);
    signalled = status;
    interrupt.abort(new DOMException('Interrupted', 'AbortError'));
    if (name === 'SIGTERM') setTimeout(() => process.exit(status), 10_000).unref();
  });
}

// A reader that stops reading (`concert --help | head`, `admin watch --json | head -3`) closes
// the pipe, and the next write fails with EPIPE: leave at once and quietly, with status 141 as a
// program killed by SIGPIPE does, instead of dying on an unhandled 'error' with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(141);
    throw err;
  });
}

// Relative paths (`--file`) are read from the directory concert runs in. `pnpm concert …` is the one
// exception: pnpm runs the repository's `concert` script at the root and keeps the caller's
// directory in INIT_CWD. npm and pnpm set INIT_CWD for every script and all it starts, so it alone
// does not say that: under `npm run seed` (`cd fixtures && concert … --file concert.json`) it named
// the directory npm was started in, and the file was looked for there (ENOENT).
const env = process.env;
const viaConcertScript = env.npm_lifecycle_event === 'concert' && env.npm_package_json !== undefined && path.dirname(env.npm_package_json) === process.cwd();
const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: (viaConcertScript ? env.INIT_CWD : undefined) ?? process.cwd(),
  signal: interrupt.signal,
});
// A pipe is written asynchronously: exiting at once cut a large --json answer short (a script
// reading stdout got half a document). Wait until everything written so far has reached the OS.
const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
// Idle keep-alive sockets must not hold the process open once the answer is out.
process.exit(code === EXIT.interrupted && signalled ? signalled : code);
