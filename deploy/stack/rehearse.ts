/**
 * `pnpm stack rehearse [--fans N] [--seats N] [--shows N] [--max-active N] [--kill-one] [--seed S]`:
 * a whole sale through nginx, as fans would make it. N funded users arrive at once and join one
 * concert's line (the server takes their enters as fast as it can), poll as `pollAfterMs` says,
 * and once ACTIVE pick a show that has seats left, read its seat map, hold one or two free seats
 * and pay (retrying with the same idempotency key when a request is lost). With --kill-one, one API
 * process is SIGKILLed when half the seats are sold. The last line sums it up; the exit status is 0
 * only when every invariant holds.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { AppRouter } from '@concert/api';
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import { SignJWT } from 'jose';
import pg from 'pg';
import superjson from 'superjson';
import { Agent, fetch as undiciFetch } from 'undici';
import { apiUrl, dbUrl, secrets, stopApi } from './shape.ts';

/** ZScheduleSpec's limits: a show has at most 1,000 seats, a concert at most 100 shows. */
export const MAX_SEATS_PER_SHOW = 1000;
export const MAX_SHOWS = 100;
const BALANCE = 1_000_000;
/** Enter requests in flight at once: the arrival is as fast as the server takes them, and polls, holds and payments still find sockets. */
const ENTERS_IN_FLIGHT = 64;

export interface RehearsalOptions {
  fans: number;
  /** Seats in the whole sale, split as evenly as can be over the shows. */
  seats: number;
  shows: number;
  maxActive: number;
  killOne: boolean;
  seed: number;
}

export const REHEARSE_USAGE = `pnpm stack rehearse [options]   a whole sale through nginx; exit 0 only when every invariant holds
  --fans N         funded fans who arrive at once and join the line (default 2000)
  --seats N        seats on sale in all, split evenly over the shows (default 100)
  --shows N        shows of the concert (default 2, or as many as --seats needs at ${MAX_SEATS_PER_SHOW} a show; at most ${MAX_SHOWS})
  --max-active N   the line's maxActive: fans choosing seats at once (default 50)
  --kill-one       SIGKILL API process 1 when half the seats are sold
  --seed S         the fans' random choices (default 1)
The last line reads: rehearsal: fans=… admitted=… sold=… oversold=0 lost=0 inversions=0 p99_status_ms=… p99_hold_ms=… p99_pay_ms=… ok (or FAILED: why)`;

/** A rehearsal asked for with arguments it cannot take: the message says why. */
export class RehearseUsageError extends Error {}

/** `rehearse`'s arguments (after the word itself); throws RehearseUsageError on anything it cannot take. */
export function parseRehearseArgs(args: string[]): RehearsalOptions {
  try {
    return parseOptions(args);
  } catch (err) {
    throw new RehearseUsageError(err instanceof Error ? err.message : String(err));
  }
}

function parseOptions(args: string[]): RehearsalOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      fans: { type: 'string' },
      seats: { type: 'string' },
      shows: { type: 'string' },
      'max-active': { type: 'string' },
      'kill-one': { type: 'boolean' },
      seed: { type: 'string' },
    },
  });
  const whole = (name: string, raw: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (raw === undefined) return fallback;
    const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`--${name} takes a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, not ${JSON.stringify(raw)}`);
    return n;
  };
  const seats = whole('seats', values.seats, 100, 1, MAX_SHOWS * MAX_SEATS_PER_SHOW);
  const shows = whole('shows', values.shows, Math.max(2, Math.ceil(seats / MAX_SEATS_PER_SHOW)), 1, MAX_SHOWS);
  if (seats < shows) throw new Error(`--seats ${seats} cannot fill ${shows} shows: every show needs a seat`);
  if (seats > shows * MAX_SEATS_PER_SHOW) {
    throw new Error(`--seats ${seats} over ${shows} shows is more than ${MAX_SEATS_PER_SHOW} a show (the API's limit): use --shows ${Math.ceil(seats / MAX_SEATS_PER_SHOW)} or more`);
  }
  return {
    fans: whole('fans', values.fans, 2000, 1),
    seats,
    shows,
    maxActive: whole('max-active', values['max-active'], 50, 1, 1_000_000),
    killOne: values['kill-one'] ?? false,
    seed: whole('seed', values.seed, 1, 0, 2 ** 32 - 1),
  };
}

/** `seats` over `shows`, as evenly as can be: the first shows take one more when it does not divide. */
export function showSizes(seats: number, shows: number): number[] {
  return Array.from({ length: shows }, (_, i) => Math.floor(seats / shows) + (i < seats % shows ? 1 : 0));
}

/** The concert a rehearsal sells: a show a day from a week out, open now; the front 40% of each show are R seats. */
export function saleSpec(sizes: number[], now: number) {
  return {
    title: `Rehearsal ${new Date(now).toISOString()}`,
    venue: 'Stack Hall',
    schedules: sizes.map((seatCount, i) => {
      const front = Math.max(1, Math.round(seatCount * 0.4));
      return {
        startsAt: new Date(now + (7 + i) * 86_400_000),
        bookingOpensAt: new Date(now - 3_600_000),
        seatCount,
        tiers: [
          { grade: 'R', price: 150_000, fromSeat: 1, toSeat: front },
          ...(front < seatCount ? [{ grade: 'S', price: 90_000, fromSeat: front + 1, toSeat: seatCount }] : []),
        ],
      };
    }),
  };
}

/** Where a rehearsal runs: the stack by default (stackTarget), or any API with JWT auth and its database. */
export interface RehearsalTarget {
  /** The API's base address (nginx's for the stack). */
  url: string;
  adminKey: string;
  /** AUTH_JWT_SECRET, to sign each fan's bearer token. */
  jwtSecret: string;
  /** The API's own database: fans are made in bulk there, and the verdict is read from it. */
  databaseUrl: string;
  /** Kills one API process (--kill-one); returns its pid. */
  killOneApi?: () => number | undefined;
  /** Sockets the line's requests share (default 256; see fanClients). */
  lineConnections?: number;
  log?: (line: string) => void;
}

export function stackTarget(): RehearsalTarget {
  const s = secrets();
  return { url: apiUrl(), adminKey: s.adminApiKey, jwtSecret: s.authJwtSecret, databaseUrl: dbUrl(false), killOneApi: () => stopApi(0, 'SIGKILL') };
}

function code(err: unknown): string {
  if (err instanceof TRPCClientError) {
    const data = err.data as { appCode?: string; httpStatus?: number } | undefined;
    return data?.appCode ?? (data?.httpStatus ? `HTTP_${data.httpStatus}` : 'NETWORK');
  }
  return 'NETWORK';
}

/** Answers that mean "this request may not have been handled: send it again, same key". */
const RETRYABLE = new Set(['NETWORK', 'HTTP_502', 'HTTP_503', 'HTTP_504', 'SERVICE_UNAVAILABLE', 'IDEMPOTENCY_IN_PROGRESS', 'RATE_LIMITED']);

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function p99(xs: number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!);
}

/** Runs `fn`s at most `n` at a time, in the order they asked. */
function limiter(n: number) {
  let free = n;
  const queue: Array<() => void> = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => queue.push(resolve));
    try {
      return await fn();
    } finally {
      const next = queue.shift();
      if (next) next();
      else free++;
    }
  };
}

/** What a fan saw, on this process's clock (ms since the epoch). */
export interface FanTrace {
  /** When its enter request left, and when the answer came back. */
  enterSentAt: number;
  enterDoneAt: number;
  /** When its last poll that answered WAITING left (0: never waited). */
  lastWaitingAt: number;
  /** When it first learned it was ACTIVE (null: never). */
  firstActiveAt: number | null;
}

/**
 * Pairs (A, B) where fan A was still WAITING after fan B had been admitted although B entered
 * after A — "after" in the only order a client can be sure of: B's enter left once A's had been
 * answered. (Server timestamps of two processes cannot order entries a millisecond apart.) Every
 * pair is counted, however many fans: this is an exact check, not a sample.
 */
export function countInversions(fans: FanTrace[]): number {
  const admitted = fans.filter((f) => f.firstActiveAt !== null);
  let inversions = 0;
  for (const a of fans) {
    if (!a.lastWaitingAt) continue;
    for (const b of admitted) if (b.enterSentAt > a.enterDoneAt && b.firstActiveAt! < a.lastWaitingAt) inversions++;
  }
  return inversions;
}

/** What the database says of the sale: tickets, distinct seats among them, the fans' money spent and the payments taken. */
export interface Ledger {
  capacity: number;
  sold: number;
  distinctSeats: number;
  spent: number;
  paid: number;
}

export async function readLedger(sql: InstanceType<typeof pg.Client>, scheduleIds: number[], userIds: number[], capacity: number, balance = BALANCE): Promise<Ledger> {
  const { rows } = await sql.query<{ sold: string; distinct_seats: string; spent: string; paid: string }>(
    `SELECT (SELECT count(*) FROM tickets WHERE schedule_id = ANY($2)) AS sold,
            (SELECT count(DISTINCT (schedule_id, seat_number)) FROM tickets WHERE schedule_id = ANY($2)) AS distinct_seats,
            (SELECT coalesce(sum($3::bigint - balance), 0) FROM users WHERE id = ANY($1)) AS spent,
            (SELECT coalesce(sum(p.amount), 0) FROM payments p JOIN reservations r ON r.id = p.reservation_id WHERE r.schedule_id = ANY($2)) AS paid`,
    [userIds, scheduleIds, balance],
  );
  const r = rows[0]!;
  return { capacity, sold: Number(r.sold), distinctSeats: Number(r.distinct_seats), spent: Number(r.spent), paid: Number(r.paid) };
}

export interface VerdictInput {
  fans: number;
  admitted: number;
  ledger: Ledger;
  inversions: number;
  auditOk: boolean;
  /** Failures by code that no retry mended. */
  hardErrors: Record<string, number>;
  latencies: { status: number[]; hold: number[]; pay: number[] };
}

/** The last line, and whether every invariant held. Seats sold past their count or twice, and money spent but not paid (or paid but not spent), fail it. */
export function verdict(v: VerdictInput): { ok: boolean; oversold: number; lost: number; line: string } {
  const { ledger } = v;
  const oversold = ledger.sold - ledger.distinctSeats + Math.max(0, ledger.sold - ledger.capacity);
  const lost = Math.abs(ledger.spent - ledger.paid);
  const hard = Object.entries(v.hardErrors);
  const why = [
    oversold ? `oversold=${oversold}` : '',
    lost ? `lost=${lost}` : '',
    v.inversions ? `inversions=${v.inversions}` : '',
    v.auditOk ? '' : 'audit failed',
    ledger.sold === 0 ? 'nothing sold' : '',
    hard.length ? `errors ${hard.map(([c, n]) => `${c}×${n}`).join(' ')}` : '',
  ].filter(Boolean);
  const summary = `rehearsal: fans=${v.fans} admitted=${v.admitted} sold=${ledger.sold} oversold=${oversold} lost=${lost} inversions=${v.inversions} p99_status_ms=${p99(v.latencies.status)} p99_hold_ms=${p99(v.latencies.hold)} p99_pay_ms=${p99(v.latencies.pay)}`;
  return { ok: why.length === 0, oversold, lost, line: why.length ? `${summary} FAILED: ${why.join('; ')}` : `${summary} ok` };
}

export interface RehearsalResult {
  ok: boolean;
  /** The last line printed. */
  line: string;
  admitted: number;
  /** The most fans WAITING at once, as the fans saw it. */
  longestLine: number;
  /** How the fans who were not admitted left, and the admitted who found no seat. */
  ended: { expired: number; soldOut: number; stillWaiting: number; noSeat: number };
  /** Fans whose enter was answered SOLD_OUT: they came once it had sold out (counted in ended.soldOut). */
  arrivedSoldOut: number;
  concertId: number;
  scheduleIds: number[];
  userIds: number[];
  ledger: Ledger;
}

/**
 * The fans' HTTP clients, from two connection pools. A real fan has connections of their own;
 * here thousands share a few hundred sockets, and a request waits for a free one in this
 * process. The line's requests (enter, status polls, leaving the line) take turns on one pool;
 * whatever a fan does once admitted (shows, seat map, hold, pay, leave) and the operator's calls
 * go through another, so that a buyer's hold never waits here behind the polls of thousands of
 * fans further back. (With one pool, a 20,000-fan rehearsal on a busy machine queued holds and
 * payments 25 s at p99 behind the polls, and admitted fans' 120 s slots ran out before they paid:
 * TOKEN_EXPIRED.) The server sees both, in the order they arrive.
 */
export function fanClients(url: string, pools: { line?: number; buying?: number } = {}) {
  const agents = {
    line: new Agent({ connections: pools.line ?? 256, keepAliveTimeout: 30_000, pipelining: 1 }),
    buying: new Agent({ connections: pools.buying ?? 64, keepAliveTimeout: 30_000, pipelining: 1 }),
  };
  const client = (agent: Agent, headers: Record<string, string>) =>
    createTRPCClient<AppRouter>({
      links: [
        httpLink({
          url: `${url}/trpc`,
          transformer: superjson,
          headers,
          fetch: ((input: string, init: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch,
        }),
      ],
    });
  return {
    /** For the line: queue.enter, queue.status, queue.leave while waiting. */
    line: (headers: Record<string, string>) => client(agents.line, headers),
    /** For an admitted fan's steps and the operator. */
    buying: (headers: Record<string, string>) => client(agents.buying, headers),
    close: () => Promise.all([agents.line.close(), agents.buying.close()]),
  };
}

export async function rehearse(opts: RehearsalOptions, target: RehearsalTarget = stackTarget()): Promise<RehearsalResult> {
  const log = target.log ?? ((line: string) => console.log(line));
  const random = prng(opts.seed);
  // Far fewer sockets than fans: the line is many slow pollers, not many connections.
  const clients = fanClients(target.url, { line: target.lineConnections ?? 256, buying: Math.max(64, 2 * opts.maxActive) });
  const admin = clients.buying({ 'x-admin-key': target.adminKey });
  const sql = new pg.Client({ connectionString: target.databaseUrl });
  await sql.connect();
  const started = performance.now();
  const latencies = { status: [] as number[], hold: [] as number[], pay: [] as number[] };
  const errors: Record<string, number> = {};
  const tallyError = (c: string) => (errors[c] = (errors[c] ?? 0) + 1);
  let killed: number | undefined;
  try {
    const sizes = showSizes(opts.seats, opts.shows);
    const concert = await admin.admin.concerts.create.mutate(saleSpec(sizes, Date.now()));
    const scheduleIds = concert.schedules.map((x) => x.scheduleId);
    const ours = new Set(scheduleIds);
    const capacity = opts.seats;
    await admin.admin.queue.configure.mutate({ concertId: concert.concertId, maxActive: opts.maxActive, activeTtlSeconds: 120, idleTimeoutSeconds: 60 });

    // The fans' accounts, made in bulk the way an operator's import would: a user row and its
    // opening CHARGE entry each, so every balance equals its ledger.
    const { rows } = await sql.query<{ id: string }>(
      `WITH u AS (INSERT INTO users (name, balance) SELECT 'fan ' || g, $2 FROM generate_series(1, $1) g RETURNING id, balance)
       INSERT INTO ledger_entries (user_id, kind, source, amount, balance_after, created_at)
       SELECT id, 'CHARGE', 'ADMIN', balance, balance, now() FROM u RETURNING user_id AS id`,
      [opts.fans, BALANCE],
    );
    const userIds = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    const secret = new TextEncoder().encode(target.jwtSecret);
    const jwt = (userId: number) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(String(userId)).setExpirationTime('2h').sign(secret);
    const shows = sizes.length === 1 ? '1 show' : `${sizes.length} shows`;
    const layout = sizes.every((n) => n === sizes[0]) ? `${shows} × ${sizes[0]} seats` : `${shows} of ${sizes.join(', ')} seats`;
    log(`stack: rehearsal: concert ${concert.concertId}, ${layout} (${capacity} in all), ${opts.fans} fans, maxActive ${opts.maxActive}${opts.killOne ? ', one API process killed half-way' : ''}`);

    let saleOver = false;
    let endSale!: () => void;
    const saleEnded = new Promise<void>((resolve) => (endSale = resolve));
    /** Waits, or stops waiting as soon as the sale is over. */
    const pause = (ms: number) => Promise.race([sleep(ms), saleEnded]);
    const nothingAvailable = async () => {
      const r = await sql.query<{ n: string }>(`SELECT count(*) AS n FROM seats WHERE schedule_id = ANY($1) AND reservation_id IS NULL`, [scheduleIds]);
      return Number(r.rows[0]!.n) === 0;
    };
    let soldSeats = 0;
    let saleSeconds = 0;
    const saleStarted = performance.now();
    const monitor = (async () => {
      while (!saleOver) {
        await pause(500);
        if (saleOver) break;
        const r = await sql.query<{ sold: string; held: string }>(
          `SELECT count(*) FILTER (WHERE sold_at IS NOT NULL) AS sold, count(*) FILTER (WHERE held_until > now()) AS held FROM seats WHERE schedule_id = ANY($1)`,
          [scheduleIds],
        );
        soldSeats = Number(r.rows[0]!.sold);
        if (opts.killOne && killed === undefined && soldSeats >= capacity / 2) {
          killed = target.killOneApi?.();
          log(`stack: rehearsal: SIGKILLed API process 1 (pid ${killed}) with ${soldSeats} of ${capacity} seats sold`);
        }
        if (soldSeats >= capacity || (soldSeats > 0 && Number(r.rows[0]!.held) === 0 && (await nothingAvailable()))) {
          saleSeconds = (performance.now() - saleStarted) / 1000;
          saleOver = true;
          endSale();
        }
      }
    })();

    /** Calls `fn` until it answers something other than a retryable failure. */
    const persist = async <T>(fn: () => Promise<T>, bucket?: number[]): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        const t0 = performance.now();
        try {
          const out = await fn();
          bucket?.push(performance.now() - t0);
          return out;
        } catch (err) {
          const c = code(err);
          if (!RETRYABLE.has(c) || attempt >= 20) throw err;
          tallyError(`retried:${c}`);
          await sleep(100 + 100 * attempt);
        }
      }
    };

    const fans: FanTrace[] = [];
    const ended = { expired: 0, soldOut: 0, stillWaiting: 0, noSeat: 0 };
    let arrivedSoldOut = 0;
    let waiting = 0;
    let longestLine = 0;
    const entering = limiter(ENTERS_IN_FLIGHT);
    const runFan = async (userId: number): Promise<void> => {
      const headers: Record<string, string> = { authorization: `Bearer ${await jwt(userId)}` };
      const fan: FanTrace = { enterSentAt: 0, enterDoneAt: 0, lastWaitingAt: 0, firstActiveAt: null };
      const ticket = await entering(() => {
        fan.enterSentAt = Date.now();
        return persist(() => clients.line(headers).queue.enter.mutate({ concertId: concert.concertId }));
      });
      fan.enterDoneAt = Date.now();
      fans.push(fan);
      const inLine = clients.line({ ...headers, 'x-queue-token': ticket.token });
      const me = clients.buying({ ...headers, 'x-queue-token': ticket.token });
      let t = ticket;
      if (t.status === 'SOLD_OUT') arrivedSoldOut++;
      if (t.status === 'WAITING') longestLine = Math.max(longestLine, ++waiting);
      try {
        while (!saleOver && (t.status === 'WAITING' || t.status === 'PRE_QUEUE')) {
          // As the server asks, a little spread so that fans do not poll in step.
          await pause(t.pollAfterMs * (1 + 0.2 * random()));
          if (saleOver) break;
          const polled = performance.now();
          try {
            t = await persist(() => inLine.queue.status.query({}), latencies.status);
          } catch (err) {
            tallyError(code(err));
            return;
          }
          if (t.status === 'WAITING') fan.lastWaitingAt = Date.now() - (performance.now() - polled);
        }
      } finally {
        if (ticket.status === 'WAITING') waiting--;
      }
      // Told so by the line (also a fan who entered once it had sold out), or still in it when the sale ended.
      if (t.status === 'EXPIRED') return void ended.expired++;
      if (t.status === 'SOLD_OUT') return void ended.soldOut++;
      if (t.status !== 'ACTIVE') {
        ended.stillWaiting++;
        return void (await inLine.queue.leave.mutate({}).catch(() => {}));
      }
      fan.firstActiveAt = Date.now();
      for (let tries = 0; tries < 4 && !saleOver; tries++) {
        // A fan picks among the shows that still have seats (the list leaves sold-out ones out).
        const open = (await persist(() => me.concerts.schedules.query({ concertId: concert.concertId }))).schedules.filter((s) => ours.has(s.scheduleId) && s.availableSeats > 0);
        if (!open.length) break;
        const scheduleId = open[Math.floor(random() * open.length)]!.scheduleId;
        const map = await persist(() => me.concerts.seats.query({ scheduleId }));
        const free = map.seats.filter((x) => x.status === 'AVAILABLE').map((x) => x.seatNumber);
        if (!free.length) continue;
        const want = Math.min(free.length, 1 + Math.floor(random() * 2));
        const seats: number[] = [];
        for (let i = 0; i < want; i++) seats.push(...free.splice(Math.floor(random() * free.length), 1));
        const holdKey = `hold-${randomUUID()}`;
        let held;
        try {
          held = await persist(() => me.reservations.hold.mutate({ scheduleId, seatNumbers: seats, idempotencyKey: holdKey }), latencies.hold);
        } catch (err) {
          const c = code(err);
          if (c === 'SEAT_UNAVAILABLE') continue;
          tallyError(c);
          return;
        }
        const payKey = `pay-${randomUUID()}`;
        try {
          await persist(() => me.payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: payKey }), latencies.pay);
        } catch (err) {
          tallyError(code(err));
        }
        return;
      }
      ended.noSeat++;
      await me.queue.leave.mutate({}).catch(() => {});
    };

    // Everyone arrives at once; the enters go in as fast as the server answers them.
    await Promise.all(userIds.map((userId) => runFan(userId).catch((err) => void tallyError(`fan:${code(err)}`))));
    saleSeconds ||= (performance.now() - saleStarted) / 1000;
    saleOver = true;
    endSale();
    await monitor;

    // The verdict comes from the database and the audit, not from what the fans believe.
    const ledger = await readLedger(sql, scheduleIds, userIds, capacity);
    const audit = await persist(() => admin.admin.audit.query({}));
    const inversions = countInversions(fans);
    const admitted = fans.filter((f) => f.firstActiveAt !== null).length;
    const hardErrors = Object.fromEntries(Object.entries(errors).filter(([c]) => !c.startsWith('retried:')));
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    log(`fans ${opts.fans}, admitted ${admitted}, seats sold ${ledger.sold}/${capacity} in a sale of ${saleSeconds.toFixed(1)} s (${seconds} s in all)`);
    log(
      `line: longest ${longestLine} waiting at once; not admitted: ${ended.expired} dropped (EXPIRED), ${ended.soldOut} told SOLD_OUT (${arrivedSoldOut} as they arrived), ${ended.stillWaiting} still waiting when the sale ended; ${ended.noSeat} admitted found no seat`,
    );
    log(`requests: status ${latencies.status.length}, holds ${latencies.hold.length}, payments ${latencies.pay.length}; retried: ${JSON.stringify(Object.fromEntries(Object.entries(errors).filter(([c]) => c.startsWith('retried:'))))}`);
    log(`audit: ${audit.ok ? 'ok' : 'FAILED'} (${audit.checks.map((c) => `${c.name}${c.ok ? '' : ' FAILED'}`).join(', ')})`);
    if (Object.keys(hardErrors).length) log(`errors: ${JSON.stringify(hardErrors)}`);
    const v = verdict({ fans: opts.fans, admitted, ledger, inversions, auditOk: audit.ok, hardErrors, latencies });
    // (Before the verdict: the last line is the verdict.)
    if (killed !== undefined) log(`stack: API process 1 stays down: 'pnpm stack up' starts it again`);
    log(v.line);
    return { ok: v.ok, line: v.line, admitted, longestLine, ended, arrivedSoldOut, concertId: concert.concertId, scheduleIds, userIds, ledger };
  } finally {
    await sql.end();
    await clients.close();
  }
}
