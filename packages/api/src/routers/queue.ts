import type { TRPCRouterRecord } from '@trpc/server';
import { ZEmpty, ZQueueEnterInput } from '@concert/core';
import type { Context } from '../context.ts';
import { identifiedProcedure } from '../trpc.ts';

/** queue.status's input and resolver, shared with the fast path's direct call (single-call.ts). */
export const queueStatus = {
  input: ZEmpty,
  resolve: (ctx: Pick<Context, 'core' | 'headers'> & { userId: number }) => ctx.core.queue.status(ctx.userId, ctx.headers.queueToken),
};

export const queueRouter = {
  enter: identifiedProcedure.input(ZQueueEnterInput).mutation(({ ctx, input }) => ctx.core.queue.enter(ctx.userId, input.concertId)),
  status: identifiedProcedure.input(queueStatus.input).query(({ ctx }) => queueStatus.resolve(ctx)),
  leave: identifiedProcedure.input(ZEmpty).mutation(({ ctx }) => ctx.core.queue.leave(ctx.userId, ctx.headers.queueToken)),
} satisfies TRPCRouterRecord;
