import type { ReservationStatus, WebhookEventType } from './schemas.ts';

/** What the procedures return: the contract's shapes. */

export interface Schedule {
  scheduleId: number;
  concertId: number;
  startsAt: Date;
  bookingOpensAt: Date;
  totalSeats: number;
  availableSeats: number;
}

export interface ConcertSummary {
  concertId: number;
  title: string;
  venue: string;
  scheduleCount: number;
}

export interface ConcertDetail {
  concertId: number;
  title: string;
  venue: string;
  schedules: Schedule[];
}

export type SeatStatus = 'AVAILABLE' | 'HELD' | 'SOLD';

export interface SeatMap {
  concertId: number;
  scheduleId: number;
  startsAt: Date;
  seats: Array<{ seatNumber: number; grade: string; price: number; status: SeatStatus }>;
}

export interface Reservation {
  reservationId: string;
  concertId: number;
  concertTitle: string;
  scheduleId: number;
  startsAt: Date;
  seats: Array<{ seatNumber: number; grade: string; price: number }>;
  totalPrice: number;
  status: ReservationStatus;
  holdExpiresAt: Date;
  source: 'QUEUE' | 'WAITLIST';
  createdAt: Date;
  paidAt: Date | null;
  refundedAt: Date | null;
}

export interface Balance {
  userId: number;
  balance: number;
  updatedAt: Date;
}

export interface ChargeResult {
  userId: number;
  charged: number;
  balance: number;
  chargedAt: Date;
}

export interface LedgerEntry {
  entryId: number;
  kind: 'CHARGE' | 'PAYMENT' | 'REFUND';
  amount: number;
  balanceAfter: number;
  reservationId: string | null;
  createdAt: Date;
}

export interface History {
  entries: LedgerEntry[];
  nextCursor: string | null;
}

export interface PaymentResult {
  paymentId: string;
  reservationId: string;
  amount: number;
  status: 'COMPLETED';
  paidAt: Date;
  balanceBefore: number;
  balanceAfter: number;
  queueTokenExpired: boolean;
}

export interface HoldSummary {
  reservationId: string;
  userId: number;
  scheduleId: number;
  seatNumbers: number[];
  totalPrice: number;
  holdExpiresAt: Date;
  source: 'QUEUE' | 'WAITLIST';
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface WaitlistEntry {
  entryId: number;
  scheduleId: number;
  seatCount: number;
  status: 'WAITING' | 'OFFERED' | 'ACCEPTED' | 'LAPSED' | 'LEFT';
  position: number | null;
  offer: { reservationId: string; seatNumbers: number[]; expiresAt: Date } | null;
  createdAt: Date;
}

export interface AdminConcert {
  concertId: number;
  title: string;
  venue: string;
  schedules: Array<{
    scheduleId: number;
    startsAt: Date;
    bookingOpensAt: Date;
    cancelled: boolean;
    available: number;
    held: number;
    sold: number;
    revenue: number;
  }>;
}

export interface ScheduleCancelResult {
  scheduleId: number;
  refunded: number;
  released: number;
}

export interface Webhook {
  webhookId: number;
  url: string;
  events: WebhookEventType[];
  description: string;
  disabled: boolean;
  lastDelivery: { eventId: string; type: WebhookEventType; status: 'PENDING' | 'DELIVERED' | 'FAILED'; httpStatus: number | null; at: Date | null } | null;
}

export interface WebhookDelivery {
  eventId: string;
  type: WebhookEventType;
  attempt: number;
  status: 'PENDING' | 'DELIVERED' | 'FAILED';
  httpStatus: number | null;
  error: string | null;
  at: Date | null;
  nextAttemptAt: Date | null;
}

export interface AuditReport {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
}
