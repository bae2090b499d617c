import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { WebhookEventType } from '../schemas.ts';

/** Columns the database fills in. */
type CreatedAt = ColumnType<Date, Date | undefined, never>;

export interface UserTable {
  id: Generated<number>;
  name: string;
  balance: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export interface ConcertTable {
  id: Generated<number>;
  title: string;
  venue: string;
  created_at: CreatedAt;
}

export interface ScheduleTable {
  id: Generated<number>;
  concert_id: number;
  starts_at: Date;
  booking_opens_at: Date;
  seat_count: number;
  cancelled_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** When its last seat was sold, once concert.sold_out was written for it; cleared by a refund. */
  sold_out_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: CreatedAt;
}

export interface SeatTable {
  schedule_id: number;
  seat_number: number;
  grade: string;
  price: number;
  /** The live claim: the reservation that holds (held_until set) or bought (sold_at set) the seat. */
  reservation_id: string | null;
  held_until: Date | null;
  sold_at: Date | null;
}

export type ReservationStatusColumn = 'HELD' | 'PAID' | 'EXPIRED' | 'CANCELLED' | 'REFUNDED';
export type ReservationSource = 'QUEUE' | 'WAITLIST';

export interface ReservationTable {
  id: string;
  user_id: number;
  schedule_id: number;
  status: ReservationStatusColumn;
  total_price: number;
  seat_count: number;
  hold_expires_at: Date;
  created_at: Date;
  paid_at: Date | null;
  cancelled_at: Date | null;
  refunded_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  source: ColumnType<ReservationSource, ReservationSource | undefined, ReservationSource>;
}

export interface ReservationSeatTable {
  reservation_id: string;
  schedule_id: number;
  seat_number: number;
  grade: string;
  price: number;
}

export interface TicketTable {
  schedule_id: number;
  seat_number: number;
  reservation_id: string;
  user_id: number;
  payment_id: string;
  created_at: Date;
  voided_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface PaymentTable {
  id: string;
  reservation_id: string;
  user_id: number;
  amount: number;
  status: 'COMPLETED';
  balance_before: number;
  balance_after: number;
  created_at: Date;
}

export type LedgerKind = 'CHARGE' | 'PAYMENT' | 'REFUND';

export interface LedgerEntryTable {
  id: Generated<number>;
  user_id: number;
  kind: LedgerKind;
  /** USER for a wallet top-up the user made (counts toward the monthly cap), ADMIN for an operator grant. */
  source: 'USER' | 'ADMIN' | 'SYSTEM';
  amount: number;
  balance_after: number;
  reservation_id: string | null;
  payment_id: string | null;
  refund_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Date;
}

export type RefundReason = 'USER' | 'ADMIN' | 'SCHEDULE_CANCELLED';

export interface RefundTable {
  id: string;
  payment_id: string;
  reservation_id: string;
  user_id: number;
  amount: number;
  reason: RefundReason;
  created_at: Date;
}

export type WaitlistStatus = 'WAITING' | 'OFFERED' | 'ACCEPTED' | 'LAPSED' | 'LEFT';

export interface WaitlistEntryTable {
  id: Generated<number>;
  user_id: number;
  schedule_id: number;
  seat_count: number;
  status: WaitlistStatus;
  reservation_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface OutboxEventTable {
  id: string;
  seq: Generated<number>;
  type: WebhookEventType;
  reservation_id: string | null;
  schedule_id: number | null;
  /** Events with one key are delivered in order (a reservation's id, else its schedule's). */
  ordering_key: string;
  data: ColumnType<unknown, string, string>;
  created_at: Date;
}

export interface WebhookEndpointTable {
  id: Generated<number>;
  url: string;
  events: WebhookEventType[];
  secret: string;
  description: string;
  disabled_at: Date | null;
  disabled_reason: string | null;
  deleted_at: Date | null;
  created_at: Date;
}

export type DeliveryStatus = 'PENDING' | 'DELIVERED' | 'FAILED';

export interface WebhookDeliveryTable {
  id: Generated<number>;
  endpoint_id: number;
  event_id: string;
  event_seq: number;
  ordering_key: string;
  status: DeliveryStatus;
  attempt: ColumnType<number, number | undefined, number>;
  next_attempt_at: Date | null;
  last_http_status: number | null;
  last_error: string | null;
  last_attempt_at: Date | null;
  created_at: Date;
}

export interface IdempotencyKeyTable {
  user_id: number;
  procedure: string;
  key: string;
  request_hash: string;
  state: 'IN_PROGRESS' | 'DONE';
  owner: string;
  response: string | null;
  locked_until: Date;
  created_at: Date;
  completed_at: Date | null;
}

export interface AppMetaTable {
  key: string;
  value: string;
  created_at: CreatedAt;
}

export interface DB {
  users: UserTable;
  concerts: ConcertTable;
  schedules: ScheduleTable;
  seats: SeatTable;
  reservations: ReservationTable;
  reservation_seats: ReservationSeatTable;
  tickets: TicketTable;
  payments: PaymentTable;
  ledger_entries: LedgerEntryTable;
  idempotency_keys: IdempotencyKeyTable;
  app_meta: AppMetaTable;
  refunds: RefundTable;
  waitlist_entries: WaitlistEntryTable;
  outbox_events: OutboxEventTable;
  webhook_endpoints: WebhookEndpointTable;
  webhook_deliveries: WebhookDeliveryTable;
}

export type UserRow = Selectable<UserTable>;
export type ScheduleRow = Selectable<ScheduleTable>;
export type SeatRow = Selectable<SeatTable>;
export type ReservationRow = Selectable<ReservationTable>;
export type LedgerEntryRow = Selectable<LedgerEntryTable>;
export type IdempotencyKeyRow = Selectable<IdempotencyKeyTable>;
export type NewLedgerEntry = Insertable<LedgerEntryTable>;
