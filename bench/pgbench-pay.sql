\set g :i * 20 + :client_id
\set i :i + 1
\set sched 1 + :g / 1000
\set seat :g % 1000 + 1
\set user 1 + :g % 1999
insert into "idempotency_keys" ("user_id", "procedure", "key", "request_hash", "state", "owner", "response", "locked_until", "created_at", "completed_at") values (:user, 'payments.pay', ('pgbench-pay-' || :g), 'f-ktyDQ5vXrGiIfxJv4d1OOJNUCAXBzLaNMiFsxzBYg', 'IN_PROGRESS', ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, NULL, (now() + interval '15000 milliseconds'), (now() + interval '0 milliseconds'), NULL) on conflict do nothing returning "owner";
select "r"."id", "r"."user_id", "r"."schedule_id", "r"."total_price", "r"."hold_expires_at", "r"."created_at", "r"."paid_at", "r"."refunded_at", "r"."source", "sc"."concert_id", "sc"."starts_at", "c"."title", CASE WHEN r.status = 'HELD' AND r.hold_expires_at <= (now() + interval '0 milliseconds') THEN 'EXPIRED' ELSE r.status END as "status", (select coalesce(json_agg(json_build_object('seatNumber', rs.seat_number, 'grade', rs.grade, 'price', rs.price) ORDER BY rs.seat_number), '[]') as "seats" from "reservation_seats" as "rs" where "rs"."reservation_id" = "r"."id") as "seats" from "reservations" as "r" inner join "schedules" as "sc" on "sc"."id" = "r"."schedule_id" inner join "concerts" as "c" on "c"."id" = "sc"."concert_id" where "r"."id" = lpad(to_hex(:g::bigint), 32, '0')::uuid and "r"."user_id" = :user;
begin;

    WITH r AS (
      SELECT status, total_price, seat_count, hold_expires_at, schedule_id, source FROM reservations WHERE id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND user_id = :user FOR UPDATE
    )
    SELECT r.*, u.balance, r.hold_expires_at <= (now() + interval '0 milliseconds') AS lapsed
    FROM r CROSS JOIN LATERAL (SELECT balance FROM users WHERE id = :user FOR UPDATE) u
\gset

    WITH sold AS (
      UPDATE seats SET sold_at = (now() + interval '0 milliseconds'), held_until = NULL
      WHERE reservation_id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND schedule_id IN (SELECT id FROM schedules WHERE concert_id = 1) AND sold_at IS NULL AND held_until > (now() + interval '0 milliseconds')
      RETURNING schedule_id, seat_number
    ),
    whole AS (SELECT count(*) = 1 AS ok FROM sold),
    payment AS (
      INSERT INTO payments (id, reservation_id, user_id, amount, status, balance_before, balance_after, created_at)
      SELECT ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, 100000::bigint, 'COMPLETED', :balance::bigint,
        :balance::bigint - 100000::bigint, (now() + interval '0 milliseconds')
      FROM whole WHERE ok
    ),
    debit AS (
      UPDATE users SET balance = balance - 100000::bigint, updated_at = (now() + interval '0 milliseconds')
      WHERE id = :user AND (SELECT ok FROM whole)
      RETURNING balance
    ),
    entry AS (
      INSERT INTO ledger_entries (user_id, kind, source, amount, balance_after, reservation_id, payment_id, created_at)
      SELECT :user, 'PAYMENT', 'SYSTEM', -100000::bigint, balance, lpad(to_hex(:g::bigint), 32, '0')::uuid, ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '0 milliseconds') FROM debit
    ),
    ticket AS (
      INSERT INTO tickets (schedule_id, seat_number, reservation_id, user_id, payment_id, created_at)
      SELECT schedule_id, seat_number, lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '0 milliseconds') FROM sold WHERE (SELECT ok FROM whole)
    ),
    paid AS (
      UPDATE reservations SET status = 'PAID', paid_at = (now() + interval '0 milliseconds') WHERE id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND (SELECT ok FROM whole)
    )
    SELECT (SELECT count(*) FROM sold)::int AS sold, (SELECT balance FROM debit) AS balance, (now() + interval '0 milliseconds')::timestamptz AS paid_at
\gset

    WITH live AS (SELECT true AS ok),
    e AS (
      INSERT INTO outbox_events (id, type, reservation_id, schedule_id, ordering_key, data, created_at)
      SELECT ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid::uuid, 'payment.completed', lpad(to_hex(:g::bigint), 32, '0')::uuid::uuid, :sched::bigint, lpad(to_hex(:g::bigint), 32, '0')::uuid,
              convert_from(decode('eyJyZXNlcnZhdGlvbiI6eyJyZXNlcnZhdGlvbklkIjoiNTVlMzUyMTktMWFlNy00MmYzLWI4MjItYTg4Yzk2OTlkZmExIiwidXNlcklkIjoyMDAwLCJjb25jZXJ0SWQiOjEsImNvbmNlcnRUaXRsZSI6InBnYmVuY2ggcmVmZXJlbmNlIiwic2NoZWR1bGVJZCI6MTYsInN0YXJ0c0F0IjoiMjAyNy0wMS0wNFQwMjowMjo1MC45NjBaIiwic2VhdHMiOlt7InNlYXROdW1iZXIiOjcsImdyYWRlIjoiUiIsInByaWNlIjoxMDAwMDB9XSwidG90YWxQcmljZSI6MTAwMDAwLCJzdGF0dXMiOiJQQUlEIiwic291cmNlIjoiUVVFVUUiLCJob2xkRXhwaXJlc0F0IjoiMjAyNi0xMi0wNVQwMjowNzo1MC45NjBaIiwiY3JlYXRlZEF0IjoiMjAyNi0xMi0wNVQwMjowMjo1MC45NjBaIiwicGFpZEF0IjoiMjAyNi0xMi0wNVQwMjowMjo1MC45NjBaIiwicmVmdW5kZWRBdCI6bnVsbH0sInBheW1lbnQiOnsicGF5bWVudElkIjoiNzRhOGM2YTYtZDJjMS00YzMzLTlhN2MtZDA4NmNhNDA0ODZjIiwiYW1vdW50IjoxMDAwMDAsInBhaWRBdCI6IjIwMjYtMTItMDVUMDI6MDI6NTAuOTYwWiIsImJhbGFuY2VBZnRlciI6OTk5OTAwMDAwfX0=', 'base64'), 'UTF8')::jsonb, (now() + interval '0 milliseconds')::timestamptz FROM live WHERE ok
      RETURNING id, seq, ordering_key, created_at
    ),
    d AS (
      INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, next_attempt_at, created_at)
      SELECT w.id, e.id, e.seq, e.ordering_key, 'PENDING', e.created_at, e.created_at
      FROM e CROSS JOIN webhook_endpoints w
      WHERE w.deleted_at IS NULL AND w.disabled_at IS NULL AND 'payment.completed' = ANY (w.events)
    ),
    along AS (
    UPDATE idempotency_keys SET state = 'DONE', response = convert_from(decode('eyJqc29uIjp7InBheW1lbnRJZCI6Ijc0YThjNmE2LWQyYzEtNGMzMy05YTdjLWQwODZjYTQwNDg2YyIsInJlc2VydmF0aW9uSWQiOiI1NWUzNTIxOS0xYWU3LTQyZjMtYjgyMi1hODhjOTY5OWRmYTEiLCJhbW91bnQiOjEwMDAwMCwic3RhdHVzIjoiQ09NUExFVEVEIiwicGFpZEF0IjoiMjAyNi0xMi0wNVQwMjowMjo1MC45NjBaIiwiYmFsYW5jZUJlZm9yZSI6MTAwMDAwMDAwMCwiYmFsYW5jZUFmdGVyIjo5OTk5MDAwMDAsImNvbmNlcnRJZCI6MSwic2NoZWR1bGVJZCI6MTYsInBhaWRXaXRoIjp7ImNvbmNlcnRJZCI6MSwidG9rZW5JZCI6IlhBcGhQR0R1S0xMcG43VHZ2UzJaVHcifX0sIm1ldGEiOnsidmFsdWVzIjp7InBhaWRBdCI6WyJEYXRlIl19LCJ2IjoxfX0=', 'base64'), 'UTF8'), completed_at = (now() + interval '0 milliseconds')
    WHERE user_id = :user AND procedure = 'payments.pay' AND key = ('pgbench-pay-' || :g) AND state = 'IN_PROGRESS' AND owner = ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid
    RETURNING 1)
    SELECT ok AS live, EXISTS (SELECT FROM along) AS along FROM live;
commit;
