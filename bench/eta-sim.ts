/**
 * `pnpm eta-sim`: the waiting room's ETA on the memory store and the test clock, without machine
 * noise (simulateSale in packages/core/src/queue/queue.eta.sim.ts), for eleven kinds of sale and
 * several seeds each. It prints, per kind, each seed's median |told − real| ÷ real and median
 * signed error (told − real) ÷ real in the opening (the first half of the arrivals) and steady
 * (the second half). SEEDS=n sets the seeds (4), ONLY=text the kinds, SLOTS=n every kind's
 * maxActive, AGAIN=1 measures each kind's second sale on one store (the first taught the
 * deployment's think-time prior, ETA_PRIOR_EVERY_MS). DETAIL=1 adds, per kind and seed, the error and signed error by time since the
 * opening (0–10 s, 10–30 s, 30–60 s, 1–3 min, 3 min on) and distance from the head (places 1–10,
 * 11–50, 51–200, 201–1,000, past 1,000), with the number of predictions in each. ORACLE=1 adds,
 * by phase, the error at places 1–10 and 11–50 beside an oracle's (oracleWait: a forecaster who
 * knows the sale's own rules and all the line knows, but not the draws to come) on the same
 * predictions: a floor under any estimator's error (README, "The floor, measured"), and the share
 * of each's tellings within ETA_TOLERANCE (20%; the goal's median is met where it is half or more).
 */
import { ORACLE_PLACES, SALE_WINDOWS, type SimSale, simulateSale, T00 } from '../packages/core/src/queue/queue.eta.sim.ts';
import { MemoryQueueStore } from '../packages/core/src/queue/queue.store.memory.ts';

const falling = (t: number) => Math.max(100, 1200 - (t - 4000) / 20);
const kinds: Record<string, SimSale> = {
  '600 s TTL, nobody walks away, paying takes 0 ms': { ttlSeconds: 600, walkAway: 0, perSecond: 4, latency: () => 0, arrivalsMs: 40_000 },
  '600 s TTL, nobody walks away, paying takes 300 ms': { ttlSeconds: 600, walkAway: 0, perSecond: 4, latency: () => 300, arrivalsMs: 40_000 },
  '600 s TTL, nobody walks away, paying takes 1.2 s falling to 0.1 s': { ttlSeconds: 600, walkAway: 0, perSecond: 4, latency: falling, arrivalsMs: 40_000 },
  '6 s TTL, a quarter walk away, paying takes 300 ms': { ttlSeconds: 6, walkAway: 0.25, perSecond: 1, latency: () => 300, arrivalsMs: 40_000 },
  '6 s TTL, a quarter walk away, paying takes 1.2 s falling to 0.1 s': { ttlSeconds: 6, walkAway: 0.25, perSecond: 1, latency: falling, arrivalsMs: 40_000 },
  '600 s TTL, buyers think 20–80 s (windows of 200 s)': { ttlSeconds: 600, walkAway: 0, perSecond: 0.15, latency: () => 300, think: (g) => 20_000 + g() * 60_000, arrivalsMs: 400_000 },
  // Long-tailed: most buyers take half a minute, a few take many minutes (log-normal, σ 0.8: a tenth take under 11 s, a tenth over 83 s).
  '600 s TTL, buyers think log-normally around 30 s (windows of 200 s)': { ttlSeconds: 600, walkAway: 0, perSecond: 0.15, latency: () => 300, think: (g) => 30_000 * Math.exp(0.8 * Math.sqrt(-2 * Math.log(1 - g())) * Math.cos(2 * Math.PI * g())), arrivalsMs: 400_000 },
  // Admitted fans who walk away hold their slot until it lapses: under a TTL of minutes a slot is
  // clogged for most of it, and a refill's cycle is a mixture of seconds and the whole TTL.
  '60 s TTL, a tenth walk away, buyers think 2–10 s (windows of 120 s)': { ttlSeconds: 60, walkAway: 0.1, perSecond: 1, latency: () => 300, think: (g) => 2_000 + g() * 8_000, arrivalsMs: 240_000 },
  '300 s TTL, a tenth walk away, buyers think 2–10 s (windows of 120 s)': { ttlSeconds: 300, walkAway: 0.1, perSecond: 1, latency: () => 300, think: (g) => 2_000 + g() * 8_000, arrivalsMs: 240_000 },
  // No pre-queue: a crowd comes into a line already open (the first ten admitted on entering), as
  // found from outside (a quarter of them walking away under a 15 s TTL).
  '15 s TTL, a quarter walk away, 250 fans into an open line within 3 s, then one a second (windows of 30 s)': { ttlSeconds: 15, walkAway: 0.25, perSecond: 1, latency: () => 300, think: (g) => 1_000 + g() * 4_000, arrivalsMs: 60_000, prequeued: 250, open: true },
  // The sale this product is for: thousands waiting, a few hundred let in at a time, buyers who take a minute.
  'a big sale: 200 slots, 3,000 pre-queued, 600 s TTL, buyers think 20–80 s (windows of 200 s)': { ttlSeconds: 600, walkAway: 0, perSecond: 2, latency: () => 300, think: (g) => 20_000 + g() * 60_000, arrivalsMs: 400_000, slots: 200, prequeued: 3000 },
};
// SLOTS=n runs every kind with that maxActive instead of its own.
if (process.env.SLOTS) for (const k of Object.values(kinds)) k.slots = Number(process.env.SLOTS);
const seeds = Number(process.env.SEEDS ?? 4);
// The oracle draws every holder's future at every prediction: the big sale's 200 slots would take an hour.
const oracleFor = (k: SimSale) => !!process.env.ORACLE && (k.slots ?? 10) <= 50;
const pct = (x: number) => `${Math.round(x * 100)}%`;
for (const [name, kind] of Object.entries(kinds)) {
  if (process.env.ONLY && !name.includes(process.env.ONLY)) continue;
  const runs: Array<Awaited<ReturnType<typeof simulateSale>>> = [];
  for (let seed = 1; seed <= seeds; seed++) {
    if (!process.env.AGAIN) {
      runs.push(await simulateSale(seed, kind, { oracle: oracleFor(kind) }));
      continue;
    }
    // AGAIN=1: the sale measured is the deployment's second of this kind (its first taught the prior).
    const store = new MemoryQueueStore();
    const first = await simulateSale(seed + 1000, kind, { store, concertId: 1, startMs: 0 });
    runs.push(await simulateSale(seed, kind, { store, concertId: 2, startMs: first.endedAt - T00 + 3_600_000, oracle: oracleFor(kind) }));
  }
  const half = kind.arrivalsMs / 2;
  const row = (phase: string, from: number) => {
    const e = runs.map((r) => r.error(from, from + half));
    return `  ${phase.padEnd(8)} error ${e.map((x) => pct(x.abs)).join(', ')}  signed ${e.map((x) => pct(x.signed)).join(', ')}`;
  };
  const left = runs.reduce((n, r) => n + r.unadmitted, 0);
  console.log(`${name}${left ? ` (${left} fans never admitted)` : ''}\n${row('opening', 0)}\n${row('steady', half)}`);
  if (oracleFor(kind)) {
    for (const [phase, from] of [['opening', 0], ['steady', half]] as const) {
      for (const places of [[1, 10], [11, ORACLE_PLACES]] as Array<[number, number]>) {
        const cells = (oracle: boolean, of: 'abs' | 'within') => runs.map((r) => pct(r.error(from, from + half, places, oracle)[of])).join(', ');
        console.log(`  ${phase.padEnd(8)} places ${`${places[0]}–${places[1]}`.padEnd(6)} ours ${cells(false, 'abs')}  oracle ${cells(true, 'abs')}`);
        console.log(`  ${''.padEnd(8)} ${'within 20%'.padEnd(13)} ours ${cells(false, 'within')}  oracle ${cells(true, 'within')}`);
      }
    }
  }
  if (process.env.DETAIL) runs.forEach((r, i) => detail(r, i + 1));
}

function detail(r: Awaited<ReturnType<typeof simulateSale>>, seed: number) {
  const places: Array<[number, number]> = [[1, 10], [11, 50], [51, 200], [201, 1000], [1001, Infinity]];
  const cell = (e: { abs: number; signed: number; n: number }) => (e.n ? `${pct(e.abs)} (${pct(e.signed)}) n=${e.n}` : '').padEnd(22);
  console.log(`  seed ${seed}: error (signed) n by time since opening and place`);
  console.log(`    ${''.padEnd(9)}${'all places'.padEnd(22)}${places.map(([a, b]) => (b === Infinity ? `${a}+` : `${a}–${b}`).padEnd(22)).join('')}`);
  for (const [label, from, to] of SALE_WINDOWS) {
    console.log(`    ${label.padEnd(9)}${cell(r.error(from, to))}${places.map((p) => cell(r.error(from, to, p))).join('')}`);
  }
}
