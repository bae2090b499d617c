\set g :i * 20 + :client_id
\set i :i + 1
\set sched 1 + :g / 1000
\set seat :g % 1000 + 1
\set user 1 + :g % 1999
INSERT INTO idempotency_keys (user_id, procedure, key, request_hash, state, owner, locked_until, created_at)
    VALUES (:user, 'payments.pay', ('pgbench-pay-' || :g), '9LVps_evS6uWBL-OSHoeWFD1FP5O_vsn_1-1bRzOWpI', 'IN_PROGRESS', ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, (now() + interval '15000 milliseconds'), (now() + interval '0 milliseconds'))
    ON CONFLICT DO NOTHING RETURNING owner;
SELECT r.id, r.user_id, r.schedule_id, r.total_price, r.hold_expires_at, r.created_at, r.paid_at, r.refunded_at, r.source, sc.concert_id, sc.starts_at, c.title,
      CASE WHEN r.status = 'HELD' AND r.hold_expires_at <= (now() + interval '0 milliseconds') THEN 'EXPIRED' ELSE r.status END AS status,
      (SELECT coalesce(json_agg(json_build_object('seatNumber', rs.seat_number, 'grade', rs.grade, 'price', rs.price) ORDER BY rs.seat_number), '[]') FROM reservation_seats AS rs WHERE rs.reservation_id = r.id) AS seats FROM reservations AS r INNER JOIN schedules AS sc ON sc.id = r.schedule_id INNER JOIN concerts AS c ON c.id = sc.concert_id
    WHERE r.id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND r.user_id = :user;
\startpipeline
begin;
/* with next */
    WITH r AS (
      SELECT status, total_price, seat_count, hold_expires_at, schedule_id, source FROM reservations WHERE id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND user_id = :user FOR UPDATE
    )
    SELECT r.*, u.balance, r.hold_expires_at <= (now() + interval '0 milliseconds') AS lapsed
    FROM r CROSS JOIN LATERAL (SELECT balance FROM users WHERE id = :user FOR UPDATE) u;
/* with next */
    WITH sold AS (
      UPDATE seats SET sold_at = (now() + interval '0 milliseconds'), held_until = NULL
      WHERE reservation_id = lpad(to_hex(:g::bigint), 32, '0')::uuid AND schedule_id IN (SELECT id FROM schedules WHERE concert_id = 1) AND sold_at IS NULL AND held_until > (now() + interval '0 milliseconds')
      RETURNING schedule_id, seat_number
    ),
    whole AS (SELECT count(*) = 1 AND (SELECT balance >= 100000::bigint FROM users WHERE id = :user) AS ok FROM sold),
    debit AS (
      UPDATE users SET balance = balance - 100000::bigint, updated_at = (now() + interval '0 milliseconds')
      WHERE id = :user AND (SELECT ok FROM whole)
      RETURNING balance
    ),
    payment AS (
      INSERT INTO payments (id, reservation_id, user_id, amount, status, balance_before, balance_after, created_at)
      SELECT ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid, lpad(to_hex(:g::bigint), 32, '0')::uuid, :user, 100000::bigint, 'COMPLETED', balance + 100000::bigint, balance, (now() + interval '0 milliseconds')
      FROM debit
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
    SELECT (SELECT count(*) FROM sold)::int AS sold, (SELECT balance FROM debit) AS balance, (now() + interval '0 milliseconds')::timestamptz AS paid_at,
      sc.cancelled_at IS NOT NULL AS show_cancelled, sc.starts_at,
      sc.starts_at <= (SELECT hold_expires_at FROM reservations WHERE id = lpad(to_hex(:g::bigint), 32, '0')::uuid) AS ended_by_start
    FROM schedules sc WHERE sc.id = :sched;
/* then commit */
    WITH live AS (SELECT true AS ok),
    subject AS (SELECT jsonb_build_object('reservation', r.a::jsonb || jsonb_build_object('userId', r.user_id),
        'payment', jsonb_build_object('paymentId', p.id, 'amount', p.amount, 'paidAt', concert_iso(p.created_at), 'balanceAfter', p.balance_after)) AS data,
      p.created_at AS at,
      json_build_object('json', json_build_object('paymentId', p.id, 'reservationId', p.reservation_id, 'amount', p.amount, 'status', p.status,
        'paidAt', concert_iso(p.created_at), 'balanceBefore', p.balance_before, 'balanceAfter', p.balance_after, 'concertId', r.concert_id,
        'scheduleId', r.schedule_id, 'paidWith', json_build_object('concertId', 1::bigint, 'tokenId', 'sBZs28dPK8Uo9sfR4LCGmg'::text)), 'meta', json_build_object('values', json_build_object('paidAt', json_build_array('Date')), 'v', 1))::text AS stored
    FROM payments p CROSS JOIN (SELECT r.user_id, r.created_at, sc.concert_id, r.schedule_id, json_build_object(
        'reservationId', r.id, 'concertId', sc.concert_id, 'concertTitle', c.title, 'scheduleId', r.schedule_id, 'startsAt', concert_iso(sc.starts_at),
        'seats', (SELECT json_agg(json_build_object('seatNumber', rs.seat_number, 'grade', rs.grade, 'price', rs.price) ORDER BY rs.seat_number)
                  FROM reservation_seats rs WHERE rs.reservation_id = r.id),
        'totalPrice', r.total_price, 'status', r.status, 'holdExpiresAt', concert_iso(r.hold_expires_at), 'source', r.source,
        'createdAt', concert_iso(r.created_at), 'paidAt', concert_iso(r.paid_at), 'refundedAt', concert_iso(r.refunded_at)) AS a
      FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id JOIN concerts c ON c.id = sc.concert_id
      WHERE r.id = lpad(to_hex(:g::bigint), 32, '0')::uuid::uuid) r
    WHERE p.id = ('b' || lpad(to_hex(:g::bigint), 31, '0'))::uuid::uuid),
    e AS (
      INSERT INTO outbox_events (id, type, reservation_id, schedule_id, ordering_key, data, created_at)
      SELECT ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid::uuid, 'payment.completed', lpad(to_hex(:g::bigint), 32, '0')::uuid::uuid, :sched::bigint, lpad(to_hex(:g::bigint), 32, '0')::uuid, data, at
      FROM subject, live WHERE ok
      RETURNING id, seq, ordering_key, created_at
    ),
    d AS (
      INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, ordering_key, status, next_attempt_at, created_at)
      SELECT w.id, e.id, e.seq, e.ordering_key, 'PENDING', e.created_at, e.created_at
      FROM e CROSS JOIN webhook_endpoints w
      WHERE w.deleted_at IS NULL AND w.disabled_at IS NULL AND 'payment.completed' = ANY (w.events)
    ),
    along AS (
    UPDATE idempotency_keys SET state = 'DONE', response = (SELECT stored FROM subject), completed_at = (now() + interval '0 milliseconds')
    WHERE user_id = :user AND procedure = 'payments.pay' AND key = ('pgbench-pay-' || :g) AND state = 'IN_PROGRESS' AND owner = ('c' || lpad(to_hex(:g::bigint), 31, '0'))::uuid AND (SELECT stored FROM subject) IS NOT NULL
    RETURNING 1)
    SELECT EXISTS (SELECT FROM along) AS along, CASE WHEN NOT EXISTS (SELECT FROM subject) THEN concert_abort('NOT_WRITTEN')
      WHEN ok IS NOT TRUE THEN concert_abort('SCHEDULE_CANCELLED') WHEN NOT EXISTS (SELECT FROM along) THEN concert_abort('SUPERSEDED') END AS refused
    FROM live;
commit;
\endpipeline
