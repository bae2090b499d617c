import { z } from 'zod';

/**
 * Input schemas shared by the API and its clients (the CLI validates files with them).
 * This file imports nothing but zod, so a client can import it without the server's code.
 */

const MAX_ID = Number.MAX_SAFE_INTEGER;

/**
 * An integer in [min, max], refused with the field's own bound: zod's `.int()` also checks the
 * safe-integer range, so a price of 1e20 got two "Too big" messages for one field, one of them
 * naming 9007199254740991. The JSON Schema (OpenAPI, docs/API.md) still says integer.
 */
export const zInt = (min: number, max: number) =>
  z.number().min(min).max(max).refine(Number.isInteger, 'Invalid input: expected int, received number').meta({ type: 'integer' });

/**
 * Free text as the database keeps it, exactly as sent: PostgreSQL's text holds no NUL, and a
 * string that is not well-formed UTF-16 (a lone surrogate, "\ud800") has no UTF-8 form and was
 * stored as U+FFFD, so "\ud800" and "\udfff" passed "each grade once" and became one grade
 * with two prices. Every free-text input goes through this, so the refusal is INVALID_INPUT
 * with the field named, wherever the text is bound for.
 */
function storable<S extends z.ZodType<string>>(schema: S): S {
  return schema
    .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')
    .refine((s) => s.isWellFormed(), 'must be well-formed Unicode (a lone UTF-16 surrogate is not a character)');
}

export const ZId = zInt(1, MAX_ID);
/**
 * A UUID in either letter case, read as its lower-case form: the database's uuid ignores case, so
 * without this the same reservation in another case was another request to the idempotency
 * fingerprint (IDEMPOTENCY_KEY_REUSED on a retry that should replay). Any 8-4-4-4-12 hex, as the
 * database's uuid takes: zod's z.uuid() wrote its nil and max UUIDs in lower case only, so
 * "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF" was "Invalid UUID" (an outside review).
 */
export const ZUuid = z.guid().toLowerCase();
export const ZIdempotencyKey = z
  .string()
  .regex(/^[A-Za-z0-9_\-:.]{8,100}$/, 'must be 8 to 100 characters of A-Z a-z 0-9 _ - : .');
export const ZSeatNumber = zInt(1, 1000);
/** Range checks on amounts are the wallet's (INVALID_AMOUNT), so any finite number passes here. */
export const ZAmount = z.number();

export const RESERVATION_STATUSES = ['HELD', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'] as const;
export const ZReservationStatus = z.enum(RESERVATION_STATUSES);

export const ZEmpty = z.object({}).strict().optional().default({});

// concerts
export const ZConcertIdInput = z.object({ concertId: ZId });
/**
 * A point in time: a Date (superjson carries real dates) or an ISO 8601 string with its offset,
 * within what PostgreSQL's timestamptz keeps exactly (1970..9999). Never null or a number.
 */
export const ZDateTime = z
  .union([z.date(), z.iso.datetime({ offset: true }).transform((s) => new Date(s))], {
    error: 'must be a date-time: an ISO 8601 string with its offset (2026-12-24T19:00:00+09:00) or a Date',
  })
  .refine((d) => d.getTime() >= Date.UTC(1970, 0, 1) && d.getTime() < Date.UTC(10_000, 0, 1), 'must be a date between 1970 and 9999');

export const ZSchedulesInput = z.object({ concertId: ZId, includeSoldOut: z.boolean().optional().default(false) });
export const ZScheduleIdInput = z.object({ scheduleId: ZId });

// reservations
export const ZHoldInput = z.object({
  scheduleId: ZId,
  seatNumbers: z
    .array(ZSeatNumber)
    .min(1)
    .max(4)
    .refine((s) => new Set(s).size === s.length, 'seat numbers must be distinct'),
  idempotencyKey: ZIdempotencyKey,
});
export const ZReservationIdInput = z.object({ reservationId: ZUuid });

export const ZRefundInput = z.object({ reservationId: ZUuid, idempotencyKey: ZIdempotencyKey });

/**
 * A page of a list: `cursor` is the opaque `nextCursor` of the page before. `null` is the first
 * page, as TanStack Query's infinite queries over tRPC ask for it (their first pageParam is null).
 */
// Absent (or null) for the first page; an empty string is not a cursor (the reference said
// "0–200 characters" while '' was refused).
const ZCursor = z
  .string()
  .min(1, 'must be a nextCursor this server gave, or left out for the first page')
  .max(200)
  .nullable()
  .transform((c) => c ?? undefined)
  .optional();
export const ZPage = { limit: zInt(1, 100).optional().default(20), cursor: ZCursor };
export const ZPageInput = z.object(ZPage).optional().default({ limit: 20 });
export const ZMineInput = z.object({ status: ZReservationStatus.optional(), ...ZPage }).optional().default({ limit: 20 });

// waitlist
export const ZWaitlistJoinInput = z.object({ scheduleId: ZId, seatCount: zInt(1, 4) });
export const ZWaitlistEntryIdInput = z.object({ entryId: ZId });

// balance
export const ZChargeInput = z.object({ amount: ZAmount, idempotencyKey: ZIdempotencyKey });
export const ZHistoryInput = z
  .object({ limit: zInt(1, 100).optional().default(20), cursor: ZCursor })
  .optional()
  .default({ limit: 20 });

// payments
export const ZPayInput = z.object({ reservationId: ZUuid, idempotencyKey: ZIdempotencyKey });

// queue
export const ZQueueEnterInput = z.object({ concertId: ZId });

// admin
export const ZCreateUserInput = z.object({
  name: storable(z.string().trim().min(1).max(100)),
  initialBalance: zInt(0, 1_000_000_000).optional().default(0),
});

// The catalog's inputs refuse keys they do not know: a concert cannot be deleted, and a file with
// "seats": 30 for seatCount made a show of the default 50 seats, all at the default price (an
// outside review of the CLI's `admin concerts create --file`).
export const ZTier = z.strictObject({
  grade: storable(z.string().trim().min(1).max(20)),
  price: zInt(0, 100_000_000),
  fromSeat: ZSeatNumber,
  toSeat: ZSeatNumber,
});

const ZSeatCount = zInt(1, 1000);

export const ZScheduleSpec = z
  .strictObject({
    startsAt: ZDateTime,
    bookingOpensAt: ZDateTime.optional(),
    seatCount: ZSeatCount.optional().default(50),
    tiers: z.array(ZTier).min(1).max(50).optional(),
  })
  .superRefine((spec, ctx) => {
    // Holds are taken from bookingOpensAt until startsAt: at the same instant, never (it was
    // taken, and the show listed free seats nobody could hold).
    if (spec.bookingOpensAt && spec.bookingOpensAt >= spec.startsAt) {
      ctx.addIssue({ code: 'custom', path: ['bookingOpensAt'], message: 'must be before startsAt' });
    }
    if (!spec.tiers) return;
    // zod runs this even when a field inside failed (and said so): the coverage check below
    // walks seat numbers, so it reads only well-formed ones (a fromSeat of -2^53 was a loop of
    // 2^53 steps that held the process for good).
    const wellFormed =
      ZSeatCount.safeParse(spec.seatCount).success &&
      spec.tiers.every((tier) => typeof tier?.grade === 'string' && ZSeatNumber.safeParse(tier.fromSeat).success && ZSeatNumber.safeParse(tier.toSeat).success);
    if (!wellFormed) return;
    // Tiers must cover seats 1..seatCount exactly once, and name each grade once.
    const owner: Array<number | undefined> = new Array(spec.seatCount + 1);
    const grades = new Map<string, number>();
    let misshapen = false;
    spec.tiers.forEach((tier, t) => {
      const grade = tier.grade.toLowerCase();
      const first = grades.get(grade);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['tiers', t, 'grade'], message: `grade ${tier.grade} is already tiers[${first}]: each grade once, with one price` });
      } else grades.set(grade, t);
      if (tier.fromSeat > tier.toSeat) {
        ctx.addIssue({ code: 'custom', path: ['tiers', t, 'toSeat'], message: `must not be before fromSeat (${tier.fromSeat})` });
        misshapen = true;
        return;
      }
      if (tier.toSeat > spec.seatCount) {
        ctx.addIssue({ code: 'custom', path: ['tiers', t, 'toSeat'], message: `seat ${tier.toSeat} is beyond seatCount ${spec.seatCount}` });
        misshapen = true;
        return;
      }
      // An overlap is said once per tier; the tier's other seats still count as covered.
      let overlap: number | undefined;
      for (let n = tier.fromSeat; n <= tier.toSeat; n++) {
        if (owner[n] === undefined) owner[n] = t;
        else overlap ??= n;
      }
      if (overlap !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['tiers', t], message: `seat ${overlap} is already in tiers[${owner[overlap]}]` });
      }
    });
    const uncovered = [];
    for (let n = 1; n <= spec.seatCount; n++) if (owner[n] === undefined) uncovered.push(n);
    // A misshapen tier has been named already: the seats it meant are not a second mistake.
    if (uncovered.length > 0 && !misshapen) {
      ctx.addIssue({ code: 'custom', path: ['tiers'], message: `seat ${uncovered[0]}${uncovered.length > 1 ? ` (and ${uncovered.length - 1} more)` : ''} is in no tier` });
    }
  });

export const ZCreateConcertInput = z.strictObject({
  title: storable(z.string().trim().min(1).max(200)),
  venue: storable(z.string().trim().max(200)).optional().default(''),
  schedules: z.array(ZScheduleSpec).min(1).max(100),
});

export const ZHoldsListInput = z.object({ concertId: ZId.optional(), scheduleId: ZId.optional(), ...ZPage }).optional().default({ limit: 20 });

export const ZQueueConfigureInput = z.object({
  concertId: ZId,
  maxActive: zInt(1, 1_000_000).optional(),
  activeTtlSeconds: zInt(1, 86_400).optional(),
  idleTimeoutSeconds: zInt(1, 86_400).optional(),
  paused: z.boolean().optional(),
  /** When the line opens; entrants before it are pre-queued and shuffled at the opening. null: open now. */
  opensAt: ZDateTime.nullable().optional(),
  /**
   * Admit a fan only while a seat is left for it (one per fan not yet holding), not whenever a
   * slot is free: the last seats, and seats a refund brings back, go to the head of the line.
   * Off by default (the contract's line admits by free slots). README: "A line that knows the inventory".
   */
  admitBySeats: z.boolean().optional(),
});

export const ZConcertUpdateInput = z
  .object({ concertId: ZId, title: storable(z.string().trim().min(1).max(200)).optional(), venue: storable(z.string().trim().max(200)).optional() })
  .refine((v) => v.title !== undefined || v.venue !== undefined, 'give a title or a venue to change');

export const WEBHOOK_EVENT_TYPES = [
  'reservation.held',
  'reservation.expired',
  'reservation.cancelled',
  'payment.completed',
  'reservation.refunded',
  'schedule.cancelled',
  'waitlist.offered',
  'concert.sold_out',
] as const;
export const ZWebhookEventType = z.enum(WEBHOOK_EVENT_TYPES);
export const ZWebhookCreateInput = z.object({
  // The URL as sent is what is stored and called; URL parsing alone lets a lone surrogate through.
  url: storable(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).max(2000, 'must be at most 2000 characters')),
  events: z.array(ZWebhookEventType).min(1).max(WEBHOOK_EVENT_TYPES.length),
  description: storable(z.string().trim().max(200)).optional().default(''),
});
export const ZWebhookIdInput = z.object({ webhookId: ZId });
export const ZWebhookDeliveriesInput = z.object({ webhookId: ZId, ...ZPage });

export type HoldInput = z.infer<typeof ZHoldInput>;
export type ChargeInput = z.infer<typeof ZChargeInput>;
export type HistoryInput = z.infer<typeof ZHistoryInput>;
export type PayInput = z.infer<typeof ZPayInput>;
export type CreateUserInput = z.infer<typeof ZCreateUserInput>;
export type CreateConcertInput = z.infer<typeof ZCreateConcertInput>;
export type ScheduleSpec = z.infer<typeof ZScheduleSpec>;
export type HoldsListInput = z.infer<typeof ZHoldsListInput>;
export type MineInput = z.infer<typeof ZMineInput>;
export type QueueConfigureInput = z.infer<typeof ZQueueConfigureInput>;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];
export type RefundInput = z.infer<typeof ZRefundInput>;
export type PageInput = z.infer<typeof ZPageInput>;
export type WaitlistJoinInput = z.infer<typeof ZWaitlistJoinInput>;
export type ConcertUpdateInput = z.infer<typeof ZConcertUpdateInput>;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
export type WebhookCreateInput = z.infer<typeof ZWebhookCreateInput>;
export type WebhookDeliveriesInput = z.infer<typeof ZWebhookDeliveriesInput>;
