import type { TRPCRouterRecord } from '@trpc/server';
import { ZConcertIdInput, ZCreateConcertInput, ZCreateUserInput, ZEmpty, ZHoldsListInput, ZQueueConfigureInput, ZReservationIdInput } from '@concert/core';
import { adminProcedure } from '../trpc.ts';

export const adminRouter = {
  users: {
    create: adminProcedure.input(ZCreateUserInput).mutation(({ ctx, input }) => ctx.core.admin.createUser(input)),
  },
  concerts: {
    create: adminProcedure.input(ZCreateConcertInput).mutation(({ ctx, input }) => ctx.core.concerts.create(input)),
  },
  seedDemo: adminProcedure.input(ZEmpty).mutation(({ ctx }) => ctx.core.admin.seedDemo()),
  holds: {
    list: adminProcedure.input(ZHoldsListInput).query(({ ctx, input }) => ctx.core.reservations.listHolds(input)),
    release: adminProcedure.input(ZReservationIdInput).mutation(({ ctx, input }) => ctx.core.reservations.cancel(input.reservationId)),
  },
  queue: {
    stats: adminProcedure.input(ZConcertIdInput).query(({ ctx, input }) => ctx.core.queue.stats(input.concertId)),
    configure: adminProcedure.input(ZQueueConfigureInput).mutation(({ ctx, input }) => ctx.core.queue.configure(input)),
  },
  audit: adminProcedure.input(ZEmpty).query(({ ctx }) => ctx.core.admin.audit()),
} satisfies TRPCRouterRecord;
