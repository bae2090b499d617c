import { CliFailure, describeError, type ErrorPayload, isTransient } from './errors.ts';
import { clockTime, duration } from './format.ts';

// Riding through a lost API (a restart behind a load balancer) in the commands that poll it:
// `admin watch` and the wait in line of `queue join --wait` and `book`.

/**
 * How long a polling command keeps trying an API it lost, from the first failure. A rolling
 * restart takes seconds; past half a minute the API is down, not restarting. For a fan it is also
 * half the line's default idle timeout (60 s), so on giving up the place is normally still kept.
 */
export const RIDE_THROUGH_MS = 30_000;

/** The pause after the first failure, doubled after each: 1 s, 2 s, 4 s, 4 s… */
export const BACKOFF_FIRST_MS = 1_000;
export const BACKOFF_MAX_MS = 4_000;

/** What a failed call in an outage comes to: the next try, and what to show meanwhile. */
export interface Retry {
  /** Failures in a row, the first one included (1, 2, …). */
  attempt: number;
  /** How long to wait before trying again. */
  delayMs: number;
  /** The failure, as the envelope an exit would print. */
  error: ErrorPayload;
  /** When the command gives up if nothing has answered by then. */
  giveUpAt: Date;
}

/**
 * The failures of one polling command. Each failed call goes to `failed()`: a transient one
 * (isTransient) gives the pause before the next try, a capped backoff and never less than
 * `minDelayMs` (a fan's pollAfterMs: the server's pace); the last try falls at RIDE_THROUGH_MS
 * after the first failure, and its failure ends the command as before (exit 1, the same code),
 * saying how long it tried. Anything else is thrown at once. `over()` after every answer.
 */
export class Outage {
  private failures = 0;
  private began = 0;

  constructor(private readonly opts: { hint?: string; budgetMs?: number; now?: () => number } = {}) {}

  /** The API answered: the outage, if there was one, is over. */
  over(): void {
    this.failures = 0;
  }

  /**
   * `since`: when the failed call was made. A call that hung until its timeout failed long after
   * the API stopped answering; the ride-through counts from the call, so a hung API is given up
   * on about RIDE_THROUGH_MS after it stopped, not a timeout later.
   */
  failed(err: unknown, minDelayMs = 0, since?: number): Retry {
    if (!isTransient(err)) throw err;
    const now = this.opts.now?.() ?? Date.now();
    if (this.failures === 0) this.began = Math.min(since ?? now, now);
    this.failures++;
    const giveUpAt = this.began + (this.opts.budgetMs ?? RIDE_THROUGH_MS);
    const { payload, hint } = describeError(err);
    if (now >= giveUpAt) {
      const tried = `gave up after ${duration(now - this.began)} and ${this.failures} tries`;
      throw new CliFailure(payload.code, payload.appCode, `${payload.message}; ${tried}`, this.opts.hint ?? hint);
    }
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.failures - 1));
    return { attempt: this.failures, delayMs: Math.min(Math.max(backoff, minDelayMs), giveUpAt - now), error: payload, giveUpAt: new Date(giveUpAt) };
  }
}

/** The outage in words, for a status line or a line of its own: `Connection lost, retrying (2) in 2s… (Could not reach the API (ECONNREFUSED)); gives up at 14:00:35`. */
export function retryText(r: Retry): string {
  return `Connection lost, retrying (${r.attempt}) in ${duration(r.delayMs)}… (${r.error.message}); gives up at ${clockTime(r.giveUpAt)}`;
}

/** The outage as one JSON line on stderr with --json: stdout keeps only answers. */
export function retryJson(r: Retry): string {
  return `${JSON.stringify({ retrying: { attempt: r.attempt, inMs: r.delayMs, giveUpAt: r.giveUpAt.toISOString(), error: r.error } })}\n`;
}
