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
  /**
   * In a reading: the CPU of every PostgreSQL process reaped so far (the postmaster's cutime and
   * cstime: a backend's CPU is added there when it is reaped). Between two readings: what the
   * processes that ended in between spent in between (reapedBetween). The pgbench reference's
   * backends live only for its run, so `postgres` (process by process) never sees them; its
   * PostgreSQL CPU is this.
   */
  postgresReaped: number;
  /** This process: the load generator (it shares the machine's cores with the servers it drives). */
  generator: number;
  /** Every process of the machine (/proc/stat): CPU seconds busy, and CPU seconds in all (busy and idle, over every core). */
  machineBusy: number;
  machineAll: number;
  /** The API's main thread (/proc/<pid>/schedstat): seconds on a CPU, and seconds runnable but waiting for one. */
  apiRun: number;
  apiWait: number;
}

export const NO_CPU: CpuSample = { api: 0, redis: 0, postgres: 0, postgresReaped: 0, generator: 0, machineBusy: 0, machineAll: 0, apiRun: 0, apiWait: 0 };

/** Adds b to a, part by part (b negated: subtracts). */
export function addCpu(a: CpuSample, b: CpuSample, sign = 1): CpuSample {
  const out = { ...NO_CPU };
  for (const k of Object.keys(NO_CPU) as Array<keyof CpuSample>) out[k] = a[k] + sign * b[k];
  return out;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS = 100;

function procSeconds(pid: number, of: 'self' | 'reaped children' = 'self'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields,
    // cutime and cstime (children waited for) the 16th and 17th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const at = of === 'self' ? 11 : 13;
    return (Number(fields[at]) + Number(fields[at + 1])) / TICKS;
  } catch {
    return 0; // the process ended between listing and reading
  }
}

/** CPU seconds of every `postgres` process now, by pid. */
function postgresSeconds(): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue;
    }
    byPid.set(Number(entry), procSeconds(Number(entry)));
  }
  return byPid;
}

/** The CPU of the processes the given `postgres` processes have reaped (of them, only the postmaster reaps). */
function reapedSeconds(pids: Iterable<number>): number {
  let total = 0;
  for (const pid of pids) total += procSeconds(pid, 'reaped children');
  return total;
}

/**
 * Every `postgres` process's own CPU and the CPU of those reaped, as of one moment: a process
 * reaped between the listing and the reading of the reaped total counted twice (its own seconds,
 * and its whole life again), or took its life off the window in the first reading (a review
 * found both). Read again until the reaped total did not move across the listing (at most 5 times).
 */
function postgresReading(): { byPid: Map<number, number>; reaped: number } {
  let byPid = postgresSeconds();
  let reaped = reapedSeconds(byPid.keys());
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = reaped;
    byPid = postgresSeconds();
    reaped = reapedSeconds(byPid.keys());
    if (reaped === before) break;
  }
  return { byPid, reaped };
}

/**
 * PostgreSQL's CPU between two readings, process by process: a process that started in between
 * counts whole, one that ended in between counts nothing (its last seconds are lost, never its
 * whole life: the difference of the two totals took the whole life of any process that ended in
 * between off the operation, and read payments at 288 µs of PostgreSQL's CPU in a run where
 * every other run read 1,500-1,900).
 */
function postgresBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/**
 * The CPU of the PostgreSQL processes that ended between two readings, in between: their whole
 * lives (the postmaster's cutime and cstime grew by them) less what those already running at the
 * first reading had spent by then (an API's pooled connection closed while idle counted its whole
 * life: a payment run of the pgbench reference read 1,362 µs of PostgreSQL's CPU per transaction
 * where the machine as a whole spent 1,051).
 */
function reapedBetween(before: { postgresReaped: number; postgresByPid: Map<number, number> }, after: { postgresReaped: number; postgresByPid: Map<number, number> }): number {
  let earlier = 0;
  for (const [pid, seconds] of before.postgresByPid) if (!after.postgresByPid.has(pid)) earlier += seconds;
  return after.postgresReaped - before.postgresReaped - earlier;
}

/** The machine's first /proc/stat line: user nice system idle iowait irq softirq steal (ticks). */
function machineSeconds(): { busy: number; all: number } {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy: busy / TICKS, all: (busy + idle! + iowait!) / TICKS };
}

/** The main thread's /proc/<pid>/schedstat: nanoseconds on a CPU, nanoseconds waiting on a run queue. */
function schedSeconds(pid: number): { run: number; wait: number } {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number) as number[];
    return { run: run! / 1e9, wait: wait! / 1e9 };
  } catch {
    return { run: 0, wait: 0 };
  }
}

async function redisSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const read = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return read('used_cpu_user') + read('used_cpu_sys');
}

async function sampleCpu(apiPid: number, redis: Redis): Promise<CpuSample & { postgresByPid: Map<number, number> }> {
  const own = process.cpuUsage();
  const machine = machineSeconds();
  const sched = schedSeconds(apiPid);
  const { byPid, reaped } = postgresReading();
  return {
    api: procSeconds(apiPid),
    redis: await redisSeconds(redis),
    postgres: 0,
    postgresByPid: byPid,
    postgresReaped: reaped,
    generator: (own.user + own.system) / 1e6,
    machineBusy: machine.busy,
    machineAll: machine.all,
    apiRun: sched.run,
    apiWait: sched.wait,
  };
}

/** Runs fn and returns its result with the CPU seconds each part spent meanwhile. */
export async function metered<T>(apiPid: number, redis: Redis, fn: () => Promise<T>): Promise<{ result: T; cpu: CpuSample }> {
  const before = await sampleCpu(apiPid, redis);
  const result = await fn();
  const after = await sampleCpu(apiPid, redis);
  return {
    result,
    cpu: { ...addCpu(after, before, -1), postgres: postgresBetween(before.postgresByPid, after.postgresByPid), postgresReaped: reapedBetween(before, after) },
  };
}
