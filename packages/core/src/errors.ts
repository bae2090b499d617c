/**
 * The contract's error table, plus four codes the contract leaves to the server: an unknown
 * procedure, an oversized body, a dependency that is down, and an unexpected failure. Core throws AppError with one of these codes; the API maps each
 * code to its tRPC code in one total table, so a code added here without a mapping fails to compile.
 */
export const APP_CODES = [
  'INVALID_INPUT',
  'INVALID_AMOUNT',
  'CHARGE_LIMIT_EXCEEDED',
  'IDENTITY_REQUIRED',
  'TOKEN_INVALID',
  'TOKEN_EXPIRED',
  'ADMIN_KEY_INVALID',
  'INSUFFICIENT_BALANCE',
  'QUEUE_NOT_ACTIVE',
  'TOKEN_WRONG_CONCERT',
  'TICKET_LIMIT_EXCEEDED',
  'USER_NOT_FOUND',
  'CONCERT_NOT_FOUND',
  'SCHEDULE_NOT_FOUND',
  'SEAT_NOT_FOUND',
  'RESERVATION_NOT_FOUND',
  'WAITLIST_ENTRY_NOT_FOUND',
  'WEBHOOK_NOT_FOUND',
  'PROCEDURE_NOT_FOUND',
  'SEAT_UNAVAILABLE',
  'ALREADY_PAID',
  'IDEMPOTENCY_IN_PROGRESS',
  'SEATS_AVAILABLE',
  'HOLD_EXPIRED',
  'RESERVATION_CANCELLED',
  'BOOKING_NOT_OPEN',
  'BOOKING_CLOSED',
  'SCHEDULE_CANCELLED',
  'NOT_REFUNDABLE',
  'REFUND_WINDOW_CLOSED',
  'IDEMPOTENCY_KEY_REUSED',
  'RATE_LIMITED',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'SERVICE_UNAVAILABLE',
  'INTERNAL',
] as const;

export type AppCode = (typeof APP_CODES)[number];

export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly code: AppCode,
    message?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message ?? code);
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
