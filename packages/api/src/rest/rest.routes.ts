import type { AnyProcedure, inferProcedureOutput } from '@trpc/server';
import type { z } from 'zod';
import type { AppRouter } from '../router.ts';
import * as out from './rest.schemas.ts';

/**
 * The contract's REST table: each operation names the tRPC procedure that implements it, and
 * only says what REST adds (method, path, success status, the documented answer). Input
 * validation, identity, the queue gate, idempotency and errors are the procedure's own.
 */

type FlatProcedures<T, P extends string = ''> = {
  [K in keyof T & string]: T[K] extends AnyProcedure
    ? { [Q in `${P}${K}`]: T[K] }
    : T[K] extends { _def: { record: infer R } }
      ? FlatProcedures<R, `${P}${K}.`>
      : FlatProcedures<T[K], `${P}${K}.`>;
}[keyof T & string];
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type ProcedureByPath = UnionToIntersection<FlatProcedures<AppRouter['_def']['record']>>;
type OutputByPath = { [P in keyof ProcedureByPath]: inferProcedureOutput<ProcedureByPath[P]> };
export type ProcedurePath = keyof OutputByPath & string;

/** A value as JSON.stringify sends it. */
export type Json<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { -readonly [K in keyof T]: Json<T[K]> }
      : T;
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Simplify<T> = T extends readonly (infer U)[] ? Simplify<U>[] : T extends object ? { [K in keyof T]: Simplify<T[K]> } : T;

/** Who may call: the contract's Auth column, `token` meaning identity plus x-queue-token. */
export type RestAuth = 'public' | 'id' | 'id+token' | 'id+active';

export interface RestRoute {
  method: 'GET' | 'POST' | 'DELETE';
  /** OpenAPI path template, `{name}` for a path parameter. */
  path: string;
  procedure: ProcedurePath;
  operationId: string;
  summary: string;
  tag: 'catalog' | 'queue' | 'reservations' | 'payments' | 'balance' | 'waitlist';
  auth: RestAuth;
  /** When the queue token is not needed after all (the document then marks it optional and says when). */
  tokenOptional?: string;
  status: 200 | 201;
  response: z.ZodType;
}

function route<P extends ProcedurePath, S extends z.ZodType>(
  r: Omit<RestRoute, 'procedure' | 'response'> & { procedure: P; response: S },
  // Compile-time proof that the documented answer is exactly what the procedure sends.
  ..._exact: Equals<Simplify<z.output<S>>, Simplify<Json<OutputByPath[P]>>> extends true ? [] : [`${P}: the response schema differs from the procedure's output`]
): RestRoute {
  return r;
}

export const REST_ROUTES: readonly RestRoute[] = [
  route({ method: 'GET', path: '/v1/concerts', procedure: 'concerts.list', operationId: 'listConcerts', summary: 'The concerts, in the order they were added, paged', tag: 'catalog', auth: 'public', status: 200, response: out.ZConcertListOut }),
  route({ method: 'GET', path: '/v1/concerts/{concertId}', procedure: 'concerts.get', operationId: 'getConcert', summary: 'A concert with its bookable schedules', tag: 'catalog', auth: 'public', status: 200, response: out.ZConcertOut }),
  route({ method: 'GET', path: '/v1/concerts/{concertId}/schedules', procedure: 'concerts.schedules', operationId: 'listSchedules', summary: "A concert's schedules (only those with a free seat unless includeSoldOut)", tag: 'catalog', auth: 'public', status: 200, response: out.ZSchedulesOut }),
  route({ method: 'GET', path: '/v1/schedules/{scheduleId}', procedure: 'concerts.schedule', operationId: 'getSchedule', summary: 'One schedule', tag: 'catalog', auth: 'public', status: 200, response: out.ZScheduleOut }),
  route({ method: 'GET', path: '/v1/schedules/{scheduleId}/seats', procedure: 'concerts.seats', operationId: 'getSeatMap', summary: 'The seat map (needs an ACTIVE queue token for the concert)', tag: 'catalog', auth: 'id+active', status: 200, response: out.ZSeatMapOut }),
  route({ method: 'POST', path: '/v1/concerts/{concertId}/queue', procedure: 'queue.enter', operationId: 'enterQueue', summary: "Take a place in the concert's waiting room (again: the same ticket)", tag: 'queue', auth: 'id', status: 201, response: out.ZQueueTicketOut }),
  route({ method: 'GET', path: '/v1/queue/status', procedure: 'queue.status', operationId: 'getQueueStatus', summary: 'Where the queue token stands; poll again after pollAfterMs', tag: 'queue', auth: 'id+token', status: 200, response: out.ZQueueTicketOut }),
  route({ method: 'DELETE', path: '/v1/queue', procedure: 'queue.leave', operationId: 'leaveQueue', summary: 'Leave the waiting room (frees an ACTIVE slot)', tag: 'queue', auth: 'id+token', status: 200, response: out.ZQueueLeftOut }),
  route({ method: 'POST', path: '/v1/reservations', procedure: 'reservations.hold', operationId: 'holdSeats', summary: 'Hold 1 to 4 seats for HOLD_TTL_SECONDS, or until the show starts if sooner (all or none)', tag: 'reservations', auth: 'id+active', status: 201, response: out.ZReservationOut }),
  route({ method: 'GET', path: '/v1/reservations', procedure: 'reservations.mine', operationId: 'listMyReservations', summary: 'My reservations, newest first, paged', tag: 'reservations', auth: 'id', status: 200, response: out.ZReservationListOut }),
  route({ method: 'GET', path: '/v1/reservations/{reservationId}', procedure: 'reservations.get', operationId: 'getReservation', summary: 'One of my reservations', tag: 'reservations', auth: 'id', status: 200, response: out.ZReservationOut }),
  route({ method: 'POST', path: '/v1/reservations/{reservationId}/cancel', procedure: 'reservations.cancel', operationId: 'cancelReservation', summary: 'Cancel a hold: its seats are free at once', tag: 'reservations', auth: 'id', status: 200, response: out.ZReservationOut }),
  route({ method: 'POST', path: '/v1/reservations/{reservationId}/refund', procedure: 'reservations.refund', operationId: 'refundReservation', summary: 'Refund a paid reservation to the balance (until REFUND_CUTOFF_HOURS before the show)', tag: 'reservations', auth: 'id', status: 200, response: out.ZReservationOut }),
  route({ method: 'POST', path: '/v1/payments', procedure: 'payments.pay', operationId: 'pay', summary: 'Pay a held reservation from the balance', tag: 'payments', auth: 'id+active', tokenOptional: 'needed unless the reservation is a waitlist offer (source WAITLIST): the offer is its own admission', status: 201, response: out.ZPaymentOut }),
  route({ method: 'GET', path: '/v1/balance', procedure: 'balance.get', operationId: 'getBalance', summary: 'My prepaid balance', tag: 'balance', auth: 'id', status: 200, response: out.ZBalanceOut }),
  route({ method: 'POST', path: '/v1/balance/charges', procedure: 'balance.charge', operationId: 'chargeBalance', summary: 'Add money to my balance', tag: 'balance', auth: 'id', status: 201, response: out.ZChargeOut }),
  route({ method: 'GET', path: '/v1/balance/history', procedure: 'balance.history', operationId: 'getBalanceHistory', summary: 'My ledger, newest first, paged', tag: 'balance', auth: 'id', status: 200, response: out.ZHistoryOut }),
  route({ method: 'POST', path: '/v1/schedules/{scheduleId}/waitlist', procedure: 'waitlist.join', operationId: 'joinWaitlist', summary: 'Wait for seats of a sold-out show (again: the same entry)', tag: 'waitlist', auth: 'id', status: 201, response: out.ZWaitlistEntryOut }),
  route({ method: 'GET', path: '/v1/waitlist', procedure: 'waitlist.mine', operationId: 'listMyWaitlist', summary: 'My waitlist entries and their offers, paged', tag: 'waitlist', auth: 'id', status: 200, response: out.ZWaitlistPageOut }),
  route({ method: 'DELETE', path: '/v1/waitlist/{entryId}', procedure: 'waitlist.leave', operationId: 'leaveWaitlist', summary: 'Leave a waitlist', tag: 'waitlist', auth: 'id', status: 200, response: out.ZWaitlistEntryOut }),
];
