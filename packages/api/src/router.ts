import { procedures } from './routers/index.ts';
import { router } from './trpc.ts';

export const appRouter = router(procedures);
export type { AppRouter } from './routers/index.ts';
