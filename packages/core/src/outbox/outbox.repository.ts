import { randomUUID } from 'node:crypto';
import { pgCode, type RidingStatement, type Tx } from '../db/database.ts';
import { type HotFragment, hot, hotRaw, runHot } from '../db/hot.ts';
import { ABORT_CODE, COMMIT_AFTER } from '../db/pipeline.ts';
import type { WebhookEventType } from '../schemas.ts';
import type { Reservation } from '../types.ts';

export interface OutboxEvent {
  type: WebhookEventType;
  data: Record<string, unknown>;
  /** Events with one key are delivered in order; a reservation's events use its id. */
  reservationId?: string;
  scheduleId?: number;
  now: Date;
}

/** How an event's statement ends its transaction. */
export interface EventOptions {
  /**
   * The statement is its transaction's last: it carries the COMMIT in the same round trip
   * (db/pipeline.ts). Whatever would roll the transaction back after it (a cancelled show, a key
   * taken over) then fails the statement itself, in the database.
   */
  last?: boolean;
}

/**
 * Writes an event in the caller's transaction (the transactional outbox) and, in the same
 * statement, one pending delivery for every live endpoint subscribed to its type: an event is
 * never lost and never sent for a change that rolled back.
 */
export async function insertEvent(trx: Tx, event: OutboxEvent, along?: RidingStatement, opts: EventOptions = {}): Promise<string> {
  const id = randomUUID();
  settleAlong(await runEventStatement(trx, id, event, along, opts), along);
  return id;
}

function settleAlong(result: { rows: Array<{ along: boolean | null }> }, along: RidingStatement | undefined): void {
  along?.settle(result.rows[0]?.along === true);
}

/** The refusal concert_abort raises in the event's statement, as the answer it stands for. */
const REFUSED: Record<string, { along: boolean | null }> = {
  SUPERSEDED: { along: false },
};

async function runEventStatement(trx: Tx, id: string, event: OutboxEvent, along: RidingStatement | undefined, opts: EventOptions) {
  try {
    return await runHot(trx, eventStatement(id, event, along, opts.last === true));
  } catch (err) {
    const refused = pgCode(err) === ABORT_CODE ? REFUSED[(err as Error).message] : undefined;
    if (!refused) throw err;
    // The statement failed, so its transaction rolls back: the caller's answer is as before.
    return { rows: [refused] };
  }
}

/** Every write with an event sends it (a hold's and a payment's last statement): a hot statement (db/hot.ts). */
function eventStatement(id: string, event: OutboxEvent, along: RidingStatement | undefined, last: boolean) {
  const orderingKey = event.reservationId ?? `schedule:${event.scheduleId ?? 0}`;
  const row = hot`${id}::uuid, ${event.type}, ${event.reservationId ?? null}::uuid, ${event.scheduleId ?? null}::bigint, ${orderingKey},
              ${JSON.stringify(event.data)}::jsonb, ${event.now}::timestamptz`;
  const alongDone = along ? hotRaw('EXISTS (SELECT FROM along)') : hotRaw('NULL::boolean');
  // The last statement refuses in the database what its caller would roll back on reading it.
  const refusal = last ? hot`, CASE WHEN ${alongDone} IS FALSE THEN concert_abort('SUPERSEDED') END AS refused` : hotRaw('');
  return hot<{ along: boolean | null }>`${hotRaw(last ? `${COMMIT_AFTER}\n    ` : '')}WITH e AS (
      INSERT INTO outbox_events (id, type, reservation_id, schedule_id, ordering_key, data, created_at)
      VALUES (${row})
      RETURNING id, seq, ordering_key, created_at
    ),
    ${deliveries(event.type)}${along ? hot`,
    along AS (${along.sql})` : hotRaw('')}
    SELECT ${alongDone} AS along${refusal}`;
}

/** The pending deliveries of event `e` (a CTE of the statement that inserts it), one per live endpoint subscribed to its type. */
function deliveries(type: WebhookEventType) {
  return hot`d AS (
      INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, next_attempt_at, created_at)
      SELECT w.id, e.id, e.seq, e.ordering_key, 'PENDING', e.created_at, e.created_at
      FROM e CROSS JOIN webhook_endpoints w
      WHERE w.deleted_at IS NULL AND w.disabled_at IS NULL AND ${type} = ANY (w.events)
    )`;
}

/** The refusal of insertComputedEvent's statement when the write it reads wrote nothing. */
export const NOT_WRITTEN = 'NOT_WRITTEN';

/**
 * The event of a write whose statement ran in the same round trip, before this one's answer
 * could be read (db/pipeline.ts WITH_NEXT): its data is built here, in the database, from what
 * that statement wrote. `subject` is a CTE body with one row, columns `data` (the event's jsonb),
 * `at` (its time) and `stored` (what `along` may store), or none when the write did not happen.
 * As insertEvent with `last`, with the show's cancellation checked when `checkLive` (a hold's:
 * its statement runs after the claim's row locks were granted, see ReservationsService.hold), and
 * one refusal more, first: no subject row fails the statement with NOT_WRITTEN, so the COMMIT
 * that follows does not run and nothing of a half-done write is committed.
 */
export async function insertComputedEvent(
  trx: Tx,
  event: { type: WebhookEventType; reservationId: string; scheduleId: number },
  subject: HotFragment,
  along: RidingStatement,
  opts: { checkLive: boolean },
): Promise<'written' | 'not-written' | 'cancelled'> {
  const live = opts.checkLive ? hot`(SELECT cancelled_at IS NULL FROM schedules WHERE id = ${event.scheduleId})` : hotRaw('true');
  try {
    const { rows } = await runHot<{ along: boolean }>(
      trx,
      hot`${hotRaw(`${COMMIT_AFTER}\n    `)}WITH live AS (SELECT ${live} AS ok),
    subject AS (${subject}),
    e AS (
      INSERT INTO outbox_events (id, type, reservation_id, schedule_id, ordering_key, data, created_at)
      SELECT ${randomUUID()}::uuid, ${event.type}, ${event.reservationId}::uuid, ${event.scheduleId}::bigint, ${event.reservationId}, data, at
      FROM subject, live WHERE ok
      RETURNING id, seq, ordering_key, created_at
    ),
    ${deliveries(event.type)},
    along AS (${along.sql})
    SELECT EXISTS (SELECT FROM along) AS along, CASE WHEN NOT EXISTS (SELECT FROM subject) THEN concert_abort('${hotRaw(NOT_WRITTEN)}')
      WHEN ok IS NOT TRUE THEN concert_abort('SCHEDULE_CANCELLED') WHEN NOT EXISTS (SELECT FROM along) THEN concert_abort('SUPERSEDED') END AS refused
    FROM live`,
    );
    along.settle(rows[0]?.along === true);
    return 'written';
  } catch (err) {
    if (pgCode(err) !== ABORT_CODE) throw err;
    const reason = (err as Error).message;
    if (reason === NOT_WRITTEN) return 'not-written';
    if (reason === 'SCHEDULE_CANCELLED') return 'cancelled';
    if (reason === 'SUPERSEDED') along.settle(false);
    throw err;
  }
}

/** What receivers get about a reservation: enough to act on without calling back. */
export function reservationData(r: Reservation & { userId: number }) {
  return {
    reservationId: r.reservationId,
    userId: r.userId,
    concertId: r.concertId,
    concertTitle: r.concertTitle,
    scheduleId: r.scheduleId,
    startsAt: r.startsAt,
    seats: r.seats,
    totalPrice: r.totalPrice,
    status: r.status,
    source: r.source,
    holdExpiresAt: r.holdExpiresAt,
    createdAt: r.createdAt,
    paidAt: r.paidAt,
    refundedAt: r.refundedAt,
  };
}

/** A reservation's event, with the reservation as it reads inside the transaction. */
export function reservationEvent(type: WebhookEventType, r: Reservation & { userId: number }, now: Date, extra: Record<string, unknown> = {}) {
  return { type, reservationId: r.reservationId, scheduleId: r.scheduleId, now, data: { reservation: reservationData(r), ...extra } };
}

export async function insertReservationEvent(
  trx: Tx,
  type: WebhookEventType,
  r: Reservation & { userId: number },
  now: Date,
  extra: Record<string, unknown> = {},
  along?: RidingStatement,
  opts: EventOptions = {},
): Promise<string> {
  return insertEvent(trx, reservationEvent(type, r, now, extra), along, opts);
}
