import { InvalidArgumentError } from 'commander';

// Parsers for commander's arguments and options. A bad value is a usage error (exit 2) that names
// the argument: commander prefixes "command-argument value 'x' is invalid for argument 'reservationId'".

/** An id as the API takes it (ZId): a positive whole number up to Number.MAX_SAFE_INTEGER. */
export const isIdText = (value: string) => /^[1-9]\d{0,15}$/.test(value.trim()) && Number.isSafeInteger(Number(value));

/** A user id as the API takes it (x-user-id, a token's sub): a positive whole number of at most 15 digits. */
export const MAX_USER_ID = 999_999_999_999_999;
export const isUserIdText = (value: string) => /^[1-9]\d{0,14}$/.test(value.trim());

export const id = (what: string) => (value: string) => {
  if (!isIdText(value)) throw new InvalidArgumentError(`${what} must be a positive whole number up to ${Number.MAX_SAFE_INTEGER}.`);
  return Number(value);
};

export const count = (what: string, min = 1, max?: number) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || (max !== undefined && n > max)) {
    throw new InvalidArgumentError(max === undefined ? `${what} must be a whole number of at least ${min}.` : `${what} must be a whole number from ${min} to ${max}.`);
  }
  return n;
};

/** A page's size as every paged procedure takes it (API.md: `limit?: 1..100`); more is bad usage, not a question for the server. */
export const pageLimit = count('--limit', 1, 100);

/** A decimal from 0 to 1 (`0.3`, `.3`, `1`): Number() took '', ' ' as 0 and '0x1' as 1 (an outside review). */
export const fraction = (value: string) => {
  const n = Number(value);
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(value.trim()) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number from 0 to 1.');
  return n;
};

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/**
 * An ISO 8601 date-time with its offset (or Z), so the opening never depends on the operator's
 * time zone, and a day that exists: Date rolls 2027-02-30 over to March 2nd, and an operator's
 * typo became another opening time (an outside review).
 */
export function isoTime(value: string): Date {
  const m = ISO_TIME.exec(value.trim());
  const d = new Date(value.trim());
  const [y, mo, day, h, mi, sec, oh, om] = (m ?? []).slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const exists = m !== null && mo! >= 1 && mo! <= 12 && day! >= 1 && day! <= new Date(Date.UTC(y!, mo!, 0)).getUTCDate() && h! <= 23 && mi! <= 59 && sec! <= 59 && oh! <= 23 && om! <= 59;
  if (!exists || Number.isNaN(d.getTime())) {
    throw new InvalidArgumentError('must be an ISO 8601 date-time with its offset, such as 2026-12-24T20:00:00+09:00 or 2026-12-24T11:00:00Z, on a day that exists.');
  }
  return d;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A reservation id is a UUID; anything else is refused before a request is made. */
export const reservationId = (value: string) => {
  if (!UUID.test(value.trim())) throw new InvalidArgumentError('a reservation id is a UUID such as 0b9d5a3e-6f1c-4c2a-9e7b-1d2f3a4b5c6d (from hold, or concert reservations).');
  return value.trim().toLowerCase();
};

/** `12 13`, `12,13`, `12, 13`: seat numbers separated by spaces or commas, as one or several words. */
export function parseSeatList(text: string): number[] {
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
}

/**
 * Seat numbers from a variadic argument or option, one word at a time (commander passes what came
 * before): `hold 7 12 13`, `hold 7 12,13`, `book --seats 12 13`, `book --seats 12,13` all read the same.
 */
export function seats(value: string, previous: number[] = []): number[] {
  const more = parseSeatList(value);
  if (more.length === 0 || more.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new InvalidArgumentError(`seats are seat numbers such as 12 13 (or 12,13), not "${value}".`);
  }
  return [...previous, ...more];
}

/**
 * Digits, or digits grouped by threes with one separator throughout (`50,000`, `50_000`,
 * `50 000`), the first group not starting with 0 ("0,500" is a decimal comma). Separators
 * anywhere else were dropped: "1,5" (a decimal comma) charged 15 won, and "10,00" 1,000 (an
 * outside review); those are now refused.
 */
const WHOLE_WON = /^(?:\d+|[1-9]\d{0,2}([,_ ])\d{3}(?:\1\d{3})*)$/;

/** Money in won: `50000`, `50,000`, `₩50,000` and `50000원` all mean fifty thousand won. */
export function parseWon(text: string, opts: { allowZero?: boolean } = {}): number {
  const written = text.trim().replace(/^₩\s*/, '').replace(/\s*원$/, '').replace(/[\u00a0\u202f]/g, ' ');
  const cleaned = WHOLE_WON.test(written) ? written.replace(/[,_ ]/g, '') : '';
  const min = opts.allowZero ? 0 : 1;
  if (!/^\d+$/.test(cleaned) || Number(cleaned) < min) {
    throw new InvalidArgumentError(`the amount must be a ${opts.allowZero ? 'non-negative' : 'positive'} whole number of won, not "${text}".`);
  }
  // A whole number past 2^53 - 1 was told it was not a whole number.
  if (!Number.isSafeInteger(Number(cleaned))) throw new InvalidArgumentError(`the amount must be at most ${Number.MAX_SAFE_INTEGER} won, not "${text}".`);
  return Number(cleaned);
}

export const won = (opts: { allowZero?: boolean } = {}) => (value: string) => parseWon(value, opts);
