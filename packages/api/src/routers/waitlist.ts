import type { TRPCRouterRecord } from '@trpc/server';
import { ZPageInput, ZWaitlistEntryIdInput, ZWaitlistJoinInput } from '@concert/core';
import { identifiedProcedure } from '../trpc.ts';

export const waitlistRouter = {
  join: identifiedProcedure.input(ZWaitlistJoinInput).mutation(({ ctx, input }) => ctx.core.waitlist.join(ctx.userId, input)),
  leave: identifiedProcedure.input(ZWaitlistEntryIdInput).mutation(({ ctx, input }) => ctx.core.waitlist.leave(ctx.userId, input.entryId)),
  mine: identifiedProcedure.input(ZPageInput).query(({ ctx, input }) => ctx.core.waitlist.mine(ctx.userId, input)),
} satisfies TRPCRouterRecord;
