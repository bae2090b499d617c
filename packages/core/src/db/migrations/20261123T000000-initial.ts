import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await run(db, `
    CREATE TABLE users (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
      balance bigint NOT NULL DEFAULT 0 CONSTRAINT users_balance_non_negative CHECK (balance >= 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE concerts (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
      venue text NOT NULL DEFAULT '' CHECK (length(venue) <= 200),
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE schedules (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      concert_id bigint NOT NULL REFERENCES concerts (id),
      starts_at timestamptz NOT NULL,
      booking_opens_at timestamptz NOT NULL,
      seat_count integer NOT NULL CHECK (seat_count BETWEEN 1 AND 1000),
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK (booking_opens_at <= starts_at)
    );
    CREATE INDEX schedules_concert_id_idx ON schedules (concert_id, starts_at);

    CREATE TABLE reservations (
      id uuid PRIMARY KEY,
      user_id bigint NOT NULL REFERENCES users (id),
      schedule_id bigint NOT NULL REFERENCES schedules (id),
      status text NOT NULL CHECK (status IN ('HELD', 'PAID', 'EXPIRED', 'CANCELLED')),
      total_price bigint NOT NULL CHECK (total_price >= 0),
      seat_count integer NOT NULL CHECK (seat_count BETWEEN 1 AND 4),
      hold_expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL,
      paid_at timestamptz,
      cancelled_at timestamptz,
      CHECK ((status = 'PAID') = (paid_at IS NOT NULL)),
      CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL))
    );
    CREATE INDEX reservations_user_idx ON reservations (user_id, created_at DESC);
    CREATE INDEX reservations_live_idx ON reservations (hold_expires_at) WHERE status = 'HELD';

    CREATE TABLE seats (
      schedule_id bigint NOT NULL REFERENCES schedules (id),
      seat_number integer NOT NULL CHECK (seat_number >= 1),
      grade text NOT NULL CHECK (length(grade) BETWEEN 1 AND 20),
      price bigint NOT NULL CHECK (price >= 0),
      reservation_id uuid,
      held_until timestamptz,
      sold_at timestamptz,
      PRIMARY KEY (schedule_id, seat_number),
      -- One row per seat and one claim column: a seat cannot belong to two live reservations.
      -- Free: no claim. Held: a claim with an expiry. Sold: a claim with a sale time, no expiry.
      CONSTRAINT seats_claim_state CHECK (
        (reservation_id IS NULL AND held_until IS NULL AND sold_at IS NULL)
        OR (reservation_id IS NOT NULL AND (held_until IS NULL) <> (sold_at IS NULL))
      )
    );
    CREATE INDEX seats_reservation_idx ON seats (reservation_id) WHERE reservation_id IS NOT NULL;

    -- What a reservation asked for, kept after it ends.
    CREATE TABLE reservation_seats (
      reservation_id uuid NOT NULL REFERENCES reservations (id),
      schedule_id bigint NOT NULL,
      seat_number integer NOT NULL,
      grade text NOT NULL,
      price bigint NOT NULL CHECK (price >= 0),
      PRIMARY KEY (reservation_id, seat_number),
      UNIQUE (reservation_id, schedule_id, seat_number),
      FOREIGN KEY (schedule_id, seat_number) REFERENCES seats (schedule_id, seat_number)
    );

    -- A seat's claim must name a reservation that asked for that very seat.
    ALTER TABLE seats ADD CONSTRAINT seats_claim_fk
      FOREIGN KEY (reservation_id, schedule_id, seat_number)
      REFERENCES reservation_seats (reservation_id, schedule_id, seat_number)
      DEFERRABLE INITIALLY DEFERRED;

    CREATE TABLE payments (
      id uuid PRIMARY KEY,
      reservation_id uuid NOT NULL UNIQUE REFERENCES reservations (id),
      user_id bigint NOT NULL REFERENCES users (id),
      amount bigint NOT NULL CHECK (amount >= 0),
      status text NOT NULL CHECK (status = 'COMPLETED'),
      balance_before bigint NOT NULL,
      balance_after bigint NOT NULL CHECK (balance_after >= 0),
      created_at timestamptz NOT NULL,
      CHECK (balance_before - amount = balance_after)
    );

    -- A sold seat: the primary key makes selling one seat twice impossible, whatever the code does.
    CREATE TABLE tickets (
      schedule_id bigint NOT NULL,
      seat_number integer NOT NULL,
      reservation_id uuid NOT NULL,
      user_id bigint NOT NULL REFERENCES users (id),
      payment_id uuid NOT NULL REFERENCES payments (id),
      created_at timestamptz NOT NULL,
      PRIMARY KEY (schedule_id, seat_number),
      FOREIGN KEY (reservation_id, schedule_id, seat_number)
        REFERENCES reservation_seats (reservation_id, schedule_id, seat_number)
    );
    CREATE INDEX tickets_reservation_idx ON tickets (reservation_id);

    CREATE TABLE ledger_entries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      user_id bigint NOT NULL REFERENCES users (id),
      kind text NOT NULL CHECK (kind IN ('CHARGE', 'PAYMENT', 'REFUND')),
      source text NOT NULL CHECK (source IN ('USER', 'ADMIN', 'SYSTEM')),
      amount bigint NOT NULL,
      balance_after bigint NOT NULL CHECK (balance_after >= 0),
      reservation_id uuid REFERENCES reservations (id),
      payment_id uuid UNIQUE REFERENCES payments (id),
      created_at timestamptz NOT NULL,
      CHECK ((kind = 'PAYMENT' AND amount <= 0 AND payment_id IS NOT NULL) OR (kind <> 'PAYMENT' AND amount > 0))
    );
    CREATE INDEX ledger_entries_user_idx ON ledger_entries (user_id, id DESC);
    CREATE INDEX ledger_entries_charges_idx ON ledger_entries (user_id, created_at) WHERE kind = 'CHARGE' AND source = 'USER';

    CREATE TABLE idempotency_keys (
      user_id bigint NOT NULL,
      procedure text NOT NULL,
      key text NOT NULL,
      request_hash text NOT NULL,
      state text NOT NULL CHECK (state IN ('IN_PROGRESS', 'DONE')),
      owner uuid NOT NULL,
      response text,
      locked_until timestamptz NOT NULL,
      created_at timestamptz NOT NULL,
      completed_at timestamptz,
      PRIMARY KEY (user_id, procedure, key),
      CHECK ((state = 'DONE') = (response IS NOT NULL))
    );
    CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

    CREATE TABLE app_meta (
      key text PRIMARY KEY,
      value text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
  `);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await run(db, `
    DROP TABLE app_meta, idempotency_keys, ledger_entries, tickets, payments;
    ALTER TABLE seats DROP CONSTRAINT seats_claim_fk;
    DROP TABLE reservation_seats, seats, reservations, schedules, concerts, users;
  `);
}

/** One statement at a time: PGlite's extended protocol takes a single statement per query. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function run(db: Kysely<any>, ddl: string): Promise<void> {
  for (const statement of ddl.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) {
    await sql.raw(statement).execute(db);
  }
}
