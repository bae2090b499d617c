\set g :i * 20 + :client_id
\set i :i + 1
\set sched 1 + :g / 1000
\set seat :g % 1000 + 1
\set user 1 + :g % 1999
INSERT INTO idempotency_keys (user_id, procedure, key, request_hash, state, owner, locked_until, created_at)
    VALUES (:user, 'payments.pay', ('pgbench-pay-' || :g), 'L2tO2wRiNRFNj66agqi40EDzFkthY-kMiugRcvAVL3k', 'IN_PROGRESS', ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '15000 milliseconds'), (now() + interval '0 milliseconds'))
    ON CONFLICT DO NOTHING RETURNING owner;
SELECT r.id, r.user_id, r.schedule_id, r.total_price, r.hold_expires_at, r.created_at, r.paid_at, r.refunded_at, r.source, sc.concert_id, sc.starts_at, c.title,
      CASE WHEN r.status = 'HELD' AND r.hold_expires_at <= (now() + interval '0 milliseconds') THEN 'EXPIRED' ELSE r.status END AS status,
      (SELECT coalesce(json_agg(json_build_object('seatNumber', rs.seat_number, 'grade', rs.grade, 'price', rs.price) ORDER BY rs.seat_number), '[]') FROM reservation_seats AS rs WHERE rs.reservation_id = r.id) AS seats FROM reservations AS r INNER JOIN schedules AS sc ON sc.id = r.schedule_id INNER JOIN concerts AS c ON c.id = sc.concert_id
    WHERE r.id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND r.user_id = :user;
\startpipeline
begin;

    WITH r AS (
      SELECT status, total_price, seat_count, hold_expires_at, schedule_id, source FROM reservations WHERE id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND user_id = :user FOR UPDATE
    )
    SELECT r.*, u.balance, r.hold_expires_at <= (now() + interval '0 milliseconds') AS lapsed
    FROM r CROSS JOIN LATERAL (SELECT balance FROM users WHERE id = :user FOR UPDATE) u;
\endpipeline

    WITH sold AS (
      UPDATE seats SET sold_at = (now() + interval '0 milliseconds'), held_until = NULL
      WHERE reservation_id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND schedule_id IN (SELECT id FROM schedules WHERE concert_id = 1) AND sold_at IS NULL AND held_until > (now() + interval '0 milliseconds')
      RETURNING schedule_id, seat_number
    ),
    whole AS (SELECT count(*) = 1 AS ok FROM sold),
    debit AS (
      UPDATE users SET balance = balance - 100000::bigint, updated_at = (now() + interval '0 milliseconds')
      WHERE id = :user AND (SELECT ok FROM whole)
      RETURNING balance
    ),
    payment AS (
      INSERT INTO payments (id, reservation_id, user_id, amount, status, balance_before, balance_after, created_at)
      SELECT ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, 100000::bigint, 'COMPLETED', balance + 100000::bigint, balance, (now() + interval '0 milliseconds')
      FROM debit
    ),
    entry AS (
      INSERT INTO ledger_entries (user_id, kind, source, amount, balance_after, reservation_id, payment_id, created_at)
      SELECT :user, 'PAYMENT', 'SYSTEM', -100000::bigint, balance, lpad(to_hex(:g::bigint), 32, '0')::uuid, ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '0 milliseconds') FROM debit
    ),
    ticket AS (
      INSERT INTO tickets (schedule_id, seat_number, reservation_id, user_id, payment_id, created_at)
      SELECT schedule_id, seat_number, lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '0 milliseconds') FROM sold WHERE (SELECT ok FROM whole)
    ),
    paid AS (
      UPDATE reservations SET status = 'PAID', paid_at = (now() + interval '0 milliseconds') WHERE id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND (SELECT ok FROM whole)
    )
    SELECT (SELECT count(*) FROM sold)::int AS sold, (SELECT balance FROM debit) AS balance, (now() + interval '0 milliseconds')::timestamptz AS paid_at;
\startpipeline
/* then commit */
    WITH live AS (SELECT true AS ok),
    e AS (
      INSERT INTO outbox_events (id, type, reservation_id, schedule_id, ordering_key, data, created_at)
      SELECT ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid::uuid, 'payment.completed', lpad(to_hex(:g::bigint), 32, '0')::uuid::uuid, :sched::bigint, lpad(to_hex(:g::bigint), 32, '0')::uuid,
              convert_from(decode('eyJyZXNlcnZhdGlvbiI6eyJyZXNlcnZhdGlvbklkIjoiYmM0OTY1MjQtNmExNS00MjZmLWE4YmQtNzdhYTI1Njc1OWMxIiwidXNlcklkIjoyMDAwLCJjb25jZXJ0SWQiOjEsImNvbmNlcnRUaXRsZSI6InBnYmVuY2ggcmVmZXJlbmNlIiwic2NoZWR1bGVJZCI6MjEsInN0YXJ0c0F0IjoiMjAyNy0wMS0wNFQxNjo1MzozNC4yODVaIiwic2VhdHMiOlt7InNlYXROdW1iZXIiOjcsImdyYWRlIjoiUiIsInByaWNlIjoxMDAwMDB9XSwidG90YWxQcmljZSI6MTAwMDAwLCJzdGF0dXMiOiJQQUlEIiwic291cmNlIjoiUVVFVUUiLCJob2xkRXhwaXJlc0F0IjoiMjAyNi0xMi0wNVQxNjo1ODozNC4yODVaIiwiY3JlYXRlZEF0IjoiMjAyNi0xMi0wNVQxNjo1MzozNC4yODVaIiwicGFpZEF0IjoiMjAyNi0xMi0wNVQxNjo1MzozNC4yODVaIiwicmVmdW5kZWRBdCI6bnVsbH0sInBheW1lbnQiOnsicGF5bWVudElkIjoiZTRjNDEzN2ItYjFiZi00MjYwLTljYjMtZTQ5OGZkZWFkNDMzIiwiYW1vdW50IjoxMDAwMDAsInBhaWRBdCI6IjIwMjYtMTItMDVUMTY6NTM6MzQuMjg1WiIsImJhbGFuY2VBZnRlciI6OTk5OTAwMDAwfX0=', 'base64'), 'UTF8')::jsonb, (now() + interval '0 milliseconds')::timestamptz FROM live WHERE ok
      RETURNING id, seq, ordering_key, created_at
    ),
    d AS (
      INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, next_attempt_at, created_at)
      SELECT w.id, e.id, e.seq, e.ordering_key, 'PENDING', e.created_at, e.created_at
      FROM e CROSS JOIN webhook_endpoints w
      WHERE w.deleted_at IS NULL AND w.disabled_at IS NULL AND 'payment.completed' = ANY (w.events)
    ),
    along AS (
    UPDATE idempotency_keys SET state = 'DONE', response = convert_from(decode('eyJqc29uIjp7InBheW1lbnRJZCI6ImU0YzQxMzdiLWIxYmYtNDI2MC05Y2IzLWU0OThmZGVhZDQzMyIsInJlc2VydmF0aW9uSWQiOiJiYzQ5NjUyNC02YTE1LTQyNmYtYThiZC03N2FhMjU2NzU5YzEiLCJhbW91bnQiOjEwMDAwMCwic3RhdHVzIjoiQ09NUExFVEVEIiwicGFpZEF0IjoiMjAyNi0xMi0wNVQxNjo1MzozNC4yODVaIiwiYmFsYW5jZUJlZm9yZSI6MTAwMDAwMDAwMCwiYmFsYW5jZUFmdGVyIjo5OTk5MDAwMDAsImNvbmNlcnRJZCI6MSwic2NoZWR1bGVJZCI6MjEsInBhaWRXaXRoIjp7ImNvbmNlcnRJZCI6MSwidG9rZW5JZCI6IkNVa1Jhd2M3eF9ObnFRak1hVDNFemcifX0sIm1ldGEiOnsidmFsdWVzIjp7InBhaWRBdCI6WyJEYXRlIl19LCJ2IjoxfX0=', 'base64'), 'UTF8'), completed_at = (now() + interval '0 milliseconds')
    WHERE user_id = :user AND procedure = 'payments.pay' AND key = ('pgbench-pay-' || :g) AND state = 'IN_PROGRESS' AND owner = ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid
    RETURNING 1)
    SELECT ok AS live, EXISTS (SELECT FROM along) AS along, CASE WHEN ok IS NOT TRUE THEN concert_abort('SCHEDULE_CANCELLED') WHEN EXISTS (SELECT FROM along) IS FALSE THEN concert_abort('SUPERSEDED') END AS refused FROM live;
commit;
\endpipeline
