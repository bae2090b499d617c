import type { TRPCRouterRecord } from '@trpc/server';
import { ZConcertIdInput, ZPageInput, ZScheduleIdInput, ZSchedulesInput } from '@concert/core';
import { activeQueueProcedure, gated, publicProcedure } from '../trpc.ts';

/** The fast path calls this directly (single-call.ts). */
export const concertSeats = gated(ZScheduleIdInput, (ctx, input) => ctx.core.concerts.seats(input.scheduleId, ctx.gate));

export const concertsRouter = {
  list: publicProcedure.input(ZPageInput).query(({ ctx, input }) => ctx.core.concerts.list(input)),
  get: publicProcedure.input(ZConcertIdInput).query(({ ctx, input }) => ctx.core.concerts.get(input.concertId)),
  schedules: publicProcedure
    .input(ZSchedulesInput)
    .query(({ ctx, input }) => ctx.core.concerts.schedules(input.concertId, input.includeSoldOut)),
  schedule: publicProcedure.input(ZScheduleIdInput).query(({ ctx, input }) => ctx.core.concerts.schedule(input.scheduleId)),
  seats: activeQueueProcedure.input(concertSeats.input).query(({ ctx, input }) => concertSeats.resolve(ctx, input)),
} satisfies TRPCRouterRecord;
