import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { type AppCode, APP_CODES, AppError, isAppError } from '@concert/core';
import { getTRPCErrorFromUnknown, TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import FindMyWay from 'find-my-way';
import { ZodError } from 'zod';
import type { Context } from '../context.ts';
import { appCodeOf, issuesOf, problemJson, toTRPCError, TRPC_CODE_BY_APP_CODE } from '../errors.ts';
import { resolveUserId } from '../identity.ts';
import { carriesBody, dropBody, ENCODED_BODY_MESSAGE, foreignCharset, foreignCharsetMessage, hasEncodedBody } from '../edge.ts';
import { inputBeyondBounds, jsonTooDeep, MAX_INPUT_DEPTH, TOO_DEEP_MESSAGE } from '../input-bounds.ts';
import { appRouter } from '../router.ts';
import { docsAsset } from './rest.docs.ts';
import { fromText, type OperationInput, operationInput } from './rest.inputs.ts';
import { type Asset, openApiJson } from './rest.openapi.ts';
import { REST_ROUTES, type RestRoute } from './rest.routes.ts';

export interface RestHandlerOptions {
  createContext: (opts: { req: IncomingMessage; res: ServerResponse }) => Context;
  onError?: (opts: { error: TRPCError; path: string | undefined; ctx: Context | undefined }) => void;
  maxBodyBytes: number;
}

interface Operation {
  route: RestRoute;
  input: OperationInput;
}

type Caller = ReturnType<typeof appRouter.createCaller>;

/**
 * The REST surface (contract, REST section): each operation builds its procedure's input from the
 * path, the query or the JSON body and the Idempotency-Key header, and calls the procedure through
 * tRPC's server-side caller, so identity, the queue gate, validation, idempotency and the error
 * table are the same code as on /trpc. Errors answer application/problem+json with the appCode.
 * The returned listener never rejects: every failure becomes a response.
 */
export function createRestHandler(opts: RestHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  // A parameter of any length reaches the procedure's schema, which says what is wrong with it:
  // past maxParamLength find-my-way matches no route, and a 300-digit concertId was a 404
  // PROCEDURE_NOT_FOUND. Node's header limit (16 KiB with the request line) bounds it anyway.
  const router = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH, onBadUrl: () => undefined });
  const noop = () => undefined;
  for (const route of REST_ROUTES) {
    const op: Operation = { route, input: operationInput(route) };
    router.on(route.method, route.path.replace(/\{(\w+)\}/g, ':$1'), noop, op);
  }

  // find-my-way answers a path it cannot decode with onBadUrl's handler and no operation, for any method.
  const undecodable = (pathname: string) => {
    const probe = router.find('GET', pathname);
    return probe !== null && !probe.store;
  };
  // HEAD wherever GET is: it is served there (RFC 9110, 9.3.2), and Allow left it out. A path
  // that cannot be decoded has no operation: it allows nothing.
  const allowedOn = (pathname: string): string[] => {
    if (isAsset(pathname)) return ['GET', 'HEAD'];
    return REST_METHODS.filter((m) => router.find(m, pathname)?.store).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
  };
  // OPTIONS (not a CORS preflight, which the edge answers): the path's own methods, or 404 for a
  // path with none. It was one fixed Allow for every path, /v1/nothing included.
  const answerOptions = (res: ServerResponse, pathname: string) => {
    if (undecodable(pathname)) return sendProblem(res, toTRPCError(new AppError('INVALID_INPUT', UNDECODABLE)), undefined);
    const allowed = allowedOn(pathname);
    if (!allowed.length) return sendProblem(res, toTRPCError(new AppError('PROCEDURE_NOT_FOUND', `No operation at ${pathname}: see GET /v1/openapi.json for the operations`)), undefined);
    res.writeHead(204, { allow: [...allowed, 'OPTIONS'].join(', '), 'content-length': 0 }).end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // A trailing slash is ignored on every operation (find-my-way's ignoreTrailingSlash) and on the
    // document too: /v1/openapi.json/ was 404 where /v1/concerts/ is the list (an outside review).
    const pathname = assetPath(q < 0 ? url : url.slice(0, q));
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') return answerOptions(res, pathname);
    if (isAsset(pathname)) {
      const asset = method === 'GET' || method === 'HEAD' ? (pathname === '/v1/openapi.json' ? openApiJson() : docsAsset(pathname)) : undefined;
      if (!asset) {
        // Allow, as every other method a path does not have is answered (it had none here).
        res.setHeader('allow', 'GET, HEAD, OPTIONS');
        return sendProblem(res, toTRPCError(new AppError('PROCEDURE_NOT_FOUND', `No ${method} ${pathname}: try GET /docs`)), undefined);
      }
      let { body, headers } = asset;
      if (headers?.['content-encoding'] === 'gzip' && !acceptsGzip(header(req, 'accept-encoding'))) {
        body = identityBody(asset);
        headers = { ...headers, 'content-encoding': 'identity' };
      }
      res.writeHead(200, { 'content-type': asset.type, 'content-length': body.length, 'cache-control': asset.cache, ...headers });
      res.end(method === 'HEAD' ? undefined : body);
      return;
    }
    // HEAD is GET without the body (RFC 9110; Node leaves the body out of a HEAD answer).
    const found = router.find((method === 'HEAD' ? 'GET' : method) as FindMyWay.HTTPMethod, pathname);
    // A path that is not valid percent-encoding is that, whatever the method (PUT was a 404).
    if (found ? !found.store : undecodable(pathname)) {
      return sendProblem(res, toTRPCError(new AppError('INVALID_INPUT', UNDECODABLE)), undefined);
    }
    if (!found) {
      const allowed = allowedOn(pathname);
      if (allowed.length) res.setHeader('allow', [...allowed, 'OPTIONS'].join(', '));
      const hint = allowed.length ? `${pathname} answers ${allowed.join(', ')}` : 'see GET /v1/openapi.json for the operations';
      return sendProblem(res, toTRPCError(new AppError('PROCEDURE_NOT_FOUND', `No operation ${method} ${pathname}: ${hint}`)), undefined);
    }
    const { route, input } = found.store as Operation;
    const ctx = opts.createContext({ req, res });
    try {
      // Who is calling, before the body is read, as tRPC's handler reads an input only once the
      // procedure's middlewares ask for it: an anonymous client's megabyte was read and parsed.
      if (route.auth !== 'public') await resolveUserId(ctx.core.config.auth, ctx.headers);
      let raw: Record<string, unknown> = {};
      if (input.body.length) raw = await readJsonObject(req, opts.maxBodyBytes);
      // An operation that takes no body still refuses one it would refuse elsewhere (not JSON,
      // too large, encoded, not an object), then ignores its keys: 3 MB of text/plain to
      // POST /v1/concerts/1/queue was 201 (an outside review).
      else if (carriesBody(req)) await readJsonObject(req, opts.maxBodyBytes);
      if (input.query.size && q >= 0) {
        const params = new URLSearchParams(url.slice(q + 1));
        for (const [name, kind] of input.query) {
          const values = params.getAll(name).map((v) => fromText(v, kind));
          if (values.length) raw[name] = values.length === 1 ? values[0] : values;
        }
      }
      for (const [name, kind] of input.path) raw[name] = fromText(found.params[name] ?? '', kind);
      if (input.idempotencyKey) raw.idempotencyKey = header(req, 'idempotency-key');
      // Aborted when the client hangs up before its answer: a read whose client has gone is not run (trpc.ts).
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      const caller = appRouter.createCaller(ctx, { onError: ({ error }) => opts.onError?.({ error, path: route.procedure, ctx }), signal: gone.signal });
      const data = await procedureOf(caller, route.procedure)(raw);
      sendText(res, route.status, 'application/json', jsonOf(data));
    } catch (cause) {
      sendProblem(res, getTRPCErrorFromUnknown(cause), ctx);
    }
  };

  return (req, res) => {
    handle(req, res).catch((cause: unknown) => {
      opts.onError?.({ error: getTRPCErrorFromUnknown(cause), path: undefined, ctx: undefined });
      if (!res.headersSent) sendProblem(res, toTRPCError(new AppError('INTERNAL')), undefined);
      else res.destroy();
    });
  };
}

const REST_METHODS = ['GET', 'POST', 'DELETE'] as const;
const UNDECODABLE = 'The path is not valid percent-encoded UTF-8';
const isAsset = (pathname: string) => pathname === '/v1/openapi.json' || pathname === '/docs' || pathname.startsWith('/docs/');
const assetPath = (pathname: string) => (pathname === '/v1/openapi.json/' ? '/v1/openapi.json' : pathname);
/** Longer than any request line Node's parser lets through (its header limit, 16 KiB by default). */
const MAX_PARAM_LENGTH = 64 * 1024;

/**
 * A gzipped asset as a client that does not take gzip gets it: unzipped once, on the first such
 * request, and kept (the assets are built once and live as long as the process). Unzipping
 * Scalar's 4.8 MB per request cost ~50-60 ms of one core: a few clients without gzip starved
 * the process, and 2,000 pipelined on one socket froze it for ~100 s.
 */
const identityBodies = new WeakMap<Asset, Buffer>();
function identityBody(asset: Asset): Buffer {
  let body = identityBodies.get(asset);
  if (!body) identityBodies.set(asset, (body = gunzipSync(asset.body)));
  return body;
}

/**
 * Whether an Accept-Encoding takes gzip (RFC 9110, 12.5.3): gzip (or x-gzip) named with a q above
 * 0, or `*` above 0 with gzip not named. `gzip;q=0` says it is not acceptable, and got it.
 */
function acceptsGzip(accept: string | undefined): boolean {
  let any = false;
  for (const part of (accept ?? '').split(',')) {
    const [coding, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const acceptable = q === undefined || Number(q.slice(2)) > 0;
    if (coding === 'gzip' || coding === 'x-gzip') return acceptable;
    if (coding === '*') any = acceptable;
  }
  return any;
}

function procedureOf(caller: Caller, path: string): (input: unknown) => Promise<unknown> {
  let at: unknown = caller;
  for (const key of path.split('.')) at = (at as Record<string, unknown>)[key];
  return at as (input: unknown) => Promise<unknown>;
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** A frozen result (the shared seat map of a cache entry) is JSON-encoded once, not per request. */
const jsonOfFrozen = new WeakMap<object, string>();
function jsonOf(data: unknown): string {
  if (data === null || typeof data !== 'object' || !Object.isFrozen(data)) return JSON.stringify(data);
  let text = jsonOfFrozen.get(data);
  if (text === undefined) jsonOfFrozen.set(data, (text = JSON.stringify(data)));
  return text;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** The request body as a JSON object; an empty body is `{}`, so the schema names what is missing. */
async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    await dropBody(req);
    throw tooLarge(limit);
  }
  if (hasEncodedBody(req)) throw toTRPCError(new AppError('UNSUPPORTED_MEDIA_TYPE', ENCODED_BODY_MESSAGE));
  const charset = foreignCharset(req);
  if (charset !== undefined) throw toTRPCError(new AppError('UNSUPPORTED_MEDIA_TYPE', foreignCharsetMessage(charset)));
  const text = await readBody(req, limit);
  if (text.length === 0) return {};
  if (!JSON_TYPE.test(req.headers['content-type'] ?? '')) {
    throw toTRPCError(new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON with content-type: application/json'));
  }
  // Refused before JSON.parse, whose work on deep nesting is the cost (input-bounds.ts).
  if (jsonTooDeep(text, MAX_INPUT_DEPTH)) throw toTRPCError(new AppError('INVALID_INPUT', TOO_DEEP_MESSAGE));
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw toTRPCError(new AppError('INVALID_INPUT', 'The body is not valid JSON'));
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw toTRPCError(new AppError('INVALID_INPUT', 'The body must be a JSON object'));
  // zod checks every element of an array before its max() (input-bounds.ts).
  const beyond = inputBeyondBounds(body);
  if (beyond !== undefined) throw toTRPCError(new AppError('INVALID_INPUT', beyond));
  // Spread, not Object.assign: a "__proto__" key in the body stays a plain own property.
  return { ...(body as Record<string, unknown>) };
}

function tooLarge(limit: number): TRPCError {
  return toTRPCError(new AppError('PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes`));
}

const utf8 = new TextDecoder();

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      // Answer at once; the rest of the body is read and dropped by Node when the response ends.
      req.off('data', onData);
      reject(tooLarge(limit));
    };
    req.on('data', onData);
    // As /trpc decodes a body (Request.text()): invalid sequences replaced, a leading BOM dropped.
    req.on('end', () => resolve(utf8.decode(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/** The contract's error table, as HTTP statuses. */
const STATUS_BY_APP_CODE = Object.fromEntries(
  APP_CODES.map((code) => [code, getHTTPStatusCodeFromError(new TRPCError({ code: TRPC_CODE_BY_APP_CODE[code] }))]),
) as Record<AppCode, number>;

function sendProblem(res: ServerResponse, error: TRPCError, ctx: Context | undefined): void {
  if (res.headersSent) return void res.destroy();
  const appCode = appCodeOf(error);
  const status = STATUS_BY_APP_CODE[appCode];
  const issues = issuesOf(error);
  const hidden = appCode === 'INTERNAL' && ctx?.core.config.nodeEnv !== 'development';
  const detail = hidden ? 'Internal server error' : error.cause instanceof ZodError ? describeIssues(error.cause.issues) : error.message;
  if (ctx && !ctx.info.appCodes.includes(appCode)) ctx.info.appCodes.push(appCode);
  // What tRPC clients get as data.details (the seats taken, which credential expired, when
  // booking opens…, and an input's path beside `issues`) REST clients get as `details`.
  const details = !hidden && isAppError(error.cause) ? error.cause.details : undefined;
  sendText(res, status, 'application/problem+json', problemJson(appCode, status, detail, { ...issues, ...(details ? { details } : {}) }));
}

function describeIssues(issues: ZodError['issues']): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      // The key travels in a header over REST: name it as the client sent it.
      const where = i.path.map(String).join('.').replace(/^idempotencyKey$/, 'Idempotency-Key header');
      return `${where ? `${where}: ` : ''}${i.message}`;
    })
    .join('; ');
}

function sendText(res: ServerResponse, status: number, type: string, text: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
