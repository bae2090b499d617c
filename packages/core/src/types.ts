import type { ReservationStatus } from './schemas.ts';

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
  createdAt: Date;
  paidAt: Date | null;
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
}

export interface AuditReport {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
}
