export type { AppRouter } from './router.ts';
export { appRouter } from './router.ts';
export { createServer } from './server.ts';
export { TRPC_CODE_BY_APP_CODE } from './errors.ts';
