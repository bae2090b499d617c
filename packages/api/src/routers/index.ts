import type { TRPCBuiltRouter, TRPCDecorateCreateRouterOptions } from '@trpc/server';
import type { AppErrorShape } from '../errors.ts';
import { adminRouter } from './admin.ts';
import { balanceRouter } from './balance.ts';
import { concertsRouter } from './concerts.ts';
import { paymentsRouter } from './payments.ts';
import { queueRouter } from './queue.ts';
import { reservationsRouter } from './reservations.ts';
import { waitlistRouter } from './waitlist.ts';

// Sub-routers are plain records (`{ … } satisfies TRPCRouterRecord`), not router(): a router()
// carries the server's context type, which would then be part of every client's AppRouter.
export const procedures = {
  concerts: concertsRouter,
  queue: queueRouter,
  reservations: reservationsRouter,
  balance: balanceRouter,
  payments: paymentsRouter,
  waitlist: waitlistRouter,
  admin: adminRouter,
};

/**
 * The router as a client sees it: every procedure's input and output, the error shape and the
 * transformer, and an empty context in place of the server's (services, database, Redis), so
 * its declaration refers to nothing server-side. `typeof appRouter` (router.ts) is the same
 * router with the server's context.
 */
export type AppRouter = TRPCBuiltRouter<
  { ctx: object; meta: object; errorShape: AppErrorShape; transformer: true },
  TRPCDecorateCreateRouterOptions<typeof procedures>
>;
