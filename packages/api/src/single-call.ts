import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AnyTRPCMutationProcedure,
  type AnyTRPCProcedure,
  type AnyTRPCQueryProcedure,
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  TRPCError,
  transformTRPCResponse,
} from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { Context } from './context.ts';
import { type AppRouter, appRouter } from './router.ts';
import { concertSeats } from './routers/concerts.ts';
import { paymentsPay } from './routers/payments.ts';
import { queueEnter, queueStatus } from './routers/queue.ts';
import { reservationsHold } from './routers/reservations.ts';
import { jsonTooDeep, MAX_INPUT_DEPTH, TOO_DEEP_MESSAGE } from './input-bounds.ts';
import { type DirectProcedure, gateOf, identify, settle } from './trpc.ts';

/*
 * The fast path: one unbatched call of a hot procedure, answered without tRPC's detour through
 * a WHATWG Request and Response per call, and without its middleware machinery, which together
 * cost more than queue.status itself (measured: README, Benchmark). It serves only the request
 * shapes it fully understands, decided before it reads anything: a listed procedure (the
 * compiler checks each is a query or a mutation of the router), a plain path with no escapes,
 * GET with at most an `input` parameter or POST with an application/json body and no query
 * string, and no streaming `accept`. Everything else is tRPC's own handler's, so the odd cases
 * have one implementation. What it does serve runs what the router's procedure runs, in its
 * order and through the same functions (`callDirect`, below), with the input parsed lazily by
 * tRPC's rules, and answers with tRPC's error shape, status and serialization. The API suites
 * run through both (vitest project `fast-path`), fast-path.test.ts sends the same requests to
 * both and compares the answers, and single-call.test.ts fails if a procedure's middlewares
 * change without this file.
 */

/** "a.b" paths of the router's procedures of one kind. */
type ProcedurePaths<TRecord, TKind, TPrefix extends string = ''> = {
  [K in keyof TRecord & string]: TRecord[K] extends AnyTRPCProcedure
    ? TRecord[K] extends TKind
      ? `${TPrefix}${K}`
      : never
    : ProcedurePaths<TRecord[K], TKind, `${TPrefix}${K}.`>;
}[keyof TRecord & string];
type Record_ = AppRouter['_def']['record'];

const FAST_QUERIES = {
  'queue.status': queueStatus,
  'concerts.seats': concertSeats,
} as const satisfies Partial<Record<ProcedurePaths<Record_, AnyTRPCQueryProcedure>, DirectProcedure>>;
const FAST_MUTATIONS = {
  'queue.enter': queueEnter,
  'reservations.hold': reservationsHold,
  'payments.pay': paymentsPay,
} as const satisfies Partial<Record<ProcedurePaths<Record_, AnyTRPCMutationProcedure>, DirectProcedure>>;

interface FastCall {
  path: string;
  type: 'query' | 'mutation';
  proc: DirectProcedure;
}

/** Exact request paths (no decoding needed: the names are plain letters and dots). */
const FAST = new Map<string, FastCall>([
  ...Object.entries(FAST_QUERIES).map(([path, proc]) => [`/trpc/${path}`, { path, type: 'query' as const, proc }] as const),
  ...Object.entries(FAST_MUTATIONS).map(([path, proc]) => [`/trpc/${path}`, { path, type: 'mutation' as const, proc }] as const),
]);

/** The procedures the fast path calls directly, for single-call.test.ts. */
export const FAST_PROCEDURES: ReadonlyArray<Readonly<FastCall>> = [...FAST.values()];

/** A query string that is exactly one `input`, in the characters encodeURIComponent produces. */
const INPUT_ONLY = /^input=[\w%.!~*'()+-]*$/;
/** The last Host header seen to make a valid URL base, as tRPC's handler needs (it refuses the rest with 400). */
let goodHost = 'localhost';
const validHost = (host: string) => host === goodHost || (URL.canParse(`http://${host}`) && Boolean((goodHost = host)));

const config = appRouter._def._config;

export interface FastPathOptions {
  createContext: (opts: { req: IncomingMessage; res: ServerResponse }) => Context;
  onError: (opts: { error: TRPCError; path: string; ctx: Context | undefined }) => void;
  maxBodyBytes: number;
}

/** Returns a handler that serves a request and returns true, or returns false having touched nothing. */
export function fastPath(opts: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url!;
    const q = url.indexOf('?');
    const call = FAST.get(q < 0 ? url : url.slice(0, q));
    if (!call) return false;
    const { headers } = req;
    if (headers['trpc-accept'] !== undefined || headers.accept?.includes('application/jsonl')) return false;
    if (headers.host !== undefined && !validHost(headers.host)) return false;
    const contentType = headers['content-type'];
    let source: () => Promise<string>;
    if (call.type === 'query') {
      if (req.method !== 'GET' || (contentType !== undefined && !isJson(contentType))) return false;
      const search = q < 0 ? '' : url.slice(q + 1);
      if (search !== '' && !INPUT_ONLY.test(search)) return false;
      // URLSearchParams decodes as tRPC's URL does, and never throws on a malformed escape.
      const raw = search === '' ? '' : new URLSearchParams(search).get('input') ?? '';
      source = async () => raw;
    } else {
      if (req.method !== 'POST' || q >= 0 || contentType === undefined || !isJson(contentType)) return false;
      const body = readBody(req, opts.maxBodyBytes);
      // The body is read (and a truncated one noticed) whether or not the procedure asks for it.
      body.catch(() => {});
      source = () => body;
    }
    void run(req, res, call, source, opts);
    return true;
  };
}

async function run(req: IncomingMessage, res: ServerResponse, call: FastCall, source: () => Promise<string>, opts: FastPathOptions) {
  let ctx: Context | undefined;
  let input: unknown;
  try {
    ctx = opts.createContext({ req, res });
    // Parsed when the procedure asks for it, inside its middleware, as tRPC's handler does.
    const getRawInput = async () => (input = await parseInput(await source()));
    const data = await callDirect(call, ctx, getRawInput);
    send(res, 200, JSON.stringify(transformTRPCResponse(config, { result: { data } })));
  } catch (cause) {
    const error = getTRPCErrorFromUnknown(cause);
    opts.onError({ error, path: call.path, ctx });
    const shape = getTRPCErrorShape({ config, error, type: call.type, path: call.path, input, ctx });
    send(res, getHTTPStatusCodeFromError(error), JSON.stringify(transformTRPCResponse(config, { error: shape })));
  }
}

/**
 * A procedure called without tRPC's middleware machinery (its chain of promises and per-call
 * object spreads), through what that chain runs, in its order and through the same functions:
 * `settle` (the base middleware) around `identify` (the identified procedure's middleware) and,
 * for a gated one, `gateOf` (the active-queue procedure's); then the procedure's input parser (a
 * failure is BAD_REQUEST with the parser's error as its cause, as tRPC's input middleware
 * throws) and its resolver, the two the router builds it from.
 */
async function callDirect(call: FastCall, ctx: Context, getRawInput: () => Promise<unknown>): Promise<unknown> {
  const { proc } = call;
  const started = performance.now();
  let outcome: { ok: true; data: unknown } | { ok: false; error: TRPCError };
  try {
    const userId = await identify(ctx, call.type, call.path);
    const gate = proc.gated ? gateOf(ctx, userId) : undefined;
    const raw = await getRawInput();
    let input: unknown;
    try {
      input = proc.input.parse(raw);
    } catch (cause) {
      throw new TRPCError({ code: 'BAD_REQUEST', cause });
    }
    outcome = { ok: true, data: await proc.resolve({ core: ctx.core, headers: ctx.headers, userId, gate }, input) };
  } catch (cause) {
    outcome = { ok: false, error: getTRPCErrorFromUnknown(cause) };
  }
  const result = settle(ctx, call.path, started, outcome);
  if (!result.ok) throw result.error;
  return result.data;
}

/** tRPC's JSON content-type test: the media type before any parameters, case-insensitive. */
function isJson(contentType: string): boolean {
  return contentType.split(';', 1)[0]!.trim().toLowerCase() === 'application/json';
}

/** tRPC's rules: an empty input is undefined; a parse failure is BAD_REQUEST with the parser's message. */
async function parseInput(raw: string): Promise<unknown> {
  if (raw === '') return undefined;
  try {
    // Before JSON.parse, whose work on deep nesting is the cost (input-bounds.ts); the envelope is a level.
    if (jsonTooDeep(raw, MAX_INPUT_DEPTH + 1)) throw new TypeError(TOO_DEEP_MESSAGE);
    return config.transformer.input.deserialize(JSON.parse(raw));
  } catch (cause) {
    if (cause instanceof TRPCError) throw cause;
    throw new TRPCError({ code: 'BAD_REQUEST', message: cause instanceof Error ? cause.message : 'Invalid input', cause });
  }
}

function send(res: ServerResponse, status: number, text: string): void {
  // The client may be gone; there is nobody left to answer.
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', vary: 'trpc-accept, accept', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const utf8 = new TextDecoder();

/** The body as UTF-8, up to `limit` bytes (PAYLOAD_TOO_LARGE past it, as tRPC's handler); a connection cut mid-body rejects. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      reject(new TRPCError({ code: 'PAYLOAD_TOO_LARGE' }));
    };
    const onEnd = () => {
      cleanup();
      // As Request.text() decodes: invalid sequences replaced, a leading BOM dropped.
      resolve(utf8.decode(Buffer.concat(chunks)));
    };
    const onClose = () => {
      cleanup();
      reject(new TRPCError({ code: 'CLIENT_CLOSED_REQUEST', message: 'The connection closed before the body arrived' }));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onClose);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onClose);
    req.on('close', onClose);
  });
}
