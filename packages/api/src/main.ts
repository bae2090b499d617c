// First: refuses an older Node before any dependency that needs Node 24 is evaluated.
import './node-version.ts';
import { type Config, type Core, ConfigError, createCore, loadConfig, StartupError } from '@concert/core';
import type { Server } from 'node:net';
import pino from 'pino';
import { createMetrics } from './metrics.ts';
import { createMetricsServer, createServer } from './server.ts';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

// JSON lines for machines (production, or output to a file or pipe); readable lines on a
// developer's terminal. pino-pretty runs in-process as a stream, loaded only then.
const pretty = process.stdout.isTTY && config.nodeEnv !== 'production';
const stream = pretty ? (await import('pino-pretty')).default({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) : undefined;
const options = { level: config.logLevel, base: { pid: process.pid }, redact: ['req.headers', '*.token', '*.authorization'] };
const log = stream ? pino(options, stream) : pino(options);
for (const name of config.devDefaults) {
  log.warn(name === 'AUTH_MODE' ? 'AUTH_MODE=dev: identity is taken from the x-user-id header; never run this in production' : `${name} is not set: using a dev-only default`);
}

let core: Core;
try {
  core = await createCore(config);
} catch (err) {
  // A setting that points at something unusable is named in the line itself (its stack says nothing more).
  if (err instanceof StartupError) log.fatal({ err: { type: err.name, message: err.message } }, `could not start: ${err.message}`);
  else log.fatal({ err }, 'could not start');
  process.exit(1);
}

const metrics = createMetrics(core);
const server = createServer(core, { log, metrics });
core.startBackgroundWork({
  onError: (err) => log.error({ err }, 'background job failed'),
  onHoldsExpired: (n) => metrics.holdsExpired(n),
});
// A listener that cannot bind (the port taken, a HOST that is not an address of this machine)
// stops the process with one line naming the variables, not an unhandled 'error' event's trace.
function exitIfCannotListen(listener: Server, names: string, port: number): void {
  const fail = (err: NodeJS.ErrnoException) => {
    console.error(`Cannot listen on ${config.host}:${port} (${names}): ${err.code ?? 'error'}, ${err.message}`);
    process.exit(1);
  };
  listener.once('error', fail);
  listener.once('listening', () => listener.off('error', fail));
}
exitIfCannotListen(server, 'HOST, PORT', config.port);
server.listen(config.port, config.host, () => {
  const where = core.databaseKind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL';
  const queue = config.redisUrl ? 'Redis' : 'the in-process queue store';
  log.info({ node: process.version }, `Concert API listening on http://${config.host}:${config.port}/trpc (${where}, ${queue}) on Node ${process.version}`);
});
const metricsPort = config.http.metricsPort;
const metricsServer = metricsPort === undefined ? undefined : createMetricsServer(metrics, { log });
if (metricsServer && metricsPort !== undefined) exitIfCannotListen(metricsServer, 'HOST, METRICS_PORT', metricsPort);
metricsServer?.listen(metricsPort, config.host, () => log.info(`Metrics on http://${config.host}:${metricsPort}/metrics`));

/** Time in-flight requests get to finish after SIGTERM before connections are cut. */
const DRAIN_MS = 10_000;
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: draining in-flight requests');
  server.drain();
  metricsServer?.close();
  metricsServer?.closeAllConnections();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Idle keep-alive connections are closed as they become idle; busy ones finish first.
  const sweeper = setInterval(() => server.closeIdleConnections(), 50);
  const timedOut = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), DRAIN_MS).unref())]);
  clearInterval(sweeper);
  if (timedOut) {
    log.warn('drain timed out; closing the remaining connections');
    server.closeAllConnections();
  }
  // Every transaction has finished or rolled back by now, so no payment is left half-done.
  await core.close().catch((err) => log.error({ err }, 'error while closing'));
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
