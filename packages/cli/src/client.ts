// Loaded lazily (Ctx.create): --help never pays for the tRPC client and superjson.
import type { AppRouter } from '@concert/api';
import { createTRPCClient, httpLink } from '@trpc/client';
import superjson from 'superjson';
import { HttpStatusError } from './errors.ts';

export interface Identity {
  userId?: number;
  userToken?: string;
  adminKey?: string;
}

export type ApiClient = ReturnType<typeof createApiClient>;

/**
 * One HTTP request per call (no batching), so each call carries exactly its own headers: the
 * identity, the admin key and, for booking steps, the queue token. Every request gives up after
 * `timeoutMs` and when `signal` aborts (Ctrl-C).
 */
export function createApiClient(api: string, who: Identity, opts: { signal?: AbortSignal; timeoutMs?: number } = {}) {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${api.replace(/\/+$/, '')}/trpc`,
        transformer: superjson,
        headers: ({ op }) => {
          const queueToken = (op.context as { queueToken?: string }).queueToken;
          return {
            ...(who.userId !== undefined ? { 'x-user-id': String(who.userId) } : {}),
            ...(who.userToken ? { authorization: `Bearer ${who.userToken}` } : {}),
            ...(who.adminKey ? { 'x-admin-key': who.adminKey } : {}),
            ...(queueToken ? { 'x-queue-token': queueToken } : {}),
          };
        },
        fetch: async (url, init) => {
          const signals = [AbortSignal.timeout(timeoutMs)];
          if (opts.signal) signals.push(opts.signal);
          if (init?.signal) signals.push(init.signal as AbortSignal);
          const res = await fetch(url, { ...(init as RequestInit), signal: AbortSignal.any(signals) });
          // The API answers in JSON, errors too: anything else is a proxy's page (a 502 while the
          // API restarts), whose status says more than the parse error tRPC would make of it.
          if (!res.ok && !/^application\/json\b/i.test(res.headers.get('content-type') ?? '')) {
            await res.body?.cancel();
            throw new HttpStatusError(res.status, res.statusText);
          }
          return res;
        },
      }),
    ],
  });
}
