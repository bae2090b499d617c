import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/**
 * CPU time spent by each part of the system while a scenario runs, for the per-request costs
 * docs/capacity.md is derived from: the API process (/proc/<pid>/stat), the Redis server (its own
 * `INFO cpu`) and every PostgreSQL process of the machine (/proc/<pid>/stat of each `postgres`).
 * Readings are of the whole machine's servers: run the bench on a machine doing nothing else.
 */
export interface CpuSample {
  api: number;
  redis: number;
  postgres: number;
  /** This process: the load generator (it shares the machine's cores with the servers it drives). */
  generator: number;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS = 100;

function procSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0; // the process ended between listing and reading
  }
}

function postgresSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue;
    }
    total += procSeconds(Number(entry));
  }
  return total;
}

async function redisSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const read = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return read('used_cpu_user') + read('used_cpu_sys');
}

export async function sampleCpu(apiPid: number, redis: Redis): Promise<CpuSample> {
  const own = process.cpuUsage();
  return { api: procSeconds(apiPid), redis: await redisSeconds(redis), postgres: postgresSeconds(), generator: (own.user + own.system) / 1e6 };
}

/** Runs fn and returns its result with the CPU seconds each part spent meanwhile. */
export async function metered<T>(apiPid: number, redis: Redis, fn: () => Promise<T>): Promise<{ result: T; cpu: CpuSample }> {
  const before = await sampleCpu(apiPid, redis);
  const result = await fn();
  const after = await sampleCpu(apiPid, redis);
  return {
    result,
    cpu: { api: after.api - before.api, redis: after.redis - before.redis, postgres: after.postgres - before.postgres, generator: after.generator - before.generator },
  };
}
