import { randomBytes } from 'node:crypto';
import { admin, deleteRedisKeys, REDIS_URL } from '../../../test/harness.ts';

/** A Redis key prefix of the suite's own, and a way to remove exactly its keys afterwards. */
export function redisEnv() {
  const REDIS_KEY_PREFIX = `t${randomBytes(5).toString('hex')}:`;
  return {
    env: { REDIS_URL, REDIS_KEY_PREFIX },
    // On a single Redis or on each master of a Redis Cluster (pnpm test:cluster).
    cleanup: () => deleteRedisKeys(REDIS_KEY_PREFIX),
  };
}

/** `n` funded users, made through the admin API a few at a time. */
export async function makeFans(url: string, n: number, balance = 1_000_000): Promise<number[]> {
  const a = admin(url);
  const ids: number[] = [];
  for (let i = 0; i < n; i += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, n - i) }, (_, j) => a.admin.users.create.mutate({ name: `fan ${i + j}`, initialBalance: balance })),
    );
    ids.push(...batch.map((u) => u.userId));
  }
  return ids;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Times a client had to retry a 503 (the queue store timed out under load), for the test's report. */
export const retries = { count: 0 };

/** As a real client does with SERVICE_UNAVAILABLE ("retry"): try again shortly, a few times. */
export async function retrying<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const appCode = (err as { data?: { appCode?: string } }).data?.appCode;
      if (appCode !== 'SERVICE_UNAVAILABLE' || attempt >= 10) throw err;
      retries.count++;
      await sleep(250);
    }
  }
}
