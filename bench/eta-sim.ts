/**
 * `pnpm eta-sim`: the waiting room's ETA on the memory store and the test clock, without machine
 * noise (simulateSale in packages/core/src/queue/queue.eta.sim.ts), for six kinds of sale and
 * several seeds each. It prints, per kind, each seed's median |told − real| ÷ real and median
 * signed error (told − real) ÷ real in the opening (the first half of the arrivals) and steady
 * (the second half). SEEDS=n sets the seeds (4), ONLY=text the kinds.
 */
import { type SimSale, simulateSale } from '../packages/core/src/queue/queue.eta.sim.ts';

const falling = (t: number) => Math.max(100, 1200 - (t - 4000) / 20);
const kinds: Record<string, SimSale> = {
  '600 s TTL, nobody walks away, paying takes 0 ms': { ttlSeconds: 600, walkAway: 0, perSecond: 4, latency: () => 0, arrivalsMs: 40_000 },
  '600 s TTL, nobody walks away, paying takes 300 ms': { ttlSeconds: 600, walkAway: 0, perSecond: 4, latency: () => 300, arrivalsMs: 40_000 },
  '600 s TTL, nobody walks away, paying takes 1.2 s falling to 0.1 s': { ttlSeconds: 600, walkAway: 0, perSecond: 4, latency: falling, arrivalsMs: 40_000 },
  '6 s TTL, a quarter walk away, paying takes 300 ms': { ttlSeconds: 6, walkAway: 0.25, perSecond: 1, latency: () => 300, arrivalsMs: 40_000 },
  '6 s TTL, a quarter walk away, paying takes 1.2 s falling to 0.1 s': { ttlSeconds: 6, walkAway: 0.25, perSecond: 1, latency: falling, arrivalsMs: 40_000 },
  '600 s TTL, buyers think 20–80 s (windows of 200 s)': { ttlSeconds: 600, walkAway: 0, perSecond: 0.15, latency: () => 300, think: (g) => 20_000 + g() * 60_000, arrivalsMs: 400_000 },
};
const seeds = Number(process.env.SEEDS ?? 4);
const pct = (x: number) => `${Math.round(x * 100)}%`;
for (const [name, kind] of Object.entries(kinds)) {
  if (process.env.ONLY && !name.includes(process.env.ONLY)) continue;
  const runs: Array<Awaited<ReturnType<typeof simulateSale>>> = [];
  for (let seed = 1; seed <= seeds; seed++) runs.push(await simulateSale(seed, kind));
  const half = kind.arrivalsMs / 2;
  const row = (phase: string, from: number) => {
    const e = runs.map((r) => r.error(from, from + half));
    return `  ${phase.padEnd(8)} error ${e.map((x) => pct(x.abs)).join(', ')}  signed ${e.map((x) => pct(x.signed)).join(', ')}`;
  };
  const left = runs.reduce((n, r) => n + r.unadmitted, 0);
  console.log(`${name}${left ? ` (${left} fans never admitted)` : ''}\n${row('opening', 0)}\n${row('steady', half)}`);
}
