/**
 * What a frontend imports from `@concert/api`: types only. The published package is this file's
 * declarations bundled into one self-contained `index.d.ts` (core's types inlined, only
 * `@trpc/server` referred to), so a client installs it next to `@trpc/client`, `@trpc/server`
 * and `superjson` and nothing of the server comes along.
 */
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from './routers/index.ts';

export type { AppRouter } from './routers/index.ts';
export type { AppErrorShape } from './errors.ts';
// Every named type a procedure's input or output reaches: a frontend with `declaration` on (tsc
// --init's default) must be able to name what its exported functions return (TS4058 otherwise;
// the pack test checks that the bundle declares no type it does not export).
export type {
  AdminConcert,
  AppCode,
  AuditReport,
  Balance,
  ChargeResult,
  ConcertDetail,
  ConcertSummary,
  CreatedConcert,
  History,
  HoldSummary,
  LedgerEntry,
  LineState,
  Page,
  PaymentResult,
  QueueStatsView,
  QueueTicket,
  QueueWatchView,
  Reservation,
  ReservationStatus,
  SaleWatch,
  Schedule,
  ScheduleCancelResult,
  SeatMap,
  SeatStatus,
  TicketStatus,
  WaitlistEntry,
  Webhook,
  WebhookDelivery,
  WebhookEventType,
} from '@concert/core';

/** Every procedure's input, by path: `RouterInputs['reservations']['hold']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** Every procedure's output, by path: `RouterOutputs['concerts']['seats']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;
