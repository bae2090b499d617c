// The React app's tRPC: typed by the packed @concert/api, queries through TanStack Query.
import type { AppCode, AppRouter } from '@concert/api';
import { QueryClient } from '@tanstack/react-query';
import { createTRPCClient, httpBatchLink, isTRPCClientError } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';
import superjson from 'superjson';

export const { TRPCProvider, useTRPC } = createTRPCContext<AppRouter>();

/** The signed-in user and the queue token queue.enter handed out; sent on every call. */
export const session: { userId: number; queueToken?: string } = { userId: 1 };

export function makeClients() {
  const queryClient = new QueryClient({ defaultOptions: { queries: { staleTime: 5_000 } } });
  const trpcClient = createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: 'http://127.0.0.1:3000/trpc',
        transformer: superjson,
        headers: () => ({ 'x-user-id': String(session.userId), ...(session.queueToken ? { 'x-queue-token': session.queueToken } : {}) }),
      }),
    ],
  });
  return { queryClient, trpcClient };
}

/** The contract's error code of a failed call, typed. */
export function appCodeOf(err: unknown): AppCode | undefined {
  return isTRPCClientError<AppRouter>(err) ? err.data?.appCode : undefined;
}
