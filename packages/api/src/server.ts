import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Core } from '@concert/core';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { Logger } from 'pino';
import type { TRPCError } from '@trpc/server';
import { type Context, contextFactory, type RequestInfo, requestInfo } from './context.ts';
import { trySingleCall } from './single-call.ts';
import { createMetrics } from './metrics.ts';
import { appRouter } from './router.ts';
import { createRestHandler, isRestUrl } from './rest/rest.handler.ts';

export const MAX_BODY_BYTES = 1024 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

export interface ServerOptions {
  log?: Logger;
}

export interface ApiServer extends http.Server {
  /** Stop taking work: /readyz answers 503 and responses close their connections. */
  drain(): void;
}

/** The HTTP surface: tRPC at /trpc, /healthz and /readyz for load balancers, /metrics for Prometheus. */
export function createServer(core: Core, opts: ServerOptions = {}): ApiServer {
  const log = opts.log;
  const metrics = createMetrics(core);
  const createContext = contextFactory(core, metrics);
  const onError = ({ error, path, ctx }: { error: TRPCError; path: string | undefined; ctx: Context | undefined }) => {
    if (error.code === 'INTERNAL_SERVER_ERROR') {
      log?.error({ requestId: ctx?.info.requestId, procedure: path, err: error.cause ?? error }, 'procedure failed');
    }
  };
  const trpc = createHTTPHandler({
    router: appRouter,
    createContext,
    basePath: '/trpc/',
    maxBodySize: MAX_BODY_BYTES,
    maxBatchSize: 50,
    onError,
  });
  const rest = createRestHandler({ createContext, onError, maxBodyBytes: MAX_BODY_BYTES });
  core.startBackgroundWork({
    onError: (err) => log?.error({ err }, 'background job failed'),
    onHoldsExpired: (n) => metrics.holdsExpired(n),
  });

  let draining = false;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (draining) res.setHeader('connection', 'close');
    if (isRestUrl(url)) return rest(req, res);
    if (url.startsWith('/trpc/')) {
      const started = performance.now();
      const given = req.headers['x-request-id'];
      const info: RequestInfo = { requestId: typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID(), appCodes: [] };
      requestInfo.set(req, info);
      res.setHeader('x-request-id', info.requestId);
      if (log?.isLevelEnabled('info')) {
        res.once('finish', () => {
          // The procedure names, never the query string: inputs can carry tokens and keys.
          const procedure = url.slice('/trpc/'.length).split('?')[0];
          log.info(
            {
              requestId: info.requestId,
              method: req.method,
              procedure,
              userId: info.userId,
              status: res.statusCode,
              appCodes: info.appCodes.length ? info.appCodes : undefined,
              durationMs: Math.round((performance.now() - started) * 10) / 10,
            },
            'request',
          );
        });
      }
      if (!trySingleCall(req, res, createContext, onError, MAX_BODY_BYTES)) trpc(req, res);
      return;
    }
    if (url === '/healthz') return sendJson(res, 200, { ok: true });
    if (url === '/readyz') {
      if (draining) return sendJson(res, 503, { ready: false, draining: true });
      core.readiness().then(
        (r) => sendJson(res, r.database && r.queue ? 200 : 503, { ready: r.database && r.queue, ...r }),
        () => sendJson(res, 503, { ready: false }),
      );
      return;
    }
    if (url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        () => sendJson(res, 500, { error: 'metrics failed' }),
      );
      return;
    }
    sendJson(res, 404, { error: 'Not found: the API is under /trpc' });
  }) as ApiServer;
  // Longer than a typical load balancer's idle timeout, so the balancer closes first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  server.drain = () => {
    draining = true;
  };
  return server;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
