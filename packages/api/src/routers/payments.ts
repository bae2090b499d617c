import type { TRPCRouterRecord } from '@trpc/server';
import { ZPayInput } from '@concert/core';
import { activeQueueProcedure } from '../trpc.ts';

export const paymentsRouter = {
  // The gate is consulted by the service after an idempotent replay has had its chance.
  pay: activeQueueProcedure.input(ZPayInput).mutation(({ ctx, input }) => ctx.core.payments.pay(ctx.userId, input, ctx.gate)),
} satisfies TRPCRouterRecord;
