import http from 'node:http';
import type { Duplex } from 'node:stream';
import { getTRPCErrorFromUnknown, getTRPCErrorShape, TRPCError, transformTRPCResponse } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import cors from 'cors';
import type { Logger } from 'pino';
import { appCodeOf, problemJson } from './errors.ts';
import { appRouter } from './router.ts';

/*
 * What stands between a socket and the handlers: every answer made outside a procedure is the
 * contract's error envelope with an appCode, no exception thrown by a handler ends the process,
 * and HTTP the parser refuses (garbage, huge headers, a request that never finishes) is answered
 * the same way.
 */

const config = appRouter._def._config;

/** tRPC's error envelope through our formatter and transformer, as a procedure's error would be. */
function errorBody(error: TRPCError, httpStatus: number): string {
  const shape = getTRPCErrorShape({ config, error, type: 'unknown', path: undefined, input: undefined, ctx: undefined });
  return JSON.stringify(transformTRPCResponse(config, { error: { ...shape, data: { ...shape.data, httpStatus } } }));
}

export function sendError(res: http.ServerResponse, error: TRPCError, httpStatus = getHTTPStatusCodeFromError(error)): void {
  if (res.headersSent) {
    // Halfway through a body there is no honest way to say it failed but to cut the connection.
    res.destroy();
    return;
  }
  const text = errorBody(error, httpStatus);
  res.writeHead(httpStatus, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Is this request for the REST surface (`/v1`, `/docs`)? */
export function isRestUrl(url: string): boolean {
  return url.startsWith('/v1/') || url === '/v1' || url.startsWith('/v1?') || url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?');
}

export const notFound = (what: string) => new TRPCError({ code: 'NOT_FOUND', message: `Not found: ${what}` });

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<unknown>;

/**
 * A request listener that cannot throw: whatever the handler throws, at once or later, is
 * answered (4xx for a TRPCError that says so or a malformed URI, else 500 INTERNAL, logged).
 */
export function guard(handler: Handler, log: Logger | undefined): http.RequestListener {
  const fail = (req: http.IncomingMessage, res: http.ServerResponse, err: unknown) => {
    const error = err instanceof URIError ? new TRPCError({ code: 'BAD_REQUEST', message: 'Malformed percent-encoding', cause: err }) : getTRPCErrorFromUnknown(err);
    if (error.code === 'INTERNAL_SERVER_ERROR') {
      log?.error({ err: error.cause ?? error, method: req.method, path: req.url?.split('?')[0] }, 'request handler failed');
    }
    try {
      sendError(res, error);
    } catch {
      res.destroy();
    }
  };
  return (req, res) => {
    try {
      const done = handler(req, res);
      if (done) done.catch((err: unknown) => fail(req, res, err));
    } catch (err) {
      fail(req, res, err);
    }
  };
}

/** Whether the request carries a body (RFC 9112, 6.3: a Transfer-Encoding, or a Content-Length above 0). */
export function carriesBody(req: http.IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * Whether the request has a body sent with a content coding (gzip, deflate, br). Nothing here
 * decodes one (so no decompression bomb either): such a body was parsed as JSON and answered 400
 * with its binary bytes quoted; RFC 9110 (8.4) asks for 415, UNSUPPORTED_MEDIA_TYPE.
 */
export function hasEncodedBody(req: http.IncomingMessage): boolean {
  // A transfer coding before chunked (`gzip, chunked`): Node takes the chunks off and leaves the
  // gzip on, and the compressed bytes were read as the JSON body (a 400 quoting them).
  const transfer = req.headers['transfer-encoding'];
  if (transfer !== undefined && transfer.split(',').some((c) => c.trim().toLowerCase() !== 'chunked')) return true;
  const coding = req.headers['content-encoding']?.trim().toLowerCase();
  if (!coding || coding === 'identity') return false;
  return carriesBody(req);
}

/**
 * The charset a request's body declares when it is not UTF-8 (or its subset US-ASCII). JSON
 * travels as UTF-8 (RFC 8259, 8.1), and the body is read as UTF-8 whatever is declared: a body
 * sent with `charset=utf-16` was read as UTF-8 and its text came out garbled (an outside hostile
 * review, fourth round). Such a body is refused, 415, rather than guessed at.
 */
export function foreignCharset(req: http.IncomingMessage): string | undefined {
  const type = req.headers['content-type'];
  if (type === undefined) return undefined;
  const charset = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(type);
  if (!charset) return undefined;
  const name = (charset[1] ?? charset[2] ?? '').trim().toLowerCase();
  if (UTF8_NAMES.has(name)) return undefined;
  if (!carriesBody(req)) return undefined;
  return name;
}

const UTF8_NAMES = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

export const foreignCharsetMessage = (charset: string) => `The body is read as UTF-8 JSON: send it with charset=utf-8 or no charset, not ${JSON.stringify(charset.slice(0, 40))}`;

export const ENCODED_BODY_MESSAGE = 'A body with a Content-Encoding (gzip, deflate, br), or a Transfer-Encoding other than chunked, is not supported: send it as plain JSON';

/** How many requests a client may send on one connection ahead of the answers it has not taken. */
export const MAX_PIPELINED = 64;
/** How many bytes of answers may wait in a connection for a client that does not read them. */
export const MAX_UNREAD_BYTES = 4 * 1024 * 1024;

/**
 * Cuts off a client that pipelines far ahead of its answers. Node parses every request in what
 * it has read (64 KB: a thousand small GETs) and hands each to the handler at once, and it only
 * stops reading once answers wait in the socket, by which time they are all being worked on and
 * queued: one connection sending 20,000 pipelined GETs and reading nothing grew the heap by
 * ~500 MB. No client of ours pipelines (browsers do not; the load tools here send one at a time),
 * so a connection with more than MAX_PIPELINED requests unanswered, or MAX_UNREAD_BYTES of
 * answers unread, is closed; the requests still in Node's buffer find it closed and do nothing.
 */
export function pipelineLimit(handler: http.RequestListener, log: Logger | undefined): http.RequestListener {
  return (req, res) => {
    const socket = req.socket;
    if (socket.destroyed) return;
    const n = (unanswered.get(socket) ?? 0) + 1;
    if (n > MAX_PIPELINED || socket.writableLength > MAX_UNREAD_BYTES) {
      log?.warn({ unanswered: n - 1, unreadBytes: socket.writableLength, remoteAddress: socket.remoteAddress }, 'a client pipelined too far ahead of its answers: connection closed');
      return void socket.destroy();
    }
    unanswered.set(socket, n);
    res.once('close', () => {
      const left = unanswered.get(socket)! - 1;
      unanswered.set(socket, left);
      if (left === 0) afterAnswers.get(socket)?.();
      if (req.complete || socket.destroyed) return;
      answeredEarly.set(socket, req);
      // On a kept-alive connection Node reads and drops the rest of the body once answered: for
      // at most LINGER_MS or LINGER_BYTES, then the connection is cut (it read on for the request
      // timeout, and one client sent 76 MB in 6 s). A client that asked to close is closed at
      // once by Node; a refusal that could be answered early waits for the body (dropBody).
      void dropBody(req).then(() => {
        if (answeredEarly.get(socket) === req) answeredEarly.delete(socket);
        if (!req.complete) socket.destroy();
      });
    });
    handler(req, res);
  };
}

/** How much of the rest of a body answered early is read (for at most LINGER_MS) before its connection is cut, as nginx's lingering close. */
export const LINGER_BYTES = 8 * 1024 * 1024;

/**
 * Reads and drops a body until it ends, or for LINGER_MS or LINGER_BYTES: before refusing a
 * declared length over the limit, so that the refusal comes once the client has sent it, and
 * after an early answer (pipelineLimit), which then cuts a body that did not end. Answered
 * at once, a client still writing its body (and asking to close) met a reset when the connection
 * closed behind the answer, and lost it (EPIPE: 2 of the robustness suite's 2,000 probes).
 */
export function dropBody(req: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    let dropped = 0;
    const done = () => {
      clearTimeout(timer);
      req.removeListener('data', drop);
      req.removeListener('end', done);
      req.removeListener('close', done);
      resolve();
    };
    const drop = (chunk: Buffer) => {
      if ((dropped += chunk.length) > LINGER_BYTES) done();
    };
    const timer = setTimeout(done, LINGER_MS).unref();
    req.on('data', drop);
    req.once('end', done);
    req.once('close', done);
  });
}

/** Requests on a connection whose answers have not closed yet (pipelineLimit counts them). */
const unanswered = new WeakMap<Duplex, number>();

/**
 * Connections whose request was answered before its body had come in full (an unknown procedure,
 * a caller without identity: tRPC's handler answers before it needs the body), and that request.
 * When the rest never came, the request timeout wrote a second answer (408) on the connection,
 * which a client reusing it would take for the answer to its next request; such a connection is
 * only cut. Once the rest has come, an error is the next request's, and is answered.
 */
const answeredEarly = new WeakMap<Duplex, http.IncomingMessage>();

/** What answerClientError left to do once every request before the refused bytes has its answer. */
const afterAnswers = new WeakMap<Duplex, () => void>();

/**
 * Node's parser refused the request (malformed HTTP, headers over the limit, a client too slow
 * to send its request): answer like any other error, then close.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // Whose error it is. The request attached to the connection whose body is still arriving: its
  // own (a body cut short, a broken chunk, too slow), answered unless its answer has begun. A
  // later request's otherwise, answered only once every request before it has its whole answer:
  // Node still holds the last answer until it is flushed ('finish'), and an answer given before
  // its body came (answeredEarly) until that body's 'end', but a balancer that has read the answer
  // sends its next request at once; cut as a part of the one answered, nginx answered its client
  // 502 ("No API process is answering"). With a request before it still to be answered (a
  // pipelining client), a 400 now would be taken for that one's answer: it is written after the
  // last of theirs (they were cut with it, and a write that had run lost its answer: an outside
  // review, a charge followed by garbage in one packet).
  const attached = (socket as Duplex & { _httpMessage?: http.ServerResponse | null })._httpMessage ?? undefined;
  const own = attached !== undefined && !attached.req.complete;
  const ahead = !own && ((attached !== undefined && !attached.writableEnded) || (unanswered.get(socket) ?? 0) > (attached ? 1 : 0));
  const early = answeredEarly.get(socket);
  // Bytes after a request that asked to close (Connection: close) are nobody's request: its
  // answer is still to come, and Node closes the connection after it.
  if (err.code === 'HPE_CLOSED_CONNECTION' && attached !== undefined && !attached.writableEnded) return;
  if (err.code === 'ECONNRESET' || !socket.writable || (own && attached.headersSent) || (early && !early.complete)) {
    socket.destroy();
    return;
  }
  if (ahead) {
    // Not for ever: an answer ahead that never comes leaves nothing to say after it.
    const guard = setTimeout(() => socket.destroy(), AHEAD_ANSWERS_MS).unref();
    afterAnswers.set(socket, () => {
      afterAnswers.delete(socket);
      clearTimeout(guard);
      if (!socket.writable) return void socket.destroy();
      endSocket(socket, ...refusal(err), target(undefined, err));
    });
    return;
  }
  endSocket(socket, ...refusal(err), target(own ? attached : undefined, err));
}

/** The status and error answering what Node's parser refused. */
function refusal(err: NodeJS.ErrnoException): [number, TRPCError] {
  if (err.code === 'HPE_HEADER_OVERFLOW') return [431, new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: 'The request headers are too large' })];
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, new TRPCError({ code: 'TIMEOUT', message: 'The request did not arrive in time' })];
  return [400, new TRPCError({ code: 'BAD_REQUEST', message: 'Malformed HTTP request' })];
}

/**
 * Whether the refused request is REST's. One whose handler has started (its body was cut short,
 * a chunk was broken, it came too slowly) names its surface: a REST client gets problem+json, as
 * /v1 answers every error. One refused before any handler (a bad header, a raw non-ASCII byte in
 * its path, headers over the limit) names it by the request line of the bytes refused, when they
 * hold it.
 */
function target(pending: http.ServerResponse | undefined, err: NodeJS.ErrnoException): boolean {
  const url = pending?.req?.url ?? requestTarget((err as { rawPacket?: unknown }).rawPacket);
  return url !== undefined && isRestUrl(url);
}

/** How long a refusal waits for the answers to the requests before it (answerClientError). */
export const AHEAD_ANSWERS_MS = 60_000;

/**
 * The request-target of the request line the parser was reading, from the bytes it refused (Node's
 * `rawPacket`: the read it failed in). A request split over several reads may leave the line in
 * an earlier one: then there is none, and the answer is tRPC's envelope, as for bytes that are
 * not HTTP at all.
 */
function requestTarget(packet: unknown): string | undefined {
  if (!Buffer.isBuffer(packet)) return undefined;
  return /^[!-~]+ ([^\s]+)/.exec(packet.subarray(0, 8192).toString('latin1'))?.[1];
}

/**
 * An Expect other than 100-continue: Node's own answer is a bare 417 with no body. It is refused
 * as RFC 9110 allows, in the contract's shape of the surface it was sent to (problem+json on
 * /v1 and /docs), and the request reaches no handler.
 */
export function answerExpectation(req: http.IncomingMessage, res: http.ServerResponse): void {
  const error = new TRPCError({ code: 'BAD_REQUEST', message: 'The Expect header asks for something other than 100-continue' });
  if (req.url !== undefined && isRestUrl(req.url)) return sendProblem(res, 417, error);
  sendError(res, error, 417);
}

/** sendError for the REST surface: application/problem+json with the appCode at the top. */
export function sendProblem(res: http.ServerResponse, status: number, error: TRPCError): void {
  const text = problemJson(appCodeOf(error), status, error.message);
  res.writeHead(status, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/**
 * CONNECT (a proxy tunnel) is not something this server does; Node would drop it without a word.
 * On /v1 the answer is problem+json, as every REST error is (it was tRPC's envelope there: an
 * outside review), with Allow naming what the server does take.
 */
export function answerConnect(req: http.IncomingMessage, socket: Duplex): void {
  endSocket(socket, 405, new TRPCError({ code: 'METHOD_NOT_SUPPORTED', message: 'CONNECT is not supported' }), isRestUrl(req.url ?? '/'), 'GET, HEAD, POST, DELETE, OPTIONS');
}

/** How long a refused client has to take its answer and close, or one answered early to finish its body, before the connection is cut. */
export const LINGER_MS = 2_000;

function endSocket(socket: Duplex, status: number, error: TRPCError, rest = false, allow?: string): void {
  const text = rest ? problemJson(appCodeOf(error), status, error.message) : errorBody(error, status);
  const type = rest ? 'application/problem+json' : 'application/json';
  socket.on('error', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\n${allow ? `allow: ${allow}\r\n` : ''}content-type: ${type}\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
  // end() only half-closes (the server allows half-open sockets): a client that never reads
  // never sees the end nor closes its side, and the descriptor was held for as long as it liked.
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** An OPTIONS on /v1 that is not a CORS preflight: REST answers it with the path's own methods. */
const restOptions = (req: http.IncomingMessage) =>
  req.method === 'OPTIONS' && req.headers['access-control-request-method'] === undefined && isRestUrl(req.url ?? '/');

/**
 * The OpenAPI document is public to every origin (its GET carries access-control-allow-origin: *),
 * so its preflight is granted to every origin too, with whatever headers were asked for (it reads
 * no credential): a browser explorer sending any header beyond the safelisted was refused it (an
 * outside review). Returns true when it answered.
 */
function publicPreflight(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/v1/openapi.json' && path !== '/v1/openapi.json/') return false;
  const asked = req.headers['access-control-request-headers'];
  res.writeHead(204, {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'GET, HEAD',
    ...(typeof asked === 'string' ? { 'access-control-allow-headers': asked } : {}),
    'access-control-max-age': '600',
    allow: 'GET, HEAD, OPTIONS',
    'content-length': 0,
  });
  res.end();
  return true;
}

/** Headers a browser client may send: identity, queue token, admin key, request id, idempotency key. */
const ALLOWED_HEADERS = ['content-type', 'authorization', 'x-user-id', 'x-queue-token', 'x-admin-key', 'x-request-id', 'idempotency-key', 'trpc-accept'];

/**
 * CORS through the `cors` middleware: origins listed in CORS_ORIGINS (or `*`) may call from a
 * browser; with none listed, no cross-origin access is granted. Either way a preflight (OPTIONS
 * with Access-Control-Request-Method) is answered 204 here and never reaches a procedure. Any
 * other OPTIONS on /v1 is REST's, which names the path's own methods in Allow (`restOptions`).
 * Returns true when it answered.
 */
export function corsPolicy(origins: string[]): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  if (origins.length === 0) {
    return (req, res) => {
      if (req.method !== 'OPTIONS' || restOptions(req)) return false;
      if (publicPreflight(req, res)) return true;
      res.writeHead(204, { allow: 'GET, POST, DELETE, OPTIONS', 'content-length': 0 }).end();
      return true;
    };
  }
  const middleware = cors({
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
  });
  return (req, res) => {
    // The middleware takes every OPTIONS for a preflight; a plain one on /v1 is REST's.
    if (restOptions(req)) return false;
    if (publicPreflight(req, res)) return true;
    // With static options the middleware decides synchronously: next() or the 204 preflight.
    let passed = false;
    middleware(req, res, () => {
      passed = true;
    });
    return !passed;
  };
}
