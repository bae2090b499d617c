import type { AppCode } from '@concert/core';
import type { ProcedurePath } from '../packages/api/src/rest/rest.routes.ts';

/**
 * The hand-written half of docs/API.md: what a procedure is for, who may call it, the errors of
 * its own and an example input. The other half (inputs, outputs, constraints, REST routes, the
 * error table) is read from the routers themselves by scripts/api-reference.ts.
 *
 * Both records are total: a new procedure or appCode without an entry here fails to compile, and
 * packages/api/test/api-reference.test.ts checks every `auth` against the running server and
 * every example against the procedure's input schema.
 */

/** `-` public; `id` identity; `id+token` identity and any live x-queue-token; `id+active` identity and an ACTIVE token for the concert concerned; `admin` x-admin-key. */
export type Auth = '-' | 'id' | 'id+token' | 'id+active' | 'admin';

export interface Entry {
  auth: Auth;
  summary: string;
  /** Errors of this procedure's own, besides those of its auth level and those every procedure may answer. */
  errors: AppCode[];
  /** A valid input (checked by the test against the procedure's schema). */
  example: unknown;
}

const RID = '7f9c2e4a-1b3d-4c5e-8f60-123456789abc';

export const ENTRIES: Record<ProcedurePath, Entry> = {
  'concerts.list': { auth: '-', summary: 'The concerts on sale, paged.', errors: [], example: { limit: 20 } },
  'concerts.get': { auth: '-', summary: 'One concert with its bookable schedules.', errors: ['CONCERT_NOT_FOUND'], example: { concertId: 1 } },
  'concerts.schedules': {
    auth: '-',
    summary: "A concert's schedules: only those with an AVAILABLE seat unless `includeSoldOut`.",
    errors: ['CONCERT_NOT_FOUND'],
    example: { concertId: 1, includeSoldOut: true },
  },
  'concerts.schedule': { auth: '-', summary: 'One schedule with its seat counts.', errors: ['SCHEDULE_NOT_FOUND'], example: { scheduleId: 1 } },
  'concerts.seats': {
    auth: 'id+active',
    summary: 'The seat map of a schedule. A lapsed or cancelled hold reads AVAILABLE at once.',
    errors: ['SCHEDULE_NOT_FOUND'],
    example: { scheduleId: 1 },
  },
  'queue.enter': {
    auth: 'id',
    summary: "Take a place in the concert's waiting room. Entering again while a ticket is live returns that ticket; a sold-out line answers a SOLD_OUT ticket.",
    errors: ['CONCERT_NOT_FOUND'],
    example: { concertId: 1 },
  },
  'queue.status': {
    auth: 'id+token',
    summary: 'Where the token stands (position, ETA, when to poll again). Polling keeps a waiting ticket alive.',
    errors: ['TOKEN_EXPIRED'],
    example: {},
  },
  'queue.leave': { auth: 'id+token', summary: 'Leave the line; an ACTIVE slot goes to the head of the line at once.', errors: [], example: {} },
  'reservations.hold': {
    auth: 'id+active',
    summary: 'Hold 1 to 4 seats of one schedule for HOLD_TTL_SECONDS (or until the show starts, if sooner), all or none.',
    errors: [
      'SCHEDULE_NOT_FOUND',
      'SEAT_NOT_FOUND',
      'SEAT_UNAVAILABLE',
      'TICKET_LIMIT_EXCEEDED',
      'BOOKING_NOT_OPEN',
      'BOOKING_CLOSED',
      'SCHEDULE_CANCELLED',
      'IDEMPOTENCY_KEY_REUSED',
      'IDEMPOTENCY_IN_PROGRESS',
    ],
    example: { scheduleId: 1, seatNumbers: [12, 13], idempotencyKey: 'hold-0001' },
  },
  'reservations.get': { auth: 'id', summary: 'One of my reservations (anyone else’s reads as not found).', errors: ['RESERVATION_NOT_FOUND'], example: { reservationId: RID } },
  'reservations.mine': { auth: 'id', summary: 'My reservations, newest first, optionally of one status.', errors: [], example: { status: 'PAID' } },
  'reservations.cancel': {
    auth: 'id',
    summary: 'Cancel my hold: its seats are AVAILABLE at once (offered to the waitlist first).',
    errors: ['RESERVATION_NOT_FOUND', 'ALREADY_PAID', 'HOLD_EXPIRED'],
    example: { reservationId: RID },
  },
  'reservations.refund': {
    auth: 'id',
    summary: 'Refund my paid reservation to my balance, until REFUND_CUTOFF_HOURS before the show.',
    errors: ['RESERVATION_NOT_FOUND', 'NOT_REFUNDABLE', 'REFUND_WINDOW_CLOSED', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_IN_PROGRESS'],
    example: { reservationId: RID, idempotencyKey: 'refund-0001' },
  },
  'balance.get': { auth: 'id', summary: 'My prepaid balance.', errors: [], example: {} },
  'balance.charge': {
    auth: 'id',
    summary: 'Add money to my balance (at most CHARGE_MAX_PER_TX a charge, CHARGE_MONTHLY_LIMIT a calendar month).',
    errors: ['INVALID_AMOUNT', 'CHARGE_LIMIT_EXCEEDED', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_IN_PROGRESS'],
    example: { amount: 50_000, idempotencyKey: 'charge-0001' },
  },
  'balance.history': { auth: 'id', summary: 'My ledger, newest first, paged.', errors: [], example: { limit: 20 } },
  'payments.pay': {
    auth: 'id+active',
    summary:
      'Pay my held reservation from my balance; expires the queue token that paid. A waitlist offer (source WAITLIST) is paid without a queue token; a replay with the same key answers the first payment.',
    errors: ['RESERVATION_NOT_FOUND', 'INSUFFICIENT_BALANCE', 'HOLD_EXPIRED', 'ALREADY_PAID', 'RESERVATION_CANCELLED', 'SCHEDULE_CANCELLED', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_IN_PROGRESS'],
    example: { reservationId: RID, idempotencyKey: 'pay-0001' },
  },
  'waitlist.join': {
    auth: 'id',
    summary: 'Wait for seats of a show with none AVAILABLE; joining again returns the live entry.',
    errors: ['SCHEDULE_NOT_FOUND', 'SEATS_AVAILABLE', 'TICKET_LIMIT_EXCEEDED', 'SCHEDULE_CANCELLED', 'BOOKING_NOT_OPEN', 'BOOKING_CLOSED'],
    example: { scheduleId: 1, seatCount: 2 },
  },
  'waitlist.leave': { auth: 'id', summary: 'Leave a waitlist (an open offer is released).', errors: ['WAITLIST_ENTRY_NOT_FOUND'], example: { entryId: 1 } },
  'waitlist.mine': { auth: 'id', summary: 'My waitlist entries and their offers, paged.', errors: [], example: { limit: 20 } },
  'admin.users.create': { auth: 'admin', summary: 'Create a user with an opening balance.', errors: [], example: { name: 'Kim Min-ji', initialBalance: 300_000 } },
  'admin.concerts.create': {
    auth: 'admin',
    summary: 'Create a concert with its schedules, seats and price tiers (tiers cover every seat once, one price per grade; shows start in the future).',
    errors: [],
    example: {
      title: 'Winter Lights',
      venue: 'Olympic Hall',
      schedules: [
        {
          startsAt: '2027-03-01T19:00:00+09:00',
          seatCount: 40,
          tiers: [
            { grade: 'VIP', price: 180_000, fromSeat: 1, toSeat: 10 },
            { grade: 'R', price: 120_000, fromSeat: 11, toSeat: 40 },
          ],
        },
      ],
    },
  },
  'admin.concerts.list': { auth: 'admin', summary: 'Every concert with per-show seats available/held/sold and revenue, paged.', errors: [], example: { limit: 20 } },
  'admin.concerts.update': { auth: 'admin', summary: "Rename a concert or change its venue.", errors: ['CONCERT_NOT_FOUND'], example: { concertId: 1, title: 'Winter Lights (2nd night)' } },
  'admin.schedules.cancel': {
    auth: 'admin',
    summary: 'Cancel a show: every paid reservation refunded, every hold released, the show no longer bookable; safe to retry or race.',
    errors: ['SCHEDULE_NOT_FOUND'],
    example: { scheduleId: 1 },
  },
  'admin.reservations.refund': { auth: 'admin', summary: 'Refund a paid reservation, at any time.', errors: ['RESERVATION_NOT_FOUND', 'NOT_REFUNDABLE'], example: { reservationId: RID } },
  'admin.webhooks.create': {
    auth: 'admin',
    summary: 'Register a webhook endpoint; the signing secret is shown once. In production the URL must be https and public.',
    errors: [],
    example: { url: 'https://tickets.example.com/hooks', events: ['payment.completed', 'reservation.refunded'] },
  },
  'admin.webhooks.list': { auth: 'admin', summary: 'Registered endpoints, each with the delivery attempted last (the newest one when none has been tried): its event, status, HTTP answer and time.', errors: [], example: {} },
  'admin.webhooks.delete': { auth: 'admin', summary: 'Remove an endpoint.', errors: ['WEBHOOK_NOT_FOUND'], example: { webhookId: 1 } },
  'admin.webhooks.deliveries': { auth: 'admin', summary: "An endpoint's delivery attempts, newest first, paged (a removed endpoint's too, for their retention).", errors: ['WEBHOOK_NOT_FOUND'], example: { webhookId: 1 } },
  'admin.seedDemo': { auth: 'admin', summary: 'Create the demo concerts and users (idempotent).', errors: [], example: {} },
  'admin.holds.list': { auth: 'admin', summary: 'Live holds, soonest to lapse first, optionally of one concert or schedule.', errors: [], example: { concertId: 1 } },
  'admin.holds.release': { auth: 'admin', summary: 'Release a hold: CANCELLED, its seats free at once.', errors: ['RESERVATION_NOT_FOUND', 'ALREADY_PAID', 'HOLD_EXPIRED'], example: { reservationId: RID } },
  'admin.queue.stats': { auth: 'admin', summary: "A concert's line: its state, counts and settings.", errors: ['CONCERT_NOT_FOUND'], example: { concertId: 1 } },
  'admin.queue.configure': {
    auth: 'admin',
    summary: "Change a concert's line: size of the ACTIVE set, token lifetimes, pause/resume, the opening time of a pre-queue.",
    errors: ['CONCERT_NOT_FOUND'],
    example: { concertId: 1, maxActive: 200, paused: false },
  },
  'admin.watch': {
    auth: 'admin',
    summary: "One frame of `concert admin watch`: the line, admissions per minute, the ETA at the back, each show's seats and the holds about to lapse.",
    errors: ['CONCERT_NOT_FOUND'],
    example: { concertId: 1 },
  },
  'admin.audit': { auth: 'admin', summary: 'Check every invariant (no seat sold twice, balances equal ledgers, payments and refunds match, outbox complete).', errors: [], example: {} },
};

/** One line per appCode: when a client sees it and what to do. */
export const APP_CODE_MEANING: Record<AppCode, string> = {
  INVALID_INPUT: 'The input, path, method or body is malformed; `issues` names the fields. Fix the request.',
  INVALID_AMOUNT: 'A charge that is not a positive whole number of won.',
  CHARGE_LIMIT_EXCEEDED: "The charge is above CHARGE_MAX_PER_TX, or would take this calendar month's charges past CHARGE_MONTHLY_LIMIT.",
  IDENTITY_REQUIRED: 'No identity header (x-user-id in dev mode, a bearer JWT in jwt mode).',
  TOKEN_INVALID: 'A JWT or queue token that is missing, malformed, forged or for another user.',
  TOKEN_EXPIRED: 'The JWT or the queue token has expired (enter the line again).',
  ADMIN_KEY_INVALID: 'x-admin-key is missing or wrong.',
  INSUFFICIENT_BALANCE: 'The balance does not cover the reservation; charge first.',
  QUEUE_NOT_ACTIVE: 'The queue token is not ACTIVE (waiting, pre-queued or sold out; `details.lineState` says which phase the line is in); keep polling queue.status.',
  TOKEN_WRONG_CONCERT: 'The queue token is for another concert.',
  TICKET_LIMIT_EXCEEDED: 'More than 4 seats of one schedule held or owned by this user.',
  USER_NOT_FOUND: 'The identity has no user behind it.',
  CONCERT_NOT_FOUND: 'No such concert.',
  SCHEDULE_NOT_FOUND: 'No such schedule.',
  SEAT_NOT_FOUND: 'A seat number the schedule does not have.',
  RESERVATION_NOT_FOUND: 'No such reservation, or not yours.',
  WAITLIST_ENTRY_NOT_FOUND: 'No such waitlist entry, or not yours.',
  WEBHOOK_NOT_FOUND: 'No such webhook endpoint.',
  PROCEDURE_NOT_FOUND: 'No such procedure (or REST path).',
  SEAT_UNAVAILABLE: 'One of the seats is held or sold; nothing was held. `details.seatNumbers` names them.',
  ALREADY_PAID: 'The reservation is already paid.',
  IDEMPOTENCY_IN_PROGRESS: 'The first call with this key is still running; retry shortly with the same key.',
  SEATS_AVAILABLE: 'The show has AVAILABLE seats: book them instead of joining the waitlist.',
  HOLD_EXPIRED: 'The hold lapsed before it was paid (its seats are free again), or ended when its show started (`details.startsAt`).',
  RESERVATION_CANCELLED: 'The reservation was cancelled or released.',
  BOOKING_NOT_OPEN: 'Booking for this show has not opened yet (bookingOpensAt).',
  BOOKING_CLOSED: 'The show has started; nothing can be held any more.',
  SCHEDULE_CANCELLED: 'The show was cancelled.',
  NOT_REFUNDABLE: 'Only a PAID reservation can be refunded.',
  REFUND_WINDOW_CLOSED: 'Too close to the show to refund (REFUND_CUTOFF_HOURS).',
  PAYLOAD_TOO_LARGE: 'The request body is too large.',
  UNSUPPORTED_MEDIA_TYPE: 'A body that is not application/json.',
  IDEMPOTENCY_KEY_REUSED: 'This key was used for a different input; use a new key.',
  RATE_LIMITED: 'Too many requests; wait `Retry-After` seconds (`details.retryAfterMs`).',
  SERVICE_UNAVAILABLE: 'The database or the queue store is down; retry.',
  INTERNAL: 'A bug of ours, never caused by what a client sent. Nothing inside leaves the server.',
};
