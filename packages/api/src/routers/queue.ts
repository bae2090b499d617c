import type { TRPCRouterRecord } from '@trpc/server';
import { ZEmpty, ZQueueEnterInput } from '@concert/core';
import { identified, identifiedProcedure } from '../trpc.ts';

/** The fast path calls these directly (single-call.ts). */
export const queueEnter = identified(ZQueueEnterInput, (ctx, input) => ctx.core.queue.enter(ctx.userId, input.concertId));
export const queueStatus = identified(ZEmpty, (ctx) => ctx.core.queue.status(ctx.userId, ctx.headers.queueToken));

export const queueRouter = {
  enter: identifiedProcedure.input(queueEnter.input).mutation(({ ctx, input }) => queueEnter.resolve(ctx, input)),
  status: identifiedProcedure.input(queueStatus.input).query(({ ctx, input }) => queueStatus.resolve(ctx, input)),
  leave: identifiedProcedure.input(ZEmpty).mutation(({ ctx }) => ctx.core.queue.leave(ctx.userId, ctx.headers.queueToken)),
} satisfies TRPCRouterRecord;
