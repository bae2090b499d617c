import { type Core, ConfigError, createCore, loadConfig } from '@concert/core';
import pino from 'pino';
import { createServer } from './server.ts';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

const log = pino({ level: config.logLevel, base: { pid: process.pid } });
for (const name of config.devDefaults) {
  log.warn(name === 'AUTH_MODE' ? 'AUTH_MODE=dev: identity is taken from the x-user-id header; never run this in production' : `${name} is not set: using a dev-only default`);
}

let core: Core;
try {
  core = await createCore(config);
} catch (err) {
  log.fatal({ err }, 'could not start');
  process.exit(1);
}
core.startBackgroundWork((err) => log.error({ err }, 'background job failed'));

const server = createServer(core, { onError: ({ path, error }) => log.error({ path, err: error.cause ?? error }, 'request failed') });
server.listen(config.port, config.host, () => {
  const where = core.databaseKind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL';
  const queue = config.redisUrl ? 'Redis' : 'the in-process queue store';
  log.info(`Concert API listening on http://${config.host}:${config.port}/trpc (${where}, ${queue})`);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const force = setTimeout(() => process.exit(1), 15_000).unref();
  server.close();
  server.closeIdleConnections();
  await new Promise<void>((resolve) => server.once('close', () => resolve()));
  await core.close();
  clearTimeout(force);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
