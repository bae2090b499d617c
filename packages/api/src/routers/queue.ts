import type { TRPCRouterRecord } from '@trpc/server';
import { ZEmpty, ZQueueEnterInput } from '@concert/core';
import { identifiedProcedure } from '../trpc.ts';

export const queueRouter = {
  enter: identifiedProcedure.input(ZQueueEnterInput).mutation(({ ctx, input }) => ctx.core.queue.enter(ctx.userId, input.concertId)),
  status: identifiedProcedure.input(ZEmpty).query(({ ctx }) => ctx.core.queue.status(ctx.userId, ctx.headers.queueToken)),
  leave: identifiedProcedure.input(ZEmpty).mutation(({ ctx }) => ctx.core.queue.leave(ctx.userId, ctx.headers.queueToken)),
} satisfies TRPCRouterRecord;
