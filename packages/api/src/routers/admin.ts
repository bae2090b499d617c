import type { TRPCRouterRecord } from '@trpc/server';
import {
  ZConcertIdInput,
  ZConcertUpdateInput,
  ZCreateConcertInput,
  ZCreateUserInput,
  ZEmpty,
  ZHoldsListInput,
  ZPageInput,
  ZQueueConfigureInput,
  ZReservationIdInput,
  ZScheduleIdInput,
  ZWebhookCreateInput,
  ZWebhookDeliveriesInput,
  ZWebhookIdInput,
} from '@concert/core';
import { adminProcedure } from '../trpc.ts';

export const adminRouter = {
  users: {
    create: adminProcedure.input(ZCreateUserInput).mutation(({ ctx, input }) => ctx.core.admin.createUser(input)),
  },
  concerts: {
    create: adminProcedure.input(ZCreateConcertInput).mutation(({ ctx, input }) => ctx.core.concerts.create(input)),
    list: adminProcedure.input(ZPageInput).query(({ ctx, input }) => ctx.core.catalog.list(input)),
    update: adminProcedure.input(ZConcertUpdateInput).mutation(({ ctx, input }) => ctx.core.catalog.update(input)),
  },
  schedules: {
    cancel: adminProcedure.input(ZScheduleIdInput).mutation(({ ctx, input }) => ctx.core.schedules.cancel(input.scheduleId)),
  },
  reservations: {
    refund: adminProcedure.input(ZReservationIdInput).mutation(({ ctx, input }) => ctx.core.refunds.adminRefund(input.reservationId)),
  },
  webhooks: {
    create: adminProcedure.input(ZWebhookCreateInput).mutation(({ ctx, input }) => ctx.core.webhooks.create(input)),
    list: adminProcedure.input(ZEmpty).query(({ ctx }) => ctx.core.webhooks.list()),
    delete: adminProcedure.input(ZWebhookIdInput).mutation(({ ctx, input }) => ctx.core.webhooks.delete(input.webhookId)),
    deliveries: adminProcedure.input(ZWebhookDeliveriesInput).query(({ ctx, input }) => ctx.core.webhooks.deliveries(input)),
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
  /** One snapshot of a sale for `concert admin watch`: the line, admissions per minute, seats per show. */
  watch: adminProcedure.input(ZConcertIdInput).query(({ ctx, input }) => ctx.core.watch.sale(input.concertId)),
  audit: adminProcedure.input(ZEmpty).query(({ ctx }) => ctx.core.admin.audit()),
} satisfies TRPCRouterRecord;
