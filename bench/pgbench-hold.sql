\set g :i * 20 + :client_id
\set i :i + 1
\set sched 1 + :g / 1000
\set seat :g % 1000 + 1
\set user 1 + :g % 1999
INSERT INTO idempotency_keys (user_id, procedure, key, request_hash, state, owner, locked_until, created_at)
    VALUES (:user, 'reservations.hold', ('pgbench-hold-' || :g), '4XQ-iWxDhByiZi6AiVFUgBSZNaqGxMwzAK_x34h0qc8', 'IN_PROGRESS', ('a' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '15000 milliseconds'), (now() + interval '0 milliseconds'))
    ON CONFLICT DO NOTHING RETURNING owner;
\startpipeline
begin;

    WITH show AS MATERIALIZED (SELECT id FROM schedules WHERE id = :sched FOR KEY SHARE)
    SELECT u.id FROM show CROSS JOIN LATERAL (SELECT id FROM users WHERE id = :user FOR UPDATE) u;
\endpipeline

    WITH owned AS (SELECT coalesce(sum(seat_count), 0)::int AS n FROM reservations
    WHERE user_id = :user AND schedule_id = :sched AND (status = 'PAID' OR (status = 'HELD' AND hold_expires_at > (now() + interval '0 milliseconds')))),
    claimed AS (
      UPDATE seats SET reservation_id = lpad(to_hex(:g::bigint), 32, '0')::uuid, held_until = LEAST((now() + interval '300000 milliseconds')::timestamptz, (SELECT starts_at FROM schedules WHERE id = :sched))
      WHERE schedule_id = :sched AND schedule_id IN (SELECT id FROM schedules WHERE concert_id = 1) AND seat_number = ANY(ARRAY[:seat]::int[])
        AND sold_at IS NULL AND (reservation_id IS NULL OR held_until <= (now() + interval '0 milliseconds'))
        AND (SELECT n FROM owned) + 1 <= 4
      RETURNING seat_number, grade, price
    ),
    whole AS (SELECT count(*) = 1 AS ok, coalesce(sum(price), 0) AS total FROM claimed),
    reservation AS (
      INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at)
      SELECT lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, :sched, 'HELD', total, 1, LEAST((now() + interval '300000 milliseconds')::timestamptz, (SELECT starts_at FROM schedules WHERE id = :sched)), (now() + interval '0 milliseconds') FROM whole WHERE ok
    ),
    reservation_seat AS (
      INSERT INTO reservation_seats (reservation_id, schedule_id, seat_number, grade, price)
      SELECT lpad(to_hex(:g::bigint), 32, '0')::uuid, :sched, seat_number, grade, price FROM claimed WHERE (SELECT ok FROM whole)
    )
    SELECT o.n AS owned, sc.concert_id, c.title, sc.starts_at, cl.seat_number, cl.grade, cl.price,
      (now() + interval '0 milliseconds')::timestamptz AS at, LEAST((now() + interval '300000 milliseconds')::timestamptz, sc.starts_at) AS held_until,
      sc.booking_opens_at <= (now() + interval '0 milliseconds') AS opened, sc.starts_at <= (now() + interval '0 milliseconds') AS started
    FROM owned o
    JOIN schedules sc ON sc.id = :sched
    JOIN concerts c ON c.id = sc.concert_id
    LEFT JOIN claimed cl ON true
    ORDER BY cl.seat_number;
\startpipeline
/* then commit */
    WITH live AS (SELECT (SELECT cancelled_at IS NULL FROM schedules WHERE id = :sched) AS ok),
    e AS (
      INSERT INTO outbox_events (id, type, reservation_id, schedule_id, ordering_key, data, created_at)
      SELECT ('a' || lpad(to_hex(:g::bigint), 31, '0'))::uuid::uuid, 'reservation.held', lpad(to_hex(:g::bigint), 32, '0')::uuid::uuid, :sched::bigint, lpad(to_hex(:g::bigint), 32, '0')::uuid,
              convert_from(decode('eyJyZXNlcnZhdGlvbiI6eyJyZXNlcnZhdGlvbklkIjoiYmM0OTY1MjQtNmExNS00MjZmLWE4YmQtNzdhYTI1Njc1OWMxIiwidXNlcklkIjoyMDAwLCJjb25jZXJ0SWQiOjEsImNvbmNlcnRUaXRsZSI6InBnYmVuY2ggcmVmZXJlbmNlIiwic2NoZWR1bGVJZCI6MjEsInN0YXJ0c0F0IjoiMjAyNy0wMS0wNFQxNjo1MzozNC4yODVaIiwic2VhdHMiOlt7InNlYXROdW1iZXIiOjcsImdyYWRlIjoiUiIsInByaWNlIjoxMDAwMDB9XSwidG90YWxQcmljZSI6MTAwMDAwLCJzdGF0dXMiOiJIRUxEIiwic291cmNlIjoiUVVFVUUiLCJob2xkRXhwaXJlc0F0IjoiMjAyNi0xMi0wNVQxNjo1ODozNC4yODVaIiwiY3JlYXRlZEF0IjoiMjAyNi0xMi0wNVQxNjo1MzozNC4yODVaIiwicGFpZEF0IjpudWxsLCJyZWZ1bmRlZEF0IjpudWxsfX0=', 'base64'), 'UTF8')::jsonb, (now() + interval '0 milliseconds')::timestamptz FROM live WHERE ok
      RETURNING id, seq, ordering_key, created_at
    ),
    d AS (
      INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, next_attempt_at, created_at)
      SELECT w.id, e.id, e.seq, e.ordering_key, 'PENDING', e.created_at, e.created_at
      FROM e CROSS JOIN webhook_endpoints w
      WHERE w.deleted_at IS NULL AND w.disabled_at IS NULL AND 'reservation.held' = ANY (w.events)
    ),
    along AS (
    UPDATE idempotency_keys SET state = 'DONE', response = convert_from(decode('eyJqc29uIjp7InJlc2VydmF0aW9uSWQiOiJiYzQ5NjUyNC02YTE1LTQyNmYtYThiZC03N2FhMjU2NzU5YzEiLCJjb25jZXJ0SWQiOjEsImNvbmNlcnRUaXRsZSI6InBnYmVuY2ggcmVmZXJlbmNlIiwic2NoZWR1bGVJZCI6MjEsInN0YXJ0c0F0IjoiMjAyNy0wMS0wNFQxNjo1MzozNC4yODVaIiwic2VhdHMiOlt7InNlYXROdW1iZXIiOjcsImdyYWRlIjoiUiIsInByaWNlIjoxMDAwMDB9XSwidG90YWxQcmljZSI6MTAwMDAwLCJzdGF0dXMiOiJIRUxEIiwiaG9sZEV4cGlyZXNBdCI6IjIwMjYtMTItMDVUMTY6NTg6MzQuMjg1WiIsInNvdXJjZSI6IlFVRVVFIiwiY3JlYXRlZEF0IjoiMjAyNi0xMi0wNVQxNjo1MzozNC4yODVaIiwicGFpZEF0IjpudWxsLCJyZWZ1bmRlZEF0IjpudWxsfSwibWV0YSI6eyJ2YWx1ZXMiOnsic3RhcnRzQXQiOlsiRGF0ZSJdLCJob2xkRXhwaXJlc0F0IjpbIkRhdGUiXSwiY3JlYXRlZEF0IjpbIkRhdGUiXX0sInYiOjF9fQ==', 'base64'), 'UTF8'), completed_at = (now() + interval '0 milliseconds')
    WHERE user_id = :user AND procedure = 'reservations.hold' AND key = ('pgbench-hold-' || :g) AND state = 'IN_PROGRESS' AND owner = ('a' || lpad(to_hex(:g::bigint), 31, '0'))::uuid
    RETURNING 1)
    SELECT ok AS live, EXISTS (SELECT FROM along) AS along, CASE WHEN ok IS NOT TRUE THEN concert_abort('SCHEDULE_CANCELLED') WHEN EXISTS (SELECT FROM along) IS FALSE THEN concert_abort('SUPERSEDED') END AS refused FROM live;
commit;
\endpipeline
