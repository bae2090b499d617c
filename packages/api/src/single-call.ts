import type { IncomingMessage, ServerResponse } from 'node:http';
import { callTRPCProcedure, getTRPCErrorFromUnknown, getTRPCErrorShape, TRPCError, transformTRPCResponse } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import superjson from 'superjson';
import type { Context } from './context.ts';
import { appRouter } from './router.ts';

type ProcedureType = 'query' | 'mutation';

// At run time the flat map of "a.b" paths to procedures (its static type is the nested router).
const procedures = appRouter._def.procedures as unknown as Record<string, { _def: { type: ProcedureType | 'subscription' } }>;
const config = appRouter._def._config;

/**
 * One unbatched tRPC call — what a fan's client sends on the hot paths — without the general
 * adapter's detour through a WHATWG Request per call, which costs more than queue.status itself.
 * The call still runs through the router (every middleware, the same input validation, error
 * formatter and response shape); batches and anything unusual go to tRPC's own handler, which
 * this returns false for, before reading anything from the request.
 */
export function trySingleCall(
  req: IncomingMessage,
  res: ServerResponse,
  createContext: (opts: { req: IncomingMessage; res: ServerResponse }) => Context,
  onError: (opts: { error: TRPCError; path: string; ctx: Context }) => void,
  maxBodyBytes: number,
): boolean {
  const url = req.url!;
  const q = url.indexOf('?');
  const path = decodeURIComponent(url.slice('/trpc/'.length, q < 0 ? undefined : q));
  const type = procedures[path]?._def.type;
  const query = q < 0 ? undefined : new URLSearchParams(url.slice(q + 1));
  if (!type || type === 'subscription' || query?.has('batch')) return false;
  if ((type === 'query' && req.method !== 'GET') || (type === 'mutation' && req.method !== 'POST')) return false;
  if (query && [...query.keys()].some((k) => k !== 'input')) return false;

  const ctx = createContext({ req, res });
  const run = async () => {
    let input: unknown;
    try {
      const raw = type === 'query' ? query?.get('input') ?? undefined : await readBody(req, maxBodyBytes);
      input = raw === undefined || raw === '' ? undefined : parseInput(raw);
      const data = await callTRPCProcedure({ router: appRouter, path, getRawInput: async () => input, ctx, type, signal: undefined, batchIndex: 0 });
      sendText(res, 200, `{"result":{"data":${dataJson(data)}}}`);
    } catch (cause) {
      const error = getTRPCErrorFromUnknown(cause);
      onError({ error, path, ctx });
      const shape = getTRPCErrorShape({ config, error, type, path, input, ctx });
      send(res, getHTTPStatusCodeFromError(error), transformTRPCResponse(config, { error: shape }));
    }
  };
  void run();
  return true;
}

/** A frozen result (a shared seat map) is serialized to JSON once, like the transformer does. */
const jsonOfFrozen = new WeakMap<object, string>();
function dataJson(data: unknown): string {
  const serialize = () => JSON.stringify(config.transformer.output.serialize(data));
  if (data === null || typeof data !== 'object' || !Object.isFrozen(data)) return serialize();
  let text = jsonOfFrozen.get(data);
  if (text === undefined) jsonOfFrozen.set(data, (text = serialize()));
  return text;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body));
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', vary: 'trpc-accept, accept', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function parseInput(raw: string): unknown {
  try {
    return superjson.deserialize(JSON.parse(raw));
  } catch (cause) {
    throw new TRPCError({ code: 'PARSE_ERROR', message: 'The input is not valid JSON in the superjson envelope', cause });
  }
}

/** The body, up to `limit` bytes; a larger one is read to its end (and dropped) so the 413 can be sent. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > limit) reject(new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: `The request body is larger than ${limit} bytes` }));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}
