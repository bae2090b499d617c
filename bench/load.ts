import { Pool } from 'undici';

export interface Req {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface RunResult {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  /** Count by outcome: 'ok' or the appCode / HTTP status of a failure. */
  outcomes: Record<string, number>;
  /** Latencies (ms) by outcome, for comparing winners with losers. */
  byOutcome: Record<string, number[]>;
}

/**
 * A closed-loop load generator: `connections` workers on keep-alive sockets (no pipelining),
 * each sending its next request when the last one answers, until `total` requests are sent
 * or `seconds` have passed. The sockets are undici's (Node's own fetch is built on it): it costs
 * the machine about a third of node:http's client per request, and the generator shares the
 * cores with the servers it measures (its CPU per request is in bench/RESULTS.md).
 */
export async function run(opts: {
  port: number;
  connections: number;
  next: (i: number) => Req;
  total?: number;
  seconds?: number;
}): Promise<RunResult> {
  const pool = new Pool(`http://127.0.0.1:${opts.port}`, { connections: opts.connections, pipelining: 1 });
  const latencies: number[] = [];
  const byOutcome: Record<string, number[]> = {};
  let sent = 0;
  const started = performance.now();
  const deadline = opts.seconds ? started + opts.seconds * 1000 : Infinity;
  const total = opts.total ?? Infinity;
  async function worker() {
    while (sent < total && performance.now() < deadline) {
      const req = opts.next(sent++);
      const t0 = performance.now();
      const { status, text } = await send(pool, req);
      const ms = performance.now() - t0;
      latencies.push(ms);
      const outcome = status === 200 ? 'ok' : outcomeOf(status, text);
      (byOutcome[outcome] ??= []).push(ms);
    }
  }
  await Promise.all(Array.from({ length: opts.connections }, worker));
  const seconds = (performance.now() - started) / 1000;
  await pool.destroy();
  latencies.sort((a, b) => a - b);
  const outcomes = Object.fromEntries(Object.entries(byOutcome).map(([k, v]) => [k, v.length]));
  return { requests: latencies.length, seconds, rps: latencies.length / seconds, p50: pct(latencies, 50), p95: pct(latencies, 95), p99: pct(latencies, 99), outcomes, byOutcome };
}

export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const s = sorted[0]! <= sorted.at(-1)! ? sorted : [...sorted].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function outcomeOf(status: number, text: string): string {
  const m = /"appCode":"([A-Z_]+)"/.exec(text);
  return m ? m[1]! : `HTTP_${status}`;
}

async function send(pool: Pool, req: Req): Promise<{ status: number; text: string }> {
  try {
    const res = await pool.request({
      path: req.path,
      method: req.method,
      headers: { ...req.headers, ...(req.body ? { 'content-type': 'application/json' } : {}) },
      ...(req.body ? { body: req.body } : {}),
    });
    return { status: res.statusCode, text: await res.body.text() };
  } catch (err) {
    return { status: 0, text: `"appCode":"NETWORK_${(err as NodeJS.ErrnoException).code ?? 'ERROR'}"` };
  }
}
