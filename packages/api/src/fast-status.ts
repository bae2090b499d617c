import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Core, isAppError } from '@concert/core';
import superjson from 'superjson';
import type { RequestInfo } from './context.ts';
import { resolveUserId } from './identity.ts';
import type { Metrics } from './metrics.ts';

const PATH = '/trpc/queue.status';
const EMPTY_INPUTS = new Set([undefined, JSON.stringify(superjson.serialize({}))]);

/**
 * queue.status is the hottest call (every waiting fan polls it), and tRPC's HTTP adapter costs
 * more than the call itself (a WHATWG Request per call, middleware context merging). This
 * serves the plain, unbatched GET of a successful status with the exact response tRPC would
 * send; anything else — batches, other inputs, and every error — returns false and goes
 * through tRPC, which then answers (and formats the error) as usual. A failed status changes
 * nothing in the store, so answering it a second time there is safe.
 */
export async function tryFastStatus(
  req: IncomingMessage,
  res: ServerResponse,
  core: Core,
  metrics: Metrics,
  info: RequestInfo,
): Promise<boolean> {
  const url = req.url!;
  if (req.method !== 'GET' || !url.startsWith(PATH) || (url.length > PATH.length && url[PATH.length] !== '?')) return false;
  const query = url.length > PATH.length ? new URLSearchParams(url.slice(PATH.length + 1)) : undefined;
  if (query && ([...query.keys()].some((k) => k !== 'input') || !EMPTY_INPUTS.has(query.get('input') ?? undefined))) return false;
  const started = performance.now();
  try {
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const userId = await resolveUserId(core.config.auth, { userId: header('x-user-id'), authorization: header('authorization') });
    const ticket = await core.queue.status(userId, header('x-queue-token'));
    info.userId = userId;
    const text = JSON.stringify({ result: { data: superjson.serialize(ticket) } });
    res.writeHead(200, { 'content-type': 'application/json', vary: 'trpc-accept, accept', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    metrics.observe('queue.status', 'ok', (performance.now() - started) / 1000);
    return true;
  } catch (err) {
    if (isAppError(err) || (err instanceof Error && err.name === 'TRPCError')) return false;
    throw err;
  }
}
