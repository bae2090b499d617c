import type { TRPCRouterRecord } from '@trpc/server';
import { ZPayInput } from '@concert/core';
import { activeQueueProcedure, gated } from '../trpc.ts';

/** The fast path calls this directly (single-call.ts). The gate is consulted by the service after an idempotent replay has had its chance. */
export const paymentsPay = gated(ZPayInput, (ctx, input) => ctx.core.payments.pay(ctx.userId, input, ctx.gate));

export const paymentsRouter = {
  pay: activeQueueProcedure.input(paymentsPay.input).mutation(({ ctx, input }) => paymentsPay.resolve(ctx, input)),
} satisfies TRPCRouterRecord;
