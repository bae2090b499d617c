import { APP_CODES, RESERVATION_STATUSES } from '@concert/core';
import { z } from 'zod';

/**
 * What the REST operations answer, as JSON carries it (dates are ISO 8601 strings). These
 * describe outputs only, for the OpenAPI document: inputs are the procedures' own schemas.
 * rest.routes.ts checks at compile time that each one is exactly the JSON form of its
 * procedure's return type, so a field added to a service without a line here fails to compile.
 */

const ZDate = z.iso.datetime({ offset: true }).meta({ description: 'ISO 8601 date-time', example: '2026-12-24T19:00:00.000Z' });
const ZWon = z.number().int().meta({ description: 'an amount in won' });

export const ZScheduleOut = z
  .object({
    scheduleId: z.number().int(),
    concertId: z.number().int(),
    startsAt: ZDate,
    bookingOpensAt: ZDate,
    totalSeats: z.number().int(),
    availableSeats: z.number().int(),
  })
  .meta({ id: 'Schedule' });

export const ZConcertSummaryOut = z
  .object({ concertId: z.number().int(), title: z.string(), venue: z.string(), scheduleCount: z.number().int() })
  .meta({ id: 'ConcertSummary' });

const ZNextCursor = z
  .string()
  .nullable()
  .meta({ description: 'pass it as `cursor` for the next page; null on the last page' });

export const ZConcertListOut = z.object({ items: z.array(ZConcertSummaryOut), nextCursor: ZNextCursor }).meta({ id: 'ConcertPage' });

export const ZConcertOut = z
  .object({ concertId: z.number().int(), title: z.string(), venue: z.string(), schedules: z.array(ZScheduleOut) })
  .meta({ id: 'Concert' });

export const ZSchedulesOut = z.object({ concertId: z.number().int(), schedules: z.array(ZScheduleOut) }).meta({ id: 'ConcertSchedules' });

export const ZSeatMapOut = z
  .object({
    concertId: z.number().int(),
    scheduleId: z.number().int(),
    startsAt: ZDate,
    seats: z.array(
      z.object({ seatNumber: z.number().int(), grade: z.string(), price: ZWon, status: z.enum(['AVAILABLE', 'HELD', 'SOLD']) }),
    ),
  })
  .meta({ id: 'SeatMap' });

export const ZQueueTicketOut = z
  .object({
    token: z.string().meta({ description: 'send it as x-queue-token on booking steps' }),
    concertId: z.number().int(),
    status: z.enum(['PRE_QUEUE', 'WAITING', 'ACTIVE', 'EXPIRED', 'SOLD_OUT']),
    position: z.number().int().nullable().meta({ description: '1-based among those waiting; null unless WAITING' }),
    aheadCount: z.number().int(),
    etaSeconds: z.number().nullable().meta({ description: 'expected wait (to a tenth of a second) while WAITING; seconds to the opening while PRE_QUEUE' }),
    paused: z.boolean().meta({ description: 'an operator paused admission: the place is kept, nobody is let in until it resumes' }),
    enteredAt: ZDate,
    opensAt: ZDate.nullable().meta({ description: 'when the line opens (pre-queue); null when open' }),
    activeUntil: ZDate.nullable(),
    pollAfterMs: z.number().int().meta({ description: 'ask again after this many milliseconds' }),
  })
  .meta({ id: 'QueueTicket' });

export const ZQueueLeftOut = z.object({ left: z.literal(true) });

export const ZReservationOut = z
  .object({
    reservationId: z.uuid(),
    concertId: z.number().int(),
    concertTitle: z.string(),
    scheduleId: z.number().int(),
    startsAt: ZDate,
    seats: z.array(z.object({ seatNumber: z.number().int(), grade: z.string(), price: ZWon })),
    totalPrice: ZWon,
    status: z.enum(RESERVATION_STATUSES),
    source: z.enum(['QUEUE', 'WAITLIST']).meta({ description: 'WAITLIST: a waitlist offer, paid without a queue token' }),
    holdExpiresAt: ZDate,
    createdAt: ZDate,
    paidAt: ZDate.nullable(),
    refundedAt: ZDate.nullable(),
  })
  .meta({ id: 'Reservation' });

export const ZReservationListOut = z.object({ items: z.array(ZReservationOut), nextCursor: ZNextCursor }).meta({ id: 'ReservationPage' });

export const ZBalanceOut = z.object({ userId: z.number().int(), balance: ZWon, updatedAt: ZDate }).meta({ id: 'Balance' });

export const ZChargeOut = z
  .object({ userId: z.number().int(), charged: ZWon, balance: ZWon, chargedAt: ZDate })
  .meta({ id: 'Charge' });

export const ZHistoryOut = z
  .object({
    entries: z.array(
      z.object({
        entryId: z.number().int(),
        kind: z.enum(['CHARGE', 'PAYMENT', 'REFUND']),
        amount: ZWon.meta({ description: 'signed: a payment is negative' }),
        balanceAfter: ZWon,
        reservationId: z.uuid().nullable(),
        createdAt: ZDate,
      }),
    ),
    nextCursor: ZNextCursor,
  })
  .meta({ id: 'BalanceHistory' });

export const ZPaymentOut = z
  .object({
    paymentId: z.uuid(),
    reservationId: z.uuid(),
    amount: ZWon,
    status: z.literal('COMPLETED'),
    paidAt: ZDate,
    balanceBefore: ZWon,
    balanceAfter: ZWon,
    queueTokenExpired: z.boolean(),
  })
  .meta({ id: 'Payment' });

export const ZWaitlistEntryOut = z
  .object({
    entryId: z.number().int(),
    scheduleId: z.number().int(),
    seatCount: z.number().int(),
    status: z.enum(['WAITING', 'OFFERED', 'ACCEPTED', 'LAPSED', 'LEFT']),
    position: z.number().int().nullable().meta({ description: '1-based among those waiting for the show; null unless WAITING' }),
    offer: z
      .object({ reservationId: z.uuid(), seatNumbers: z.array(z.number().int()), expiresAt: ZDate })
      .nullable()
      .meta({ description: 'seats held for you (a WAITLIST reservation): pay it before expiresAt, no queue token needed' }),
    createdAt: ZDate,
  })
  .meta({ id: 'WaitlistEntry' });

export const ZWaitlistPageOut = z.object({ items: z.array(ZWaitlistEntryOut), nextCursor: ZNextCursor }).meta({ id: 'WaitlistPage' });

/** RFC 9457 problem details, with the contract's appCode (and zod's issues for INVALID_INPUT). */
export const ZProblem = z
  .object({
    type: z.string().meta({ description: 'a URI naming the kind of problem: urn:concert:problem:<appCode>' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    appCode: z.enum(APP_CODES),
    issues: z
      .array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string(), code: z.string() }).loose())
      .optional()
      .meta({ description: 'what was wrong with the input, field by field (INVALID_INPUT only; the first 20)' }),
    issuesOmitted: z.number().int().optional().meta({ description: 'how many issues past the first 20 were left out' }),
    details: z
      .record(z.string(), z.unknown())
      .optional()
      .meta({
        description:
          "what the error is about, as tRPC's data.details: seatNumbers (SEAT_UNAVAILABLE), credential: 'identity' (TOKEN_EXPIRED, TOKEN_INVALID of the identity token; the queue token's carry none), bookingOpensAt, limit and owned (TICKET_LIMIT_EXCEEDED), retryAfterMs (RATE_LIMITED), lineState (QUEUE_NOT_ACTIVE)…",
      }),
  })
  .meta({ id: 'Problem' });
