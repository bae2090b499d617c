/** What `--json` prints on stderr when a command fails: the contract's error envelope. */
export interface ErrorPayload {
  code: string;
  appCode: string | null;
  message: string;
  issues?: Array<{ path: string; message: string }>;
}

/** Bad usage (a missing or malformed argument, a missing identity): exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly hint?: string,
    readonly issues?: Array<{ path: string; message: string }>,
  ) {
    super(message);
  }
}

/** A failure the CLI itself detects about the world (a place in line that expired, a sold-out show): exit status 1. */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
  constructor(
    readonly code: string,
    readonly appCode: string | null,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** The user pressed Ctrl-C: leave quietly with the shell's convention for SIGINT. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
  constructor(message = 'Interrupted') {
    super(message);
  }
}

export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

export interface DescribedError {
  payload: ErrorPayload;
  exitCode: number;
  hint?: string;
}

/** What a command learned before it failed, so a hint names real values instead of placeholders. */
export interface Known {
  /** The command's words after `concert`, e.g. `admin queue config`. */
  command?: string;
  concertId?: number;
  scheduleId?: number;
  seats?: number[];
  /** The reservation a command acts on (cancel, release), for hints that name it. */
  reservationId?: string;
}

/** The server's error, as the tRPC client carries it (`data` is the API's error formatter's). */
export interface ServerErrorData {
  code?: string;
  appCode?: string;
  issues?: Array<{ path?: unknown[]; message?: string }>;
  details?: Record<string, unknown>;
}

/** tRPC's own test (isTRPCClientError) also accepts the name: no need to load the client to recognise its errors. */
export function isServerError(err: unknown): err is Error & { data?: ServerErrorData | null; cause?: unknown; meta?: { response?: { status?: number } } } {
  return err instanceof Error && err.name === 'TRPCClientError';
}

/**
 * An HTTP error that is not the API's answer (no JSON): a proxy's or load balancer's page, such as
 * a 502 while the API behind it restarts. The client's fetch throws it so that the status is kept
 * (tRPC, reading the page as JSON, would keep only a parse error).
 */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly status: number,
    statusText = '',
  ) {
    super(`HTTP ${status}${statusText ? ` ${statusText}` : ''}`);
  }
}

/** A proxy's answer while the API behind it is away: bad gateway, unavailable, gateway timeout. */
const GATEWAY_STATUSES = new Set([502, 503, 504]);

/** The API's own codes for "ask again shortly" (its database or queue store is down, SERVICE_UNAVAILABLE). */
const UNAVAILABLE_CODES = new Set(['SERVICE_UNAVAILABLE', 'BAD_GATEWAY', 'GATEWAY_TIMEOUT']);

/** The HTTP status of a failed call that the API did not answer itself (a proxy's page), if one came back. */
function gatewayStatusOf(err: Error & { cause?: unknown; meta?: { response?: { status?: number } } }): number | undefined {
  const cause = err.cause as { name?: string; status?: number } | undefined;
  return cause?.name === 'HttpStatusError' ? cause.status : err.meta?.response?.status;
}

/**
 * Whether the same call may well succeed in a moment: the API could not be reached (refused,
 * reset, timed out), a proxy in front of it answered 502/503/504, or the API said it is
 * unavailable for now. An answer about the call itself (auth, NOT_FOUND, validation,
 * RATE_LIMITED) is not, nor is Ctrl-C. describeError calls the unreached kind NETWORK_ERROR.
 */
export function isTransient(err: unknown): boolean {
  if (!isServerError(err)) return false;
  if (err.data?.code) return UNAVAILABLE_CODES.has(err.data.code);
  if (isAbort(err.cause)) return false;
  const status = gatewayStatusOf(err);
  if (status !== undefined) return GATEWAY_STATUSES.has(status);
  // No answer at all: fetch's TypeError (refused, reset, a name that did not resolve), or our timeout.
  const name = (err.cause as Error | undefined)?.name;
  return name === 'TypeError' || name === 'TimeoutError';
}

/** How long the server asked to wait when it turned a call away as too soon (RATE_LIMITED), if it did. */
export function retryAfterOf(err: unknown): number | undefined {
  if (!isServerError(err) || err.data?.appCode !== 'RATE_LIMITED') return undefined;
  const ms = err.data.details?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

export function appCodeOf(err: unknown): string | undefined {
  return isServerError(err) ? (err.data?.appCode ?? undefined) : undefined;
}

const or = (value: number | undefined, placeholder: string) => (value === undefined ? placeholder : String(value));
const releasing = (k: Known) => k.command === 'cancel' || k.command === 'admin release';

const HINTS: Record<string, (k: Known, details: Record<string, unknown>) => string | undefined> = {
  QUEUE_NOT_ACTIVE: (k) => `Wait for your turn in the waiting room: concert queue join ${or(k.concertId, '<concertId>')} --wait`,
  // The same two codes answer a bad identity token (--user-token), whose details say so: joining the line again would fail the same way.
  TOKEN_INVALID: (k, d) =>
    d.credential === 'identity'
      ? 'Check --user-token (or CONCERT_USER_TOKEN): an HS256 JWT signed with the server\'s AUTH_JWT_SECRET, sub = your user id, with an exp'
      : `Join the waiting room first: concert queue join ${or(k.concertId, '<concertId>')} --wait (with --user-token, also check the JWT)`,
  TOKEN_EXPIRED: (k, d) =>
    d.credential === 'identity'
      ? 'Your login has expired: pass a fresh JWT with --user-token (or CONCERT_USER_TOKEN)'
      : `Your turn in the waiting room is over: concert queue join ${or(k.concertId, '<concertId>')} --wait`,
  TOKEN_WRONG_CONCERT: (k) => `The saved queue token is for another concert: concert queue join ${or(k.concertId, '<concertId>')} --wait`,
  ADMIN_KEY_INVALID: () => 'Pass --admin-key KEY or set CONCERT_ADMIN_KEY',
  IDENTITY_REQUIRED: () => 'Pass --user ID (or --user-token JWT when the server runs AUTH_MODE=jwt)',
  INSUFFICIENT_BALANCE: (_k, d) =>
    typeof d.required === 'number' && typeof d.balance === 'number' ? `Top up first: concert charge ${d.required - d.balance}` : 'Top up first: concert charge <amount>',
  // A top-up (book --top-up, concert charge) over a limit: say which limit and what can still be charged.
  CHARGE_LIMIT_EXCEEDED: (_k, d) =>
    typeof d.maxPerTx === 'number'
      ? `One charge may be at most ${d.maxPerTx} won: top up in parts (concert charge ${d.maxPerTx}), then pay`
      : typeof d.monthlyLimit === 'number' && typeof d.chargedThisMonth === 'number'
        ? `Charges this month total ${d.chargedThisMonth} of the ${d.monthlyLimit} won allowed: at most ${Math.max(0, d.monthlyLimit - d.chargedThisMonth)} more this month`
        : 'A charge limit was reached',
  HOLD_EXPIRED: (k) =>
    // Cancelling or releasing a lapsed hold: what it asked for is done already.
    releasing(k)
      ? 'Nothing to cancel: the hold had lapsed and its seats are already free'
      : `The hold lapsed; hold the seats again: concert hold ${or(k.scheduleId, '<scheduleId>')} ${k.seats?.length ? k.seats.join(' ') : '<seat...>'}`,
  // A paid reservation is not cancelled but refunded.
  ALREADY_PAID: (k) =>
    releasing(k) && k.reservationId !== undefined
      ? `A paid reservation is given back by a refund: concert ${k.command === 'cancel' ? '' : 'admin '}refund ${k.reservationId}`
      : undefined,
  // The server's pace (a queue ticket's pollAfterMs): asking sooner is refused, so say how long to wait.
  RATE_LIMITED: (_k, d) =>
    typeof d.retryAfterMs === 'number' ? `Asked too soon: try again in ${Math.max(1, Math.ceil(d.retryAfterMs / 1000))} s` : 'Asked too soon: try again in a moment',
  SEAT_UNAVAILABLE: (k) => `Someone else has it; look again: concert seats ${or(k.scheduleId, '<scheduleId>')}`,
};

/** Maps anything a command can throw to the envelope, the exit status and a hint for people. */
export function describeError(err: unknown, known: Known = {}): DescribedError {
  if (err instanceof UsageError) {
    const hint = err.hint ?? (known.command ? `See concert help ${known.command}` : undefined);
    return { payload: { code: 'USAGE', appCode: null, message: err.message, ...(err.issues ? { issues: err.issues } : {}) }, exitCode: EXIT.usage, ...(hint ? { hint } : {}) };
  }
  if (err instanceof Interrupted) return { payload: { code: 'INTERRUPTED', appCode: null, message: err.message }, exitCode: EXIT.interrupted };
  if (err instanceof CliFailure) {
    return { payload: { code: err.code, appCode: err.appCode, message: err.message }, exitCode: EXIT.failure, ...(err.hint ? { hint: err.hint } : {}) };
  }
  if (isServerError(err)) {
    const data = err.data;
    if (data?.code) {
      const issues = data.issues?.map((i) => ({ path: (i.path ?? []).join('.'), message: i.message ?? '' }));
      const appCode = data.appCode ?? null;
      const hint = appCode ? HINTS[appCode]?.(known, data.details ?? {}) : undefined;
      // "Invalid input" alone hides the field: say which, as the server's issues do. A refusal
      // whose one issue is its own message (a webhook url, a cursor) names the field once.
      const named = issues?.map((i) => `${i.path || '(input)'}: ${i.message}`).join('; ');
      const message = !issues?.length ? err.message : issues.every((i) => i.message === err.message) ? named! : `${err.message}: ${named}`;
      return { payload: { code: data.code, appCode, message, ...(issues?.length ? { issues } : {}) }, exitCode: EXIT.failure, ...(hint ? { hint } : {}) };
    }
    if (isAbort(err.cause)) return { payload: { code: 'INTERRUPTED', appCode: null, message: 'Interrupted' }, exitCode: EXIT.interrupted };
    return { payload: { code: 'NETWORK_ERROR', appCode: null, message: networkMessage(err) }, exitCode: EXIT.failure, hint: 'Is the API running? Check --api or CONCERT_API_URL' };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { payload: { code: 'INTERNAL', appCode: null, message }, exitCode: EXIT.failure };
}

function networkMessage(err: Error & { cause?: unknown; meta?: { response?: { status?: number } } }): string {
  const cause = err.cause as (Error & { cause?: { code?: string; message?: string } }) | undefined;
  if (cause?.name === 'TimeoutError') return 'The API did not answer in time';
  const status = gatewayStatusOf(err);
  const detail = status !== undefined && status >= 400 && cause?.name !== 'HttpStatusError' ? `HTTP ${status}` : (cause?.cause?.code ?? cause?.cause?.message ?? cause?.message ?? err.message);
  return `Could not reach the API (${detail})`;
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}
