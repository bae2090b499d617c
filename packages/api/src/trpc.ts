import { AppError, isAppError, isDatabaseBusy, isDatabaseUnavailable, type QueueGate } from '@concert/core';
import { initTRPC, TRPCError } from '@trpc/server';
import { type output, ZodError, type ZodType } from 'zod';
import type { Context } from './context.ts';
import { type AppErrorShape, appCodeOf, appFail, issuesOf, toTRPCError } from './errors.ts';
import { FairSlots } from './fair-slots.ts';
import { adminKeyMatches, resolveUserId } from './identity.ts';
import { transformer } from './transformer.ts';

const t = initTRPC.context<Context>().create({
  transformer,
  // Stack traces stay in the server's logs; the formatter hides internal messages outside development.
  isDev: false,
  errorFormatter({ shape, error, ctx }): AppErrorShape {
    const appCode = appCodeOf(error);
    const zodError = error.cause instanceof ZodError ? error.cause : undefined;
    const dev = ctx?.core.config.nodeEnv === 'development';
    const hide = appCode === 'INTERNAL' && !dev;
    return {
      ...shape,
      message: hide ? 'Internal server error' : zodError ? 'Invalid input' : shape.message,
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        // Absent outside a procedure (the transformer would otherwise describe an undefined).
        ...(shape.data.path !== undefined ? { path: shape.data.path } : {}),
        appCode,
        ...issuesOf(error),
        ...(isAppError(error.cause) && error.cause.details ? { details: error.cause.details } : {}),
      },
    };
  },
});

export const router = t.router;

/** A procedure's outcome as tRPC's middlewares pass it on. */
type Outcome = { ok: true; data: unknown } | { ok: false; error: TRPCError };

/**
 * What every procedure's outcome goes through (the `base` middleware, and the fast path's direct
 * calls): an AppError becomes a TRPCError with the contract's code, RATE_LIMITED sets
 * Retry-After, and the outcome is recorded for the request log and the metrics.
 */
export function settle<R extends Outcome>(ctx: Context, path: string, started: number, outcome: R): R {
  let result: Outcome = outcome;
  if (!result.ok && result.error.code === 'INTERNAL_SERVER_ERROR') {
    const cause = result.error.cause;
    if (isAppError(cause)) result = { ...result, error: toTRPCError(cause) };
    else if (isDatabaseUnavailable(cause)) {
      result = { ...result, error: toTRPCError(new AppError('SERVICE_UNAVAILABLE', 'The database is unavailable; try again shortly')) };
    } else if (isDatabaseBusy(cause)) {
      result = { ...result, error: toTRPCError(new AppError('SERVICE_UNAVAILABLE', 'The database is too busy to finish this now; try again shortly')) };
    }
  }
  const code = result.ok ? 'ok' : appCodeOf(result.error);
  if (!result.ok) {
    ctx.info.appCodes.push(appCodeOf(result.error));
    const retry = isAppError(result.error.cause) ? result.error.cause.details?.retryAfterMs : undefined;
    if (typeof retry === 'number') ctx.setHeader('retry-after', String(Math.max(1, Math.ceil(retry / 1000))));
  }
  ctx.metrics?.observe(path, code, (performance.now() - started) / 1000, result.ok ? result.data : undefined);
  return result as R;
}

/**
 * Reads (tRPC queries) run in the process's read slots, as many as its database connections, and
 * one whose client has gone by the time its slot comes is not run. A client that sent batches of
 * 50 reads and hung up at once had every abandoned call wait for the pool and run, and other
 * clients' reads timed out behind them (an outside hostile review). Writes are not held back: a
 * write whose client left still completes, for the retry with its idempotency key.
 *
 * While reads wait, the slots go round-robin between the requests they came in (an HTTP request
 * is one owner, however many calls its batch holds): another client's single read waits for one
 * call of each request ahead of it, not for every call of their batches. First come, first
 * served, a flood of 50-call batches whose hang-ups the process had not yet seen (on a loaded
 * machine) kept another client's read waiting 10 s.
 */
const readSlots = new WeakMap<Context['core'], FairSlots>();
function readSlot(core: Context['core']): FairSlots {
  let slots = readSlots.get(core);
  if (!slots) readSlots.set(core, (slots = new FairSlots(core.config.dbPoolSize)));
  return slots;
}

const base = t.middleware(async ({ ctx, path, type, signal, next }) => {
  const started = performance.now();
  const run = async () => {
    const result = settle(ctx, path, started, await next());
    if (!result.ok) throw result.error;
    return result;
  };
  if (type !== 'query') return run();
  return readSlot(ctx.core).run(ctx, () => {
    if (signal?.aborted) throw new TRPCError({ code: 'CLIENT_CLOSED_REQUEST', message: 'The client has gone' });
    return run();
  });
});

export const publicProcedure = t.procedure.use(base);

/**
 * Identity from the headers, with a user behind it (USER_NOT_FOUND otherwise, on every
 * procedure); every mutation also counts toward the user's rate limit (queue.enter toward a
 * tighter one of its own).
 */
export async function identify(ctx: Context, type: 'query' | 'mutation' | 'subscription', path: string): Promise<number> {
  const userId = await resolveUserId(ctx.core.config.auth, ctx.headers);
  ctx.info.userId = userId;
  await ctx.core.users.assertExists(userId);
  if (type === 'mutation') await ctx.core.rateLimits.check(path === 'queue.enter' ? 'queue.enter' : 'mutation', String(userId));
  return userId;
}

export const identifiedProcedure = publicProcedure.use(async ({ ctx, type, path, next }) => next({ ctx: { userId: await identify(ctx, type, path) } }));

/** Booking steps: the caller's queue token must be ACTIVE for the concert concerned (checked by the service once it knows the concert). */
export const gateOf = (ctx: Pick<Context, 'core' | 'headers'>, userId: number): QueueGate => ctx.core.queue.gate(userId, ctx.headers.queueToken);
export const activeQueueProcedure = identifiedProcedure.use(async ({ ctx, next }) => next({ ctx: { gate: gateOf(ctx, ctx.userId) } }));

/** What an identified procedure's resolver sees of the context (and a gated one's, with the gate). */
export type IdentifiedContext = Pick<Context, 'core' | 'headers'> & { userId: number };
export type GatedContext = IdentifiedContext & { gate: QueueGate };

/**
 * A hot procedure's input parser and resolver, kept apart from the router so that the fast path
 * can call it without tRPC's middleware chain (single-call.ts) while the router builds the
 * procedure from the same two: `gated` procedures are the activeQueueProcedure's, the others
 * the identifiedProcedure's.
 */
export interface DirectProcedure<S extends ZodType = ZodType, O = unknown> {
  input: S;
  gated: boolean;
  /** Method syntax: a gated procedure's resolver is given the gate (see `gated` below). */
  resolve(ctx: IdentifiedContext & { gate?: QueueGate }, input: output<S>): Promise<O>;
}
export const identified = <S extends ZodType, O>(input: S, resolve: (ctx: IdentifiedContext, input: output<S>) => Promise<O>) => ({ input, gated: false, resolve }) satisfies DirectProcedure<S, O>;
export const gated = <S extends ZodType, O>(input: S, resolve: (ctx: GatedContext, input: output<S>) => Promise<O>) => ({ input, gated: true, resolve }) satisfies DirectProcedure<S, O>;

export const adminProcedure = publicProcedure.use(async ({ ctx, next }) => {
  if (!adminKeyMatches(ctx.headers.adminKey, ctx.core.config.adminApiKey)) appFail('ADMIN_KEY_INVALID', 'Send a valid x-admin-key header');
  return next();
});

