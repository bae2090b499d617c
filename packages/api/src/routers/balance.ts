import type { TRPCRouterRecord } from '@trpc/server';
import { ZChargeInput, ZEmpty, ZHistoryInput } from '@concert/core';
import { identifiedProcedure } from '../trpc.ts';

export const balanceRouter = {
  get: identifiedProcedure.input(ZEmpty).query(({ ctx }) => ctx.core.balance.get(ctx.userId)),
  charge: identifiedProcedure.input(ZChargeInput).mutation(({ ctx, input }) => ctx.core.balance.charge(ctx.userId, input)),
  history: identifiedProcedure.input(ZHistoryInput).query(({ ctx, input }) => ctx.core.balance.history(ctx.userId, input)),
} satisfies TRPCRouterRecord;
