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
export type {
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
  PaymentResult,
  Reservation,
  ReservationStatus,
  Schedule,
  SeatMap,
  SeatStatus,
} from '@concert/core';

/** Every procedure's input, by path: `RouterInputs['reservations']['hold']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** Every procedure's output, by path: `RouterOutputs['concerts']['seats']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;
