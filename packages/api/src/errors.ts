import { type AppCode, AppError } from '@concert/core';
import { TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import type { TRPC_ERROR_CODE_KEY, TRPC_ERROR_CODE_NUMBER } from '@trpc/server/rpc';

/** The contract's error table, made total: a new AppCode without a row here fails to compile. */
export const TRPC_CODE_BY_APP_CODE = {
  INVALID_INPUT: 'BAD_REQUEST',
  INVALID_AMOUNT: 'BAD_REQUEST',
  CHARGE_LIMIT_EXCEEDED: 'BAD_REQUEST',
  IDENTITY_REQUIRED: 'UNAUTHORIZED',
  TOKEN_INVALID: 'UNAUTHORIZED',
  TOKEN_EXPIRED: 'UNAUTHORIZED',
  ADMIN_KEY_INVALID: 'UNAUTHORIZED',
  INSUFFICIENT_BALANCE: 'PAYMENT_REQUIRED',
  QUEUE_NOT_ACTIVE: 'FORBIDDEN',
  TOKEN_WRONG_CONCERT: 'FORBIDDEN',
  TICKET_LIMIT_EXCEEDED: 'FORBIDDEN',
  USER_NOT_FOUND: 'NOT_FOUND',
  CONCERT_NOT_FOUND: 'NOT_FOUND',
  SCHEDULE_NOT_FOUND: 'NOT_FOUND',
  SEAT_NOT_FOUND: 'NOT_FOUND',
  RESERVATION_NOT_FOUND: 'NOT_FOUND',
  WAITLIST_ENTRY_NOT_FOUND: 'NOT_FOUND',
  WEBHOOK_NOT_FOUND: 'NOT_FOUND',
  PROCEDURE_NOT_FOUND: 'NOT_FOUND',
  SEAT_UNAVAILABLE: 'CONFLICT',
  ALREADY_PAID: 'CONFLICT',
  IDEMPOTENCY_IN_PROGRESS: 'CONFLICT',
  SEATS_AVAILABLE: 'CONFLICT',
  HOLD_EXPIRED: 'PRECONDITION_FAILED',
  RESERVATION_CANCELLED: 'PRECONDITION_FAILED',
  BOOKING_NOT_OPEN: 'PRECONDITION_FAILED',
  BOOKING_CLOSED: 'PRECONDITION_FAILED',
  SCHEDULE_CANCELLED: 'PRECONDITION_FAILED',
  NOT_REFUNDABLE: 'PRECONDITION_FAILED',
  REFUND_WINDOW_CLOSED: 'PRECONDITION_FAILED',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  IDEMPOTENCY_KEY_REUSED: 'UNPROCESSABLE_CONTENT',
  RATE_LIMITED: 'TOO_MANY_REQUESTS',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  INTERNAL: 'INTERNAL_SERVER_ERROR',
} as const satisfies Record<AppCode, TRPC_ERROR_CODE_KEY>;

/** What every error looks like to a client (`TRPCClientError.shape`; `.data` is `shape.data`). */
export interface AppErrorShape {
  message: string;
  code: TRPC_ERROR_CODE_NUMBER;
  data: {
    code: TRPC_ERROR_CODE_KEY;
    httpStatus: number;
    /** The procedure's path; absent when the error came before one was chosen. */
    path?: string;
    /** The contract's error code. */
    appCode: AppCode;
    /** On INVALID_INPUT: which fields were wrong and why (the first MAX_ISSUES). */
    issues?: Array<{ code: string; path: PropertyKey[]; message: string }>;
    /** How many issues past the first MAX_ISSUES were left out. */
    issuesOmitted?: number;
    /** Extra facts some errors carry (e.g. retryAfterMs on RATE_LIMITED). */
    details?: Record<string, unknown>;
  };
}

/**
 * For errors raised by tRPC itself or by the HTTP edge (bad JSON, unknown procedure, wrong
 * method or content type, oversized body, a request that never finished arriving). Every error
 * our own code raises carries an AppError, so anything else left here is a bug: INTERNAL.
 */
const APP_CODE_BY_TRPC_CODE: Partial<Record<TRPC_ERROR_CODE_KEY, AppCode>> = {
  PARSE_ERROR: 'INVALID_INPUT',
  BAD_REQUEST: 'INVALID_INPUT',
  METHOD_NOT_SUPPORTED: 'INVALID_INPUT',
  TIMEOUT: 'INVALID_INPUT',
  CLIENT_CLOSED_REQUEST: 'INVALID_INPUT',
  NOT_FOUND: 'PROCEDURE_NOT_FOUND',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  TOO_MANY_REQUESTS: 'RATE_LIMITED',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
};

/**
 * How many of zod's issues an error carries. zod reports every bad element of an array: an
 * input of 100,000 bad seat numbers was answered with 13 MB of issues after seconds of
 * JSON.stringify; the first few say what is wrong as well as all of them would.
 */
export const MAX_ISSUES = 20;

/** zod's issues as an error carries them: the first MAX_ISSUES, and a count of the rest. */
export function boundedIssues<I>(issues: I[]): { issues: I[]; issuesOmitted?: number } {
  return issues.length > MAX_ISSUES ? { issues: issues.slice(0, MAX_ISSUES), issuesOmitted: issues.length - MAX_ISSUES } : { issues };
}

type Issue = NonNullable<AppErrorShape['data']['issues']>[number];

/**
 * The issues an INVALID_INPUT answer carries: zod's, or, for a field refused after the schema
 * passed (a show in the past, a cursor the server never gave out, an unusable webhook url), one
 * issue at the path the AppError names. The contract has input validation errors carry issues,
 * and clients map their paths to fields, whichever check found the fault.
 */
export function issuesOf(error: TRPCError): { issues: Issue[]; issuesOmitted?: number } | undefined {
  if (error.cause instanceof ZodError) return boundedIssues(error.cause.issues);
  const cause = error.cause;
  if (!(cause instanceof AppError) || cause.code !== 'INVALID_INPUT' || !Array.isArray(cause.details?.path)) return undefined;
  return { issues: [{ code: 'custom', path: cause.details.path as PropertyKey[], message: cause.message }] };
}

export function toTRPCError(err: AppError): TRPCError {
  return new TRPCError({ code: TRPC_CODE_BY_APP_CODE[err.code], message: err.message, cause: err });
}

export function appFail(code: AppCode, message?: string, details?: Record<string, unknown>): never {
  throw toTRPCError(new AppError(code, message, details));
}

export function appCodeOf(error: TRPCError): AppCode {
  if (error.cause instanceof AppError) return error.cause.code;
  return APP_CODE_BY_TRPC_CODE[error.code] ?? 'INTERNAL';
}

/**
 * A REST answer's body (application/problem+json, RFC 9457): what /v1 sends where /trpc sends
 * tRPC's envelope, with the HTTP status it is answered with.
 */
export function problemJson(appCode: AppCode, status: number, detail: string, extra: Record<string, unknown> = {}): string {
  const title = appCode.charAt(0) + appCode.slice(1).toLowerCase().replaceAll('_', ' ');
  return JSON.stringify({ type: `urn:concert:problem:${appCode}`, title, status, detail, appCode, ...extra });
}
