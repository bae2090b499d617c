\set g :i * 20 + :client_id
\set i :i + 1
\set sched 1 + :g / 1000
\set seat :g % 1000 + 1
\set user 1 + :g % 1999
insert into "idempotency_keys" ("user_id", "procedure", "key", "request_hash", "state", "owner", "response", "locked_until", "created_at", "completed_at") values (:user, 'payments.pay', ('pgbench-pay-' || :g), 'v9_E41pGcQqLi8gowodJP2D5iX0EhEXICiREFJtpqpQ', 'IN_PROGRESS', ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, NULL, (now() + interval '15000 milliseconds'), (now() + interval '0 milliseconds'), NULL) on conflict do nothing returning "owner";
select "r"."schedule_id", "sc"."concert_id" from "reservations" as "r" inner join "schedules" as "sc" on "sc"."id" = "r"."schedule_id" where "r"."id" = lpad(to_hex(:g::bigint), 32, '0')::uuid and "r"."user_id" = :user;
begin;

    WITH r AS (
      SELECT status, total_price, seat_count, hold_expires_at FROM reservations WHERE id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND user_id = :user FOR UPDATE
    )
    SELECT r.*, u.balance FROM r CROSS JOIN LATERAL (SELECT balance FROM users WHERE id = :user FOR UPDATE) u
\gset

    WITH sold AS (
      UPDATE seats SET sold_at = (now() + interval '0 milliseconds'), held_until = NULL
      WHERE reservation_id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND sold_at IS NULL AND held_until > (now() + interval '0 milliseconds')
      RETURNING schedule_id, seat_number
    ),
    whole AS (SELECT count(*) = 1 AS ok FROM sold),
    payment AS (
      INSERT INTO payments (id, reservation_id, user_id, amount, status, balance_before, balance_after, created_at)
      SELECT ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, 100000::bigint, 'COMPLETED', :balance::bigint,
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
      SELECT :user, 'PAYMENT', 'SYSTEM', -100000::bigint, balance, lpad(to_hex(:g::bigint), 32, '0')::uuid, ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '0 milliseconds') FROM debit
    ),
    ticket AS (
      INSERT INTO tickets (schedule_id, seat_number, reservation_id, user_id, payment_id, created_at)
      SELECT schedule_id, seat_number, lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '0 milliseconds') FROM sold WHERE (SELECT ok FROM whole)
    ),
    paid AS (
      UPDATE reservations SET status = 'PAID', paid_at = (now() + interval '0 milliseconds') WHERE id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND (SELECT ok FROM whole)
    )
    SELECT (SELECT count(*) FROM sold)::int AS sold, (SELECT balance FROM debit) AS balance
\gset
update "idempotency_keys" set "state" = 'DONE', "response" = convert_from(decode('eyJqc29uIjp7InBheW1lbnRJZCI6IjI0Y2QwNTFiLTk3MWQtNDc0Ny1hMTNlLTEwZWU1ZGM5Njg4MCIsInJlc2VydmF0aW9uSWQiOiIxMGMzMDMwYi01OTNhLTRlODUtOGZhZS1mNDZkNTRjODU2NDMiLCJhbW91bnQiOjEwMDAwMCwic3RhdHVzIjoiQ09NUExFVEVEIiwicGFpZEF0IjoiMjAyNi0xMi0wMVQxNzoyNDowNS44NzZaIiwiYmFsYW5jZUJlZm9yZSI6MTAwMDAwMDAwMCwiYmFsYW5jZUFmdGVyIjo5OTk5MDAwMDAsImNvbmNlcnRJZCI6MSwic2NoZWR1bGVJZCI6M30sIm1ldGEiOnsidmFsdWVzIjp7InBhaWRBdCI6WyJEYXRlIl19LCJ2IjoxfX0=', 'base64'), 'UTF8'), "completed_at" = (now() + interval '0 milliseconds') where "user_id" = :user and "procedure" = 'payments.pay' and "key" = ('pgbench-pay-' || :g) and "state" = 'IN_PROGRESS' and "owner" = ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid;
commit;
