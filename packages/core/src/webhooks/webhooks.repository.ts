import { sql } from 'kysely';
import { type Moment, plusMs } from '../clock.ts';
import type { Db, Tx } from '../db/database.ts';
import type { WebhookEventType } from '../schemas.ts';

type Executor = Db | Tx;

export async function insertEndpoint(db: Executor, row: { url: string; events: WebhookEventType[]; secret: string; description: string; now: Date }) {
  return db
    .insertInto('webhook_endpoints')
    .values({ url: row.url, events: row.events, secret: row.secret, description: row.description, created_at: row.now, disabled_at: null, disabled_reason: null, deleted_at: null })
    .returning(['id', 'url', 'events', 'description'])
    .executeTakeFirstOrThrow();
}

export async function findEndpoint(db: Executor, id: number, opts: { removedToo?: boolean } = {}) {
  let q = db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id);
  if (!opts.removedToo) q = q.where('deleted_at', 'is', null);
  return q.executeTakeFirst();
}

/**
 * Live endpoints with the delivery attempted last (the newest one when none has been tried yet): the
 * newest delivery alone, behind a receiver answering 500, was an event waiting its turn, never
 * tried, and hid the failures (webhook_deliveries_last_attempt_idx serves the order).
 */
export async function listEndpoints(db: Executor) {
  return db
    .selectFrom('webhook_endpoints as w')
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('webhook_deliveries as d')
          .innerJoin('outbox_events as e', 'e.id', 'd.event_id')
          .select(['d.event_id', 'e.type', 'd.status', 'd.last_http_status', 'd.last_attempt_at', 'd.created_at as delivery_created_at'])
          .whereRef('d.endpoint_id', '=', 'w.id')
          .orderBy(sql`d.last_attempt_at DESC NULLS LAST`)
          .orderBy('d.id', 'desc')
          .limit(1)
          .as('last'),
      (join) => join.onTrue(),
    )
    .select(['w.id', 'w.url', 'w.events', 'w.description', 'w.disabled_at', 'last.event_id', 'last.type', 'last.status', 'last.last_http_status', 'last.last_attempt_at'])
    .where('w.deleted_at', 'is', null)
    .orderBy('w.id')
    .execute();
}

/** Removing or disabling an endpoint ends its pending deliveries. */
export async function endEndpoint(db: Executor, id: number, how: { deleted?: boolean; disabledReason?: string }, now: Date) {
  const row = await db
    .updateTable('webhook_endpoints')
    .set(how.deleted ? { deleted_at: now } : { disabled_at: now, disabled_reason: how.disabledReason ?? null })
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'FAILED', next_attempt_at: null, last_error: how.deleted ? 'endpoint deleted' : `endpoint disabled: ${how.disabledReason ?? ''}` })
    .where('endpoint_id', '=', id)
    .where('status', '=', 'PENDING')
    .execute();
  return row !== undefined;
}

export async function findDeliveries(db: Executor, endpointId: number, beforeId: number | undefined, limit: number) {
  let q = db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('outbox_events as e', 'e.id', 'd.event_id')
    .select(['d.id', 'd.event_id', 'e.type', 'd.attempt', 'd.status', 'd.last_http_status', 'd.last_error', 'd.last_attempt_at', 'd.next_attempt_at'])
    .where('d.endpoint_id', '=', endpointId)
    .orderBy('d.id', 'desc')
    .limit(limit);
  if (beforeId !== undefined) q = q.where('d.id', '<', beforeId);
  return q.execute();
}

export interface ClaimedDelivery {
  id: number;
  endpoint_id: number;
  attempt: number;
  created_at: Date;
  url: string;
  secret: string;
  event_id: string;
  type: string;
  data: unknown;
  event_created_at: Date;
  /** The endpoint was disabled or deleted after this delivery was written. */
  ended: boolean;
  /** When it was claimed, by the deciding clock (the database's): what its attempt is timed and signed by. */
  claimed_at: Date;
}

/** How many due rows one claim looks at, heads and waiting ones together (see claimDue). */
export const CLAIM_SCAN_ROWS = 500;

/**
 * Claims due deliveries for one attempt each: rows are picked FOR UPDATE SKIP LOCKED, so
 * processes share the work, and leased (next_attempt_at pushed past the attempt's timeout), so
 * a process that dies mid-attempt leaves the row to another once the lease runs out. A delivery
 * waits while an earlier event with its ordering key (its reservation) is still pending.
 * `skipEndpoints` are those this process is still sending to (a slow receiver). `now` is the
 * deciding clock (dbNow: the database's), never the process's own: a lease taken by a process
 * whose clock runs behind would have run out already for the others, and they would send the
 * delivery again while its attempt is still running.
 *
 * A waiting delivery found due is put off until its head (the earliest pending delivery of its
 * ordering key) is next tried, and at least a second: otherwise it stayed due, and every claim of
 * every process walked past every waiting row behind a failing receiver before finding work (an
 * outside review: 63 ms a claim, every 250 ms on each process, at 20,000 retrying deliveries with
 * one waiting behind each), and the delivery log showed a next try in the past. The head is read
 * under a share lock (SKIP LOCKED: a head being recorded or claimed right now is left for the next
 * claim), so a head delivered since this statement's snapshot is seen as such and puts nothing
 * off; recordAttempt wakes a head's followers when it leaves PENDING. No claim waits for a lock.
 */
export async function claimDue(db: Db, now: Moment, leaseMs: number, limit: number, skipEndpoints: number[] = []): Promise<ClaimedDelivery[]> {
  const leaseUntil = plusMs(now, leaseMs);
  const { rows } = await sql<ClaimedDelivery>`
    WITH due AS (
      SELECT d.id, d.next_attempt_at, (
          SELECT p.id FROM webhook_deliveries p
          WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key AND p.status = 'PENDING' AND p.event_seq < d.event_seq
          ORDER BY p.event_seq LIMIT 1) AS head_id
      FROM webhook_deliveries d
      WHERE d.status = 'PENDING' AND d.next_attempt_at <= ${now}
        ${skipEndpoints.length > 0 ? sql`AND d.endpoint_id NOT IN (${sql.join(skipEndpoints)})` : sql``}
      ORDER BY d.next_attempt_at, d.id
      LIMIT ${CLAIM_SCAN_ROWS}
    ), picked AS (
      SELECT d.id FROM due JOIN webhook_deliveries d ON d.id = due.id
      WHERE due.head_id IS NULL AND d.status = 'PENDING' AND d.next_attempt_at <= ${now}
      ORDER BY due.next_attempt_at, due.id
      LIMIT ${limit}
      FOR UPDATE OF d SKIP LOCKED
    ), waiting_for_picked AS (
      -- Behind a head this statement claims: next tried when its lease ends. (Its row is not
      -- locked again here: the claim below rewrites it in this same statement.)
      SELECT d.id, ${leaseUntil} AS head_next FROM due JOIN webhook_deliveries d ON d.id = due.id
      WHERE due.head_id IN (SELECT id FROM picked) AND d.status = 'PENDING' AND d.next_attempt_at <= ${now}
      FOR UPDATE OF d SKIP LOCKED
    ), waiting AS (
      SELECT d.id, h.next_attempt_at AS head_next FROM due
      JOIN webhook_deliveries d ON d.id = due.id
      JOIN webhook_deliveries h ON h.id = due.head_id
      WHERE h.id NOT IN (SELECT id FROM picked) AND d.status = 'PENDING' AND d.next_attempt_at <= ${now} AND h.status = 'PENDING'
      FOR UPDATE OF d SKIP LOCKED FOR SHARE OF h SKIP LOCKED
    ), put_off AS (
      UPDATE webhook_deliveries d SET next_attempt_at = GREATEST(w.head_next, ${plusMs(now, WAITING_AT_LEAST_MS)})
      FROM (SELECT * FROM waiting_for_picked UNION ALL SELECT * FROM waiting) w WHERE d.id = w.id
    ), claimed AS (
      -- The previous attempt's answer goes with it: the row now tells of this attempt, unanswered so far.
      UPDATE webhook_deliveries d SET attempt = d.attempt + 1, next_attempt_at = ${leaseUntil}, last_attempt_at = ${now}, last_http_status = NULL, last_error = NULL
      FROM picked WHERE d.id = picked.id
      RETURNING d.id, d.attempt, d.created_at, d.endpoint_id, d.event_id
    )
    SELECT c.id, c.endpoint_id, c.attempt, c.created_at, w.url, w.secret, c.event_id, e.type, e.data, e.created_at AS event_created_at,
           (w.disabled_at IS NOT NULL OR w.deleted_at IS NOT NULL) AS ended, (${now})::timestamptz AS claimed_at
    FROM claimed c JOIN webhook_endpoints w ON w.id = c.endpoint_id JOIN outbox_events e ON e.id = c.event_id`.execute(db);
  return rows;
}

/** A waiting delivery whose head is due now is looked at again no sooner than this. */
const WAITING_AT_LEAST_MS = 1_000;

/**
 * Records an attempt's outcome, unless the lease was lost to another process meanwhile. A 2xx is
 * recorded even over the FAILED that removing or disabling the endpoint wrote while the attempt
 * ran (endEndpoint): the receiver has the event, and the log says so. Only this attempt or that
 * removal writes a row of this attempt number, so nothing else is overwritten.
 */
export async function recordAttempt(
  db: Db,
  d: { id: number; attempt: number },
  outcome: { status: 'PENDING' | 'DELIVERED' | 'FAILED'; httpStatus: number | null; error: string | null; nextAttemptAt: Moment | null },
  now: Moment,
) {
  // A delivery that leaves PENDING wakes the ones waiting behind it (claimDue put them off until
  // its next try): the next of them is due at once, the others are put off again behind it.
  // A row its endpoint's end marked FAILED while this attempt was on its way records the answer
  // too, and stays FAILED unless the event arrived (a 2xx): nothing more is sent to that endpoint.
  await sql`
    WITH recorded AS (
      UPDATE webhook_deliveries
      SET status = CASE WHEN status = 'PENDING' OR ${outcome.status} = 'DELIVERED' THEN ${outcome.status} ELSE 'FAILED' END,
        last_http_status = ${outcome.httpStatus}, last_error = ${outcome.error},
        next_attempt_at = CASE WHEN status = 'PENDING' THEN ${outcome.nextAttemptAt}::timestamptz END
      WHERE id = ${d.id} AND attempt = ${d.attempt} AND status IN ('PENDING', 'FAILED')
      RETURNING endpoint_id, ordering_key, event_seq, status
    )
    UPDATE webhook_deliveries f SET next_attempt_at = ${now}
    FROM recorded r
    WHERE r.status <> 'PENDING' AND f.endpoint_id = r.endpoint_id AND f.ordering_key = r.ordering_key AND f.status = 'PENDING'
      AND f.event_seq > r.event_seq AND f.next_attempt_at > ${now}`.execute(db);
}

export async function deleteDeliveriesBefore(db: Db, before: Date): Promise<number> {
  const r = await db.deleteFrom('webhook_deliveries').where('created_at', '<', before).where('status', '<>', 'PENDING').executeTakeFirst();
  return Number(r.numDeletedRows);
}
