import type { RedisClient } from '../redis/client.ts';
import { rateLimitKey } from '../redis/keys.ts';

/** Counts hits in fixed windows; one call is one atomic increment. */
export interface RateLimitStore {
  /** Adds a hit and returns the window's count and the ms left in the window. */
  hit(bucket: string, subject: string, windowMs: number, now: number): Promise<{ count: number; resetInMs: number }>;
}

const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

export class RedisRateLimitStore implements RateLimitStore {
  constructor(private readonly redis: RedisClient) {
    if (!('rateLimitHit' in redis)) redis.defineCommand('rateLimitHit', { numberOfKeys: 1, lua: HIT });
  }

  async hit(bucket: string, subject: string, windowMs: number, now: number) {
    const window = Math.floor(now / windowMs);
    const fn = (this.redis as unknown as { rateLimitHit: (key: string, ttl: number) => Promise<number> }).rateLimitHit;
    const count = await fn.call(this.redis, rateLimitKey(bucket, subject, window), windowMs * 2);
    return { count, resetInMs: (window + 1) * windowMs - now };
  }
}

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { window: number; count: number }>();

  async hit(bucket: string, subject: string, windowMs: number, now: number) {
    const window = Math.floor(now / windowMs);
    const key = `${bucket}:${subject}`;
    const w = this.windows.get(key);
    const entry = w && w.window === window ? w : { window, count: 0 };
    entry.count++;
    this.windows.set(key, entry);
    if (this.windows.size > 100_000) this.prune(window);
    return { count: entry.count, resetInMs: (window + 1) * windowMs - now };
  }

  private prune(current: number) {
    for (const [k, w] of this.windows) if (w.window < current) this.windows.delete(k);
  }
}
