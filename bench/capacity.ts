/**
 * `pnpm capacity`: the arithmetic of docs/capacity.md, from the CPU per request that the last
 * `pnpm bench` measured on this machine (bench/RESULTS.md, "CPU per request") and the product's
 * own polling rule (pollAfter, the function the queue answers with). It prints the derived
 * section of docs/capacity.md and rewrites it there, between its markers.
 *
 *   pnpm capacity [--fans 1000000] [--seats 50000] [--minutes 10] [--idle 60] [--enter-seconds 60]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pollAfter } from '../packages/core/src/queue/queue.store.ts';
import { ROOT } from '../test/harness.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const FANS = arg('fans', 1_000_000);
const SEATS = arg('seats', 50_000);
const WINDOW_S = arg('minutes', 10) * 60;
const IDLE_S = arg('idle', 60);
/** How long the crowd takes to enter the line at the opening (without a pre-queue, the worst case). */
const ENTER_S = arg('enter-seconds', 60);
/** Seats a buyer takes (the rehearsal's fans take one or two), and hold attempts per successful hold. */
const SEATS_PER_HOLD = 1.5;
const ATTEMPTS_PER_HOLD = 2;
/** The share of a core a process is planned to use at the peak, leaving room for bursts and GC. */
const UTILIZATION = 0.6;

type Cost = { api: number; redis: number; postgres: number };
function readCosts(): { costs: Record<string, Cost>; run: string } {
  const text = readFileSync(path.join(ROOT, 'bench/RESULTS.md'), 'utf8');
  const run = /^Run (\S+) on ([^;]+);/m.exec(text);
  const costs: Record<string, Cost> = {};
  // Results from before bench/cpu.ts read PostgreSQL process by process could come out negative
  // (a process that ended during the run took its whole CPU time off the sum): such a part counts 0.
  for (const m of text.matchAll(/^\| ([^|]+?) \| (\d+) \| (-?\d+) \| (-?\d+) \| (-?\d+) \|(?: -?\d+ \|)?$/gm)) {
    costs[m[1]!] = { api: Math.max(0, Number(m[3])), redis: Math.max(0, Number(m[4])), postgres: Math.max(0, Number(m[5])) };
  }
  for (const op of ['queue.status', 'queue.enter', 'reservations.hold', 'payments.pay']) {
    if (!costs[op]) throw new Error(`bench/RESULTS.md has no CPU cost for ${op}: run \`pnpm bench\` first`);
  }
  return { costs, run: run ? `${run[1]} on ${run[2]}` : 'unknown run' };
}

/** Status polls per second of a line of `fans` waiting, as pollAfter spaces them (no ETA: the fastest it allows). */
function pollsPerSecond(fans: number): { total: number; head: number; ceilingMs: number } {
  const now = 0;
  let total = 0;
  let head = 0;
  let ceilingMs = 0;
  for (let position = 1; position <= fans; position++) {
    const ms = pollAfter({ status: 'WAITING', position, activeUntil: null, etaMs: null, opensAt: null }, IDLE_S, 0, now, true);
    ceilingMs = Math.max(ceilingMs, ms);
    total += 1000 / ms;
    if (position <= 1000) head += 1000 / ms;
  }
  return { total, head, ceilingMs };
}

const { costs, run } = readCosts();
const polls = pollsPerSecond(FANS);
const enterRate = FANS / ENTER_S;
const holds = SEATS / SEATS_PER_HOLD;
const holdRate = (holds * ATTEMPTS_PER_HOLD) / WINDOW_S;
const payRate = holds / WINDOW_S;
const st = costs['queue.status']!;
const en = costs['queue.enter']!;
const ho = costs['reservations.hold']!;
const pa = costs['payments.pay']!;
const cores = (rate: number, us: number) => (rate * us) / 1e6;
const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);

// Phases: the opening minute (every fan enters while the line starts polling) and the steady sale.
const apiOpening = cores(enterRate, en.api) + cores(polls.total / 2, st.api);
const apiSteady = cores(polls.total, st.api) + cores(holdRate, ho.api) + cores(payRate, pa.api);
const apiProcesses = Math.ceil(Math.max(apiOpening, apiSteady) / UTILIZATION);
const redisOpening = cores(enterRate, en.redis) + cores(polls.total / 2, st.redis);
const redisSteady = cores(polls.total, st.redis) + cores(holdRate, ho.redis) + cores(payRate, pa.redis);
const redisPeak = Math.max(redisOpening, redisSteady);
// One concert's line is one hash slot, so one Redis master's one thread: the fans one line can hold.
const fansPerSlot = (UTILIZATION * 1e6) / (st.redis * (polls.total / FANS));
const pgOpening = cores(enterRate, en.postgres);
const pgSteady = cores(holdRate, ho.postgres) + cores(payRate, pa.postgres);
const pgPeak = Math.max(pgOpening, pgSteady);

const lines = [
  `<!-- derived:start — written by \`pnpm capacity\` from bench/RESULTS.md (${run}); do not edit by hand -->`,
  '',
  `Inputs: ${f0(FANS)} fans, ${f0(SEATS)} seats sold in ${WINDOW_S / 60} minutes, idle timeout ${IDLE_S} s, the whole crowd entering within ${ENTER_S} s of the opening (no pre-queue: the worst case), ${SEATS_PER_HOLD} seats per hold, ${ATTEMPTS_PER_HOLD} hold attempts per successful hold, processes planned at ${UTILIZATION * 100}% of a core at the peak.`,
  '',
  '| measured CPU per request (µs) | API process | Redis | PostgreSQL |',
  '| --- | ---: | ---: | ---: |',
  ...Object.entries({ 'queue.status': st, 'queue.enter': en, 'reservations.hold': ho, 'payments.pay': pa }).map(([op, c]) => `| ${op} | ${c.api} | ${c.redis} | ${c.postgres} |`),
  '',
  '| rate | arithmetic | per second |',
  '| --- | --- | ---: |',
  `| status polls | Σ over positions 1…${f0(FANS)} of 1000 / pollAfter(position) ms; every place past the head polls every ${polls.ceilingMs / 1000} s (idle ${IDLE_S} s / 3); the first 1,000 places poll ${f0(polls.head)}/s | ${f0(polls.total)} |`,
  `| enters at the opening | ${f0(FANS)} / ${ENTER_S} s | ${f0(enterRate)} |`,
  `| hold attempts | ${f0(SEATS)} seats / ${SEATS_PER_HOLD} × ${ATTEMPTS_PER_HOLD} / ${WINDOW_S} s | ${f1(holdRate)} |`,
  `| payments | ${f0(SEATS)} / ${SEATS_PER_HOLD} / ${WINDOW_S} s | ${f1(payRate)} |`,
  '',
  '| resource | opening minute (cores) | steady sale (cores) | plan |',
  '| --- | ---: | ---: | --- |',
  `| API processes (one core each) | ${f1(apiOpening)} = enters ${f1(cores(enterRate, en.api))} + half the polls ${f1(cores(polls.total / 2, st.api))} | ${f1(apiSteady)} = polls ${f1(cores(polls.total, st.api))} + holds ${f2(cores(holdRate, ho.api))} + payments ${f2(cores(payRate, pa.api))} | **${apiProcesses} processes** (peak / ${UTILIZATION}) |`,
  `| Redis (the line's slot: one master thread) | ${f2(redisOpening)} | ${f2(redisSteady)} | ${redisPeak > UTILIZATION ? `**over one core: split the line** (see below)` : `one master carries it at ${f0((redisPeak / 1) * 100)}% of a core`} |`,
  `| PostgreSQL | ${f2(pgOpening)} (each enter reads its user) | ${f2(pgSteady)} = holds ${f2(cores(holdRate, ho.postgres))} + payments ${f2(cores(payRate, pa.postgres))} | **${Math.max(2, Math.ceil(pgPeak / UTILIZATION))} cores** |`,
  '',
  `One concert's line lives in one Redis hash slot, so on one master's one thread: at ${st.redis} µs of Redis CPU per poll and ${f2(polls.total / FANS)} polls per fan per second, one line holds about **${f0(fansPerSlot)} waiting fans** at ${UTILIZATION * 100}% of that thread.`,
  '',
  '<!-- derived:end -->',
];
const derived = lines.join('\n');
console.log(derived);
const doc = path.join(ROOT, 'docs/capacity.md');
const text = readFileSync(doc, 'utf8');
const start = text.indexOf('<!-- derived:start');
const end = text.indexOf('<!-- derived:end -->');
if (start < 0 || end < 0) throw new Error('docs/capacity.md has no derived:start/derived:end markers');
writeFileSync(doc, text.slice(0, start) + derived + text.slice(end + '<!-- derived:end -->'.length));
