import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbNow, systemClock } from '../clock.ts';
import { type Core, createCore, loadConfig } from '../index.ts';
import { createTestDatabase, type TestDatabase, testEnv } from '../../../../test/harness.ts';
import { claimDue, listEndpoints, recordAttempt } from './webhooks.repository.ts';

/**
 * Deliveries waiting behind an earlier one of their reservation (ordering key) at the same
 * endpoint: found by an outside review, where 20,000 retrying deliveries with one waiting behind
 * each made every claim walk the 20,000 waiting rows (63 ms, every 250 ms on every process), and
 * the delivery log showed those rows' next try in the past.
 */
describe('webhook deliveries waiting behind an earlier one', () => {
  let db: TestDatabase;
  let core: Core;
  let sql: InstanceType<typeof pg.Client>;
  let endpointId: number;
  beforeAll(async () => {
    db = await createTestDatabase();
    core = await createCore(loadConfig(testEnv(db.url)));
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    const { rows } = await sql.query(`INSERT INTO webhook_endpoints (url, events, secret, created_at) VALUES ('http://127.0.0.1:9/hook', '{reservation.held,reservation.paid}', 'whsec_x', now()) RETURNING id`);
    endpointId = Number(rows[0].id);
  });
  afterAll(async () => {
    await sql?.end();
    await core?.close();
    await db?.drop();
  });

  /** Events of `keys` ordering keys, one delivery each, with the head's and the follower's next tries (SQL expressions). */
  async function line(prefix: string, keys: number, head: { attempt: number; next: string }, follower: { next: string }) {
    await sql.query(
      `WITH ev AS (
         INSERT INTO outbox_events (id, type, ordering_key, data, created_at)
         SELECT gen_random_uuid(), t.type, $1 || k, '{}', now() FROM generate_series(1, $2) k
         CROSS JOIN (VALUES (1, 'reservation.held'), (2, 'reservation.paid')) t(n, type) ORDER BY k, t.n
         RETURNING id, seq, type, ordering_key)
       INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, attempt, next_attempt_at, created_at)
       SELECT $3, id, seq, ordering_key, 'PENDING', CASE WHEN type = 'reservation.held' THEN $4::int ELSE 0 END,
              CASE WHEN type = 'reservation.held' THEN ${head.next} ELSE ${follower.next} END, now() - interval '1 minute'
       FROM ev`,
      [prefix, keys, endpointId, head.attempt],
    );
  }
  const dueRows = async (prefix: string) =>
    Number((await sql.query(`SELECT count(*) FROM webhook_deliveries WHERE ordering_key LIKE $1 || '%' AND status = 'PENDING' AND next_attempt_at <= now()`, [prefix])).rows[0].count);
  const claim = () => claimDue(core.db, dbNow(systemClock), 15_000, 20);

  it('is put off until its head is next tried, so claims stop walking past it', async () => {
    // 300 reservations whose first delivery failed and is retried in an hour, the second waiting.
    await line('backoff-', 300, { attempt: 1, next: `now() + interval '1 hour'` }, { next: `now() - interval '1 minute'` });
    expect(await dueRows('backoff-')).toBe(300);
    expect(await claim()).toEqual([]);
    // None is due any more (a claim's scan of the due index no longer meets them), and each says
    // when it can go at the earliest: its head's next try, not a time in the past.
    expect(await dueRows('backoff-')).toBe(0);
    const { rows } = await sql.query(
      `SELECT count(*) FILTER (WHERE f.next_attempt_at = h.next_attempt_at) AS behind, count(*) AS n
       FROM webhook_deliveries f JOIN webhook_deliveries h ON h.ordering_key = f.ordering_key AND h.event_seq < f.event_seq
       WHERE f.ordering_key LIKE 'backoff-%'`,
    );
    expect(rows[0]).toEqual({ behind: '300', n: '300' });
  });

  it('goes as soon as its head is delivered, not at the time it was put off to', async () => {
    await line('prompt-', 1, { attempt: 0, next: `now() - interval '1 second'` }, { next: `now() - interval '1 second'` });
    const first = await claim();
    expect(first.map((d) => d.type)).toEqual(['reservation.held']);
    // The follower is put off to the head's lease (15 s), the head's next try if its attempt fails...
    const next = async () => (await sql.query(`SELECT next_attempt_at > now() + interval '10 seconds' AS later FROM webhook_deliveries WHERE ordering_key = 'prompt-1' AND attempt = 0`)).rows[0].later;
    expect(await next()).toBe(true);
    // ...and woken when the head is delivered: the next claim sends it.
    await recordAttempt(core.db, first[0]!, { status: 'DELIVERED', httpStatus: 204, error: null, nextAttemptAt: null }, dbNow(systemClock));
    expect(await next()).toBe(false);
    expect((await claim()).map((d) => d.type)).toEqual(['reservation.paid']);
  });

  // The endpoint list's last delivery was the newest row: an event waiting behind a failing
  // one, never tried (PENDING, no answer, no time), so the list hid the 500s.
  it('the endpoint list shows the delivery attempted last, not a newer one waiting its turn', async () => {
    const { rows } = await sql.query(`INSERT INTO webhook_endpoints (url, events, secret, created_at) VALUES ('http://127.0.0.1:9/other', '{reservation.held,reservation.paid}', 'whsec_y', now()) RETURNING id`);
    const other = Number(rows[0].id);
    const listed = async () => (await listEndpoints(core.db)).find((w) => Number(w.id) === other)!;
    // No delivery yet, then one not tried yet: that one.
    expect(await listed()).toMatchObject({ event_id: null });
    await sql.query(
      `WITH ev AS (INSERT INTO outbox_events (id, type, ordering_key, data, created_at) VALUES (gen_random_uuid(), 'reservation.held', 'list-1', '{}', now()) RETURNING id, seq)
       INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, attempt, next_attempt_at, last_http_status, last_attempt_at, created_at)
       SELECT $1, id, seq, 'list-1', 'PENDING', 0, now(), NULL, NULL, now() FROM ev`,
      [other],
    );
    expect(await listed()).toMatchObject({ type: 'reservation.held', status: 'PENDING', last_attempt_at: null });
    // Tried and answered 500; then a newer event waits behind it, not tried.
    await sql.query(`UPDATE webhook_deliveries SET attempt = 2, last_http_status = 500, last_attempt_at = now() - interval '5 seconds', next_attempt_at = now() + interval '1 minute' WHERE endpoint_id = $1`, [other]);
    await sql.query(
      `WITH ev AS (INSERT INTO outbox_events (id, type, ordering_key, data, created_at) VALUES (gen_random_uuid(), 'reservation.paid', 'list-1', '{}', now()) RETURNING id, seq)
       INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, attempt, next_attempt_at, created_at)
       SELECT $1, id, seq, 'list-1', 'PENDING', 0, now(), now() FROM ev`,
      [other],
    );
    const last = await listed();
    expect(last).toMatchObject({ type: 'reservation.held', status: 'PENDING', last_http_status: 500 });
    expect(last.last_attempt_at).toBeInstanceOf(Date);
  });

  it('a head that fails for good wakes its followers too', async () => {
    await line('gaveup-', 1, { attempt: 0, next: `now() - interval '1 second'` }, { next: `now() - interval '1 second'` });
    const [head] = await claim();
    expect(head!.type).toBe('reservation.held');
    await recordAttempt(core.db, head!, { status: 'FAILED', httpStatus: 500, error: 'gave up', nextAttemptAt: null }, dbNow(systemClock));
    expect((await claim()).map((d) => d.type)).toEqual(['reservation.paid']);
  });
});
