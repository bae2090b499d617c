import http from 'node:http';
import type { Core } from '@concert/core';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { contextFactory } from './context.ts';
import { appRouter } from './router.ts';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface ServerOptions {
  onError?: (info: { path: string | undefined; error: Error; appCode?: string }) => void;
}

/** The HTTP surface: tRPC at /trpc, and plain /healthz and /readyz for load balancers. */
export function createServer(core: Core, opts: ServerOptions = {}): http.Server {
  const trpc = createHTTPHandler({
    router: appRouter,
    createContext: contextFactory(core),
    basePath: '/trpc/',
    maxBodySize: MAX_BODY_BYTES,
    maxBatchSize: 50,
    onError({ error, path }) {
      if (error.code === 'INTERNAL_SERVER_ERROR') opts.onError?.({ path, error });
    },
  });

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/trpc/')) return trpc(req, res);
    if (url === '/healthz') return sendJson(res, 200, { ok: true });
    if (url === '/readyz') {
      core.readiness().then(
        (r) => sendJson(res, r.database && r.queue ? 200 : 503, { ready: r.database && r.queue, ...r }),
        () => sendJson(res, 503, { ready: false }),
      );
      return;
    }
    sendJson(res, 404, { error: 'Not found: the API is under /trpc' });
  });
  // Longer than a typical load balancer's idle timeout, so the balancer closes first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
