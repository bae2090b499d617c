import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// Refunds, cancelled shows, waitlists and the webhook outbox (contract version 2).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await run(db, `
    ALTER TABLE schedules ADD COLUMN cancelled_at timestamptz;

    ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
    ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
      CHECK (status IN ('HELD', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'));
    -- A refunded reservation was paid: it keeps its paid_at.
    ALTER TABLE reservations DROP CONSTRAINT reservations_check;
    ALTER TABLE reservations ADD CONSTRAINT reservations_paid_at_check
      CHECK ((status IN ('PAID', 'REFUNDED')) = (paid_at IS NOT NULL));
    ALTER TABLE reservations ADD COLUMN refunded_at timestamptz;
    ALTER TABLE reservations ADD CONSTRAINT reservations_refunded_at_check
      CHECK ((status = 'REFUNDED') = (refunded_at IS NOT NULL));
    ALTER TABLE reservations ADD COLUMN source text NOT NULL DEFAULT 'QUEUE'
      CONSTRAINT reservations_source_check CHECK (source IN ('QUEUE', 'WAITLIST'));
    CREATE INDEX reservations_schedule_status_idx ON reservations (schedule_id, status);

    -- One refund per payment and per reservation: a second refund cannot be written, whatever the code does.
    CREATE TABLE refunds (
      id uuid PRIMARY KEY,
      payment_id uuid NOT NULL UNIQUE REFERENCES payments (id),
      reservation_id uuid NOT NULL UNIQUE REFERENCES reservations (id),
      user_id bigint NOT NULL REFERENCES users (id),
      amount bigint NOT NULL CHECK (amount >= 0),
      reason text NOT NULL CHECK (reason IN ('USER', 'ADMIN', 'SCHEDULE_CANCELLED')),
      created_at timestamptz NOT NULL
    );
    ALTER TABLE ledger_entries ADD COLUMN refund_id uuid UNIQUE REFERENCES refunds (id);
    ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_refund_check
      CHECK ((kind = 'REFUND') = (refund_id IS NOT NULL));

    -- A voided ticket stays as a record; only live tickets hold their seat.
    ALTER TABLE tickets ADD COLUMN voided_at timestamptz;
    ALTER TABLE tickets DROP CONSTRAINT tickets_pkey;
    ALTER TABLE tickets ADD PRIMARY KEY (reservation_id, seat_number);
    CREATE UNIQUE INDEX tickets_live_seat_idx ON tickets (schedule_id, seat_number) WHERE voided_at IS NULL;

    CREATE TABLE waitlist_entries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      user_id bigint NOT NULL REFERENCES users (id),
      schedule_id bigint NOT NULL REFERENCES schedules (id),
      seat_count integer NOT NULL CHECK (seat_count BETWEEN 1 AND 4),
      status text NOT NULL CHECK (status IN ('WAITING', 'OFFERED', 'ACCEPTED', 'LAPSED', 'LEFT')),
      reservation_id uuid UNIQUE REFERENCES reservations (id),
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      CONSTRAINT waitlist_offer_check CHECK ((status IN ('OFFERED', 'ACCEPTED')) <= (reservation_id IS NOT NULL))
    );
    -- One live entry per user and show.
    CREATE UNIQUE INDEX waitlist_live_idx ON waitlist_entries (user_id, schedule_id) WHERE status IN ('WAITING', 'OFFERED');
    CREATE INDEX waitlist_waiting_idx ON waitlist_entries (schedule_id, id) WHERE status = 'WAITING';
    CREATE INDEX waitlist_user_idx ON waitlist_entries (user_id, id DESC);

    -- The transactional outbox: written in the transaction of the change it describes.
    CREATE TABLE outbox_events (
      id uuid PRIMARY KEY,
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      type text NOT NULL,
      reservation_id uuid,
      schedule_id bigint,
      ordering_key text NOT NULL,
      data jsonb NOT NULL,
      created_at timestamptz NOT NULL
    );
    CREATE INDEX outbox_events_reservation_idx ON outbox_events (reservation_id, type) WHERE reservation_id IS NOT NULL;
    CREATE INDEX outbox_events_schedule_idx ON outbox_events (schedule_id, type) WHERE schedule_id IS NOT NULL;
    CREATE INDEX outbox_events_created_idx ON outbox_events (created_at);

    CREATE TABLE webhook_endpoints (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
      events text[] NOT NULL,
      secret text NOT NULL,
      description text NOT NULL DEFAULT '',
      disabled_at timestamptz,
      disabled_reason text,
      deleted_at timestamptz,
      created_at timestamptz NOT NULL
    );

    CREATE TABLE webhook_deliveries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id),
      event_id uuid NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
      event_seq bigint NOT NULL,
      ordering_key text NOT NULL,
      status text NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
      attempt integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz,
      last_http_status integer,
      last_error text,
      last_attempt_at timestamptz,
      created_at timestamptz NOT NULL,
      UNIQUE (endpoint_id, event_id),
      CHECK ((status = 'PENDING') = (next_attempt_at IS NOT NULL))
    );
    CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING';
    CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (endpoint_id, ordering_key, event_seq) WHERE status = 'PENDING';
    CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);
    CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (created_at);

    -- Changes before this point wrote no events; the audit's outbox check starts here.
    INSERT INTO app_meta (key, value) VALUES ('outbox_since', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  `);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await run(db, `
    DELETE FROM app_meta WHERE key = 'outbox_since';
    DROP TABLE webhook_deliveries, webhook_endpoints, outbox_events, waitlist_entries;
    DELETE FROM tickets WHERE voided_at IS NOT NULL;
    DROP INDEX tickets_live_seat_idx;
    ALTER TABLE tickets DROP CONSTRAINT tickets_pkey;
    ALTER TABLE tickets ADD PRIMARY KEY (schedule_id, seat_number);
    ALTER TABLE tickets DROP COLUMN voided_at;
    ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_refund_check;
    ALTER TABLE ledger_entries DROP COLUMN refund_id;
    DROP TABLE refunds;
    DROP INDEX reservations_schedule_status_idx;
    ALTER TABLE reservations DROP COLUMN source;
    ALTER TABLE reservations DROP CONSTRAINT reservations_refunded_at_check;
    ALTER TABLE reservations DROP COLUMN refunded_at;
    ALTER TABLE reservations DROP CONSTRAINT reservations_paid_at_check;
    ALTER TABLE reservations ADD CONSTRAINT reservations_check CHECK ((status = 'PAID') = (paid_at IS NOT NULL));
    ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
    ALTER TABLE reservations ADD CONSTRAINT reservations_status_check CHECK (status IN ('HELD', 'PAID', 'EXPIRED', 'CANCELLED'));
    ALTER TABLE schedules DROP COLUMN cancelled_at
  `);
}

/** One statement at a time: PGlite's extended protocol takes a single statement per query. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function run(db: Kysely<any>, ddl: string): Promise<void> {
  for (const statement of ddl.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) {
    await sql.raw(statement).execute(db);
  }
}
