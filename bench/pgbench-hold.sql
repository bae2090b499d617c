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
/* with next */
    WITH show AS MATERIALIZED (SELECT id FROM schedules WHERE id = :sched FOR KEY SHARE)
    SELECT u.id FROM show CROSS JOIN LATERAL (SELECT id FROM users WHERE id = :user FOR UPDATE) u;
/* with next */
    WITH show AS MATERIALIZED (SELECT id, concert_id, starts_at, booking_opens_at FROM schedules WHERE id = :sched),
    holder AS (SELECT EXISTS (SELECT FROM users WHERE id = :user) AS found),
    owned AS (SELECT coalesce(sum(seat_count), 0)::int AS n FROM reservations
    WHERE user_id = :user AND schedule_id = :sched AND (status = 'PAID' OR (status = 'HELD' AND hold_expires_at > (now() + interval '0 milliseconds')))),
    claimed AS (
      UPDATE seats SET reservation_id = lpad(to_hex(:g::bigint), 32, '0')::uuid, held_until = LEAST((now() + interval '300000 milliseconds')::timestamptz, (SELECT starts_at FROM show))
      WHERE schedule_id = :sched AND schedule_id IN (SELECT id FROM show WHERE concert_id = 1) AND seat_number IN (:seat)
        AND sold_at IS NULL AND (reservation_id IS NULL OR held_until <= (now() + interval '0 milliseconds'))
        AND (SELECT n FROM owned) + 1 <= 4 AND (SELECT found FROM holder)
        AND (SELECT booking_opens_at <= (now() + interval '0 milliseconds') AND starts_at > (now() + interval '0 milliseconds') FROM show)
      RETURNING seat_number, grade, price
    ),
    whole AS (SELECT count(*) = 1 AS ok, coalesce(sum(price), 0) AS total FROM claimed),
    reservation AS (
      INSERT INTO reservations (id, user_id, schedule_id, status, total_price, seat_count, hold_expires_at, created_at)
      SELECT lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, :sched, 'HELD', total, 1, LEAST((now() + interval '300000 milliseconds')::timestamptz, (SELECT starts_at FROM show)), (now() + interval '0 milliseconds') FROM whole WHERE ok
    ),
    reservation_seat AS (
      INSERT INTO reservation_seats (reservation_id, schedule_id, seat_number, grade, price)
      SELECT lpad(to_hex(:g::bigint), 32, '0')::uuid, :sched, seat_number, grade, price FROM claimed WHERE (SELECT ok FROM whole)
    )
    SELECT o.n AS owned, sc.concert_id, c.title, sc.starts_at, cl.seat_number, cl.grade, cl.price,
      (now() + interval '0 milliseconds')::timestamptz AS at, LEAST((now() + interval '300000 milliseconds')::timestamptz, sc.starts_at) AS held_until,
      sc.booking_opens_at <= (now() + interval '0 milliseconds') AS opened, sc.starts_at <= (now() + interval '0 milliseconds') AS started, (SELECT found FROM holder) AS holder
    FROM owned o
    CROSS JOIN show sc
    JOIN concerts c ON c.id = sc.concert_id
    LEFT JOIN claimed cl ON true
    ORDER BY cl.seat_number;
/* then commit */
    WITH live AS (SELECT (SELECT cancelled_at IS NULL FROM schedules WHERE id = :sched) AS ok),
    subject AS (SELECT jsonb_build_object('reservation', a::jsonb || jsonb_build_object('userId', user_id)) AS data, created_at AS at,
      json_build_object('json', a, 'meta', json_build_object('values',
        json_build_object('startsAt', json_build_array('Date'), 'holdExpiresAt', json_build_array('Date'), 'createdAt', json_build_array('Date')), 'v', 1))::text AS stored
    FROM (SELECT r.user_id, r.created_at, sc.concert_id, r.schedule_id, json_build_object(
        'reservationId', r.id, 'concertId', sc.concert_id, 'concertTitle', c.title, 'scheduleId', r.schedule_id, 'startsAt', concert_iso(sc.starts_at),
        'seats', (SELECT json_agg(json_build_object('seatNumber', rs.seat_number, 'grade', rs.grade, 'price', rs.price) ORDER BY rs.seat_number)
                  FROM reservation_seats rs WHERE rs.reservation_id = r.id),
        'totalPrice', r.total_price, 'status', r.status, 'holdExpiresAt', concert_iso(r.hold_expires_at), 'source', r.source,
        'createdAt', concert_iso(r.created_at), 'paidAt', concert_iso(r.paid_at), 'refundedAt', concert_iso(r.refunded_at)) AS a
      FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id JOIN concerts c ON c.id = sc.concert_id
      WHERE r.id = lpad(to_hex(:g::bigint), 32, '0')::uuid::uuid) held),
    e AS (
      INSERT INTO outbox_events (id, type, reservation_id, schedule_id, ordering_key, data, created_at)
      SELECT ('a' || lpad(to_hex(:g::bigint), 31, '0'))::uuid::uuid, 'reservation.held', lpad(to_hex(:g::bigint), 32, '0')::uuid::uuid, :sched::bigint, lpad(to_hex(:g::bigint), 32, '0')::uuid, data, at
      FROM subject, live WHERE ok
      RETURNING id, seq, ordering_key, created_at
    ),
    d AS (
      INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, next_attempt_at, created_at)
      SELECT w.id, e.id, e.seq, e.ordering_key, 'PENDING', e.created_at, e.created_at
      FROM e CROSS JOIN webhook_endpoints w
      WHERE w.deleted_at IS NULL AND w.disabled_at IS NULL AND 'reservation.held' = ANY (w.events)
    ),
    along AS (
    UPDATE idempotency_keys SET state = 'DONE', response = (SELECT stored FROM subject), completed_at = (now() + interval '0 milliseconds')
    WHERE user_id = :user AND procedure = 'reservations.hold' AND key = ('pgbench-hold-' || :g) AND state = 'IN_PROGRESS' AND owner = ('a' || lpad(to_hex(:g::bigint), 31, '0'))::uuid AND (SELECT stored FROM subject) IS NOT NULL
    RETURNING 1)
    SELECT EXISTS (SELECT FROM along) AS along, CASE WHEN NOT EXISTS (SELECT FROM subject) THEN concert_abort('NOT_WRITTEN')
      WHEN ok IS NOT TRUE THEN concert_abort('SCHEDULE_CANCELLED') WHEN NOT EXISTS (SELECT FROM along) THEN concert_abort('SUPERSEDED') END AS refused
    FROM live;
commit;
\endpipeline
