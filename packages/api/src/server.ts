import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Core } from '@concert/core';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { Logger } from 'pino';
import { TRPCError } from '@trpc/server';
import { type Context, contextFactory, type RequestInfo, requestInfo } from './context.ts';
import { answerClientError, answerConnect, answerExpectation, corsPolicy, dropBody, ENCODED_BODY_MESSAGE, foreignCharset, foreignCharsetMessage, guard, hasEncodedBody, isRestUrl, notFound, pipelineLimit, sendError, sendProblem } from './edge.ts';
import type { Metrics } from './metrics.ts';
import { appRouter } from './router.ts';
import { createRestHandler } from './rest/rest.handler.ts';
import { fastPath } from './single-call.ts';

export const MAX_BODY_BYTES = 1024 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;
/**
 * What reaches tRPC's handler (OPTIONS is answered by the CORS policy before). PUT, PATCH and
 * DELETE are refused before it too: its handler checked their (often absent) content type first
 * and answered 415, telling the client to fix a header when the method was what was wrong.
 */
const TRPC_METHODS = new Set(['GET', 'POST', 'HEAD']);

export interface ServerOptions {
  log?: Logger;
  /** Where procedure outcomes are recorded (served by createMetricsServer on its own port). */
  metrics?: Metrics;
}

export interface ApiServer extends http.Server {
  /** Stop taking work: /readyz answers 503 and responses close their connections. */
  drain(): void;
}

/**
 * The public HTTP surface: tRPC at /trpc, REST at /v1 (its reference at /docs), /healthz and
 * /readyz for load balancers. Building it starts nothing: core's background work is started by whoever runs the process.
 */
export function createServer(core: Core, opts: ServerOptions = {}): ApiServer {
  const { log, metrics } = opts;
  const { http: edge } = core.config;
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
    // What tRPC refuses before choosing a procedure (a path it cannot decode, a content type it
    // does not take, a batch too large or mixed) is its JSON envelope in a Response given no
    // content type, which made it text/plain;charset=UTF-8. Streamed answers set their own.
    responseMeta: ({ eagerGeneration }) => (eagerGeneration ? {} : { headers: { 'content-type': 'application/json' } }),
  });
  const fast = edge.fastPath ? fastPath({ createContext, onError, maxBodyBytes: MAX_BODY_BYTES }) : () => false;
  const cors = corsPolicy(edge.corsOrigins);
  const rest = createRestHandler({ createContext, onError, maxBodyBytes: MAX_BODY_BYTES });

  let draining = false;
  // Answers not yet sent, so that a drain can tell them to close their connections too: those
  // started before it were answered keep-alive (an outside review's SIGTERM under load).
  const unanswered = new Set<http.ServerResponse>();
  const answered = function (this: http.ServerResponse) {
    unanswered.delete(this);
  };
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void | Promise<unknown> => {
    unanswered.add(res);
    res.on('close', answered);
    // RFC 9112, 3.2.2: a server MUST accept a request-target in absolute form (what a client
    // sends through a forward proxy); it is routed as its origin form (it was 404 everywhere).
    const absolute = req.url !== undefined && !req.url.startsWith('/') ? /^https?:\/\/[^/?#]*/i.exec(req.url) : null;
    if (absolute) {
      const path = req.url!.slice(absolute[0].length);
      req.url = path.startsWith('/') ? path : `/${path}`;
    }
    const url = req.url ?? '/';
    if (draining) res.setHeader('connection', 'close');
    // RFC 9112: an HTTP/1.1 request without Host is refused (Node's own refusal has no body), in
    // the shape of the surface it was sent to (problem+json on /v1 and /docs).
    if (req.headers.host === undefined && req.httpVersion === '1.1') {
      const error = new TRPCError({ code: 'BAD_REQUEST', message: 'The Host header is required' });
      return isRestUrl(url) ? sendProblem(res, 400, error) : sendError(res, error);
    }
    if (cors(req, res)) return;
    const isRest = isRestUrl(url);
    if (url.startsWith('/trpc/') || isRest) {
      // Methods tRPC's fetch adapter cannot even represent (TRACE, custom ones) would be its 500;
      // the others it does not take are refused here alike (TRPC_METHODS).
      if (!isRest && !TRPC_METHODS.has(req.method!)) {
        res.setHeader('allow', 'GET, POST');
        return sendError(res, new TRPCError({ code: 'METHOD_NOT_SUPPORTED', message: `${req.method} is not supported; tRPC takes GET and POST` }));
      }
      // tRPC's handler builds a WHATWG Request on http://<Host>: a Host with user info (`a@b`)
      // makes a URL with credentials, which Request refuses with a throw that was its 500.
      if (!isRest && req.headers.host?.includes('@')) return sendError(res, new TRPCError({ code: 'BAD_REQUEST', message: 'The Host header is not a host: it has user info (@)' }));
      if (!isRest && hasEncodedBody(req)) return sendError(res, new TRPCError({ code: 'UNSUPPORTED_MEDIA_TYPE', message: ENCODED_BODY_MESSAGE }));
      const charset = isRest ? undefined : foreignCharset(req);
      if (charset !== undefined) return sendError(res, new TRPCError({ code: 'UNSUPPORTED_MEDIA_TYPE', message: foreignCharsetMessage(charset) }));
      const started = performance.now();
      const given = req.headers['x-request-id'];
      const info: RequestInfo = { requestId: typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID(), appCodes: [] };
      requestInfo.set(req, info);
      res.setHeader('x-request-id', info.requestId);
      const method = req.method;
      if (log?.isLevelEnabled('info')) {
        res.once('finish', () => {
          // The procedure names, never the query string: inputs can carry tokens and keys.
          const procedure = (isRest ? url : url.slice('/trpc/'.length)).split('?')[0];
          log.info(
            {
              requestId: info.requestId,
              method,
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
      if (isRest) return rest(req, res);
      // A declared body over the limit is refused without keeping it: tRPC's handler waited for
      // all of it to arrive, and answered only at the request timeout when it never did.
      if (Number(req.headers['content-length']) > MAX_BODY_BYTES) return tooLarge(req, res);
      // HEAD is GET without the body (RFC 9110 §9.3.2): tRPC's handler answered every HEAD 204,
      // whatever the path, a procedure that does not exist included. Answered as the GET, and
      // Node's response to a HEAD request sends no body, whatever is written to it.
      if (req.method === 'HEAD') req.method = 'GET';
      if (!fast(req, res)) trpc(req, res);
      return;
    }
    // A probe may add a query string (a cache-buster); the path is what it asks for.
    const probe = url.split('?', 1)[0];
    if ((probe === '/healthz' || probe === '/readyz') && req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendError(res, new TRPCError({ code: 'METHOD_NOT_SUPPORTED', message: `${req.method} is not supported; ${probe} answers GET and HEAD` }));
    }
    if (probe === '/healthz') return sendJson(res, 200, { ok: true });
    if (probe === '/readyz') {
      if (draining) return sendJson(res, 503, { ready: false, draining: true });
      return core.readiness().then(
        (r) => sendJson(res, r.database && r.queue ? 200 : 503, { ready: r.database && r.queue, ...r }),
        () => sendJson(res, 503, { ready: false }),
      );
    }
    sendError(res, notFound('the API is under /trpc, and /v1 for REST (GET /docs)'));
  };
  const checkEveryMs = Math.min(1000, edge.headersTimeoutMs / 2);
  const server = http.createServer(
    {
      headersTimeout: edge.headersTimeoutMs,
      requireHostHeader: false,
      requestTimeout: edge.requestTimeoutMs,
      // How often the two limits above are checked (Node's default, 30 s, would let them run long).
      connectionsCheckingInterval: checkEveryMs,
    },
    pipelineLimit(guard(handle, log), log),
  ) as ApiServer;
  server.on('clientError', answerClientError);
  server.on('connect', answerConnect);
  // Counted with the others (pipelineLimit), so that a refused request behind it waits for its answer.
  server.on('checkExpectation', pipelineLimit(answerExpectation, log));
  // Longer than a typical load balancer's idle timeout, so the balancer closes first.
  server.keepAliveTimeout = 65_000;
  // A connection on which nothing moves for the request timeout (and a check interval and a
  // second more) is closed: the limits above stop once a request has arrived, and an answer too
  // large for the socket's buffers (/docs/scalar.js) to a client that never read it held its
  // connection for good. The margin lets a request still arriving be answered 408 by the request
  // timeout first: at exactly that timeout this raced its check, and a client that sent part of a
  // body and then nothing was mostly cut without an answer.
  server.timeout = edge.requestTimeoutMs + checkEveryMs + 1000;
  server.drain = () => {
    draining = true;
    for (const res of unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
  };
  return server;
}

/** Prometheus metrics at /metrics, on a listener of their own (METRICS_PORT), never the public one. */
export function createMetricsServer(metrics: Metrics, opts: { log?: Logger } = {}): http.Server {
  // Its requests are counted and an answer given before its body came is marked (pipelineLimit),
  // as on the public port: a refused request behind another still to be answered cut, no second answer.
  const server = http.createServer(
    pipelineLimit(
      guard(async (req, res) => {
        // A scraper may add a query string (Prometheus' `params:`); HEAD is GET without the body.
        if (req.url?.split('?', 1)[0] !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return sendError(res, notFound('metrics are at GET /metrics'));
        const text = await metrics.render();
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(text);
      }, opts.log),
      opts.log,
    ),
  );
  server.on('clientError', answerClientError);
  server.on('connect', answerConnect);
  server.on('checkExpectation', pipelineLimit(answerExpectation, opts.log));
  return server;
}

/** 413 for a declared body over the limit, once the client has sent it (see dropBody). */
function tooLarge(req: http.IncomingMessage, res: http.ServerResponse): void {
  void dropBody(req).then(() => {
    if (res.headersSent || res.destroyed) return;
    sendError(res, new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: `The request body is larger than ${MAX_BODY_BYTES} bytes` }));
  });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
