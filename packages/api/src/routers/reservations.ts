import type { TRPCRouterRecord } from '@trpc/server';
import { ZHoldInput, ZMineInput, ZRefundInput, ZReservationIdInput } from '@concert/core';
import { activeQueueProcedure, gated, identifiedProcedure } from '../trpc.ts';

/** The fast path calls this directly (single-call.ts). */
export const reservationsHold = gated(ZHoldInput, (ctx, input) => ctx.core.reservations.hold(ctx.userId, input, ctx.gate));

export const reservationsRouter = {
  hold: activeQueueProcedure.input(reservationsHold.input).mutation(({ ctx, input }) => reservationsHold.resolve(ctx, input)),
  get: identifiedProcedure.input(ZReservationIdInput).query(({ ctx, input }) => ctx.core.reservations.get(ctx.userId, input.reservationId)),
  mine: identifiedProcedure.input(ZMineInput).query(({ ctx, input }) => ctx.core.reservations.mine(ctx.userId, input)),
  cancel: identifiedProcedure
    .input(ZReservationIdInput)
    .mutation(({ ctx, input }) => ctx.core.reservations.cancel(input.reservationId, ctx.userId)),
  refund: identifiedProcedure.input(ZRefundInput).mutation(({ ctx, input }) => ctx.core.refunds.refund(ctx.userId, input)),
} satisfies TRPCRouterRecord;
