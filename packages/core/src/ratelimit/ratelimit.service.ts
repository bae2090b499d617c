import { AppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { RateLimitStore } from './ratelimit.store.ts';

export type RateLimitBucket = 'mutation' | 'queue.enter';

const WINDOW_MS = 10_000;
const STORE_WAIT_MS = 250;

/**
 * Per-user request limits, counted in the shared store so every replica sees the same count.
 * If the store is down or slow (over 250 ms) the limit is not enforced: it guards capacity, not
 * money or seats.
 */
export class RateLimitService {
  constructor(private readonly deps: { store: RateLimitStore; clock: Clock; config: Pick<Config, 'rateLimits'> }) {}

  async check(bucket: RateLimitBucket, subject: string): Promise<void> {
    const { enabled, mutationsPer10s, enterPer10s } = this.deps.config.rateLimits;
    if (!enabled) return;
    const limit = bucket === 'queue.enter' ? enterPer10s : mutationsPer10s;
    const hit = this.deps.store.hit(bucket, subject, WINDOW_MS, this.deps.clock.now().getTime()).catch(() => undefined);
    // A store that is slow to answer (hung) is not waited for: the request goes on unlimited.
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), STORE_WAIT_MS);
    });
    const r = await Promise.race([hit, giveUp]).finally(() => clearTimeout(timer));
    if (r && r.count > limit) {
      throw new AppError('RATE_LIMITED', `Too many requests; at most ${limit} per ${WINDOW_MS / 1000} s. Retry in ${r.resetInMs} ms`, {
        retryAfterMs: r.resetInMs,
      });
    }
  }
}
