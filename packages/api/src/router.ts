import { adminRouter } from './routers/admin.ts';
import { balanceRouter } from './routers/balance.ts';
import { concertsRouter } from './routers/concerts.ts';
import { paymentsRouter } from './routers/payments.ts';
import { queueRouter } from './routers/queue.ts';
import { reservationsRouter } from './routers/reservations.ts';
import { waitlistRouter } from './routers/waitlist.ts';
import { router } from './trpc.ts';

export const appRouter = router({
  concerts: concertsRouter,
  queue: queueRouter,
  reservations: reservationsRouter,
  balance: balanceRouter,
  payments: paymentsRouter,
  waitlist: waitlistRouter,
  admin: adminRouter,
});

export type AppRouter = typeof appRouter;
