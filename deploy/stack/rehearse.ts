/**
 * `pnpm stack rehearse --fans N [--kill-one]`: a whole sale through nginx, as fans would make it.
 * N funded users join one concert's line at once, poll as `pollAfterMs` says, and once ACTIVE
 * read a seat map, hold one or two free seats and pay (retrying with the same idempotency key
 * when a request is lost). With --kill-one, one API process is SIGKILLed when half the seats
 * are sold. The last line sums it up; the exit status is 0 only when every invariant holds.
 */
import { randomUUID } from 'node:crypto';
import type { AppRouter } from '@concert/api';
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import { SignJWT } from 'jose';
import pg from 'pg';
import superjson from 'superjson';
import { Agent, setGlobalDispatcher } from 'undici';
import { apiUrl, dbUrl, PORTS, say, secrets, stopApi } from './shape.ts';

const SHOWS = 2;
const SEATS_PER_SHOW = 50;
const MAX_ACTIVE = 50;
const BALANCE = 1_000_000;

export interface RehearsalOptions {
  fans: number;
  killOne: boolean;
  seed: number;
}

// Far fewer sockets than fans: the line is many slow pollers, not many connections.
const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000, pipelining: 1 });
setGlobalDispatcher(agent);

function api(headers: Record<string, string>) {
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${apiUrl()}/trpc`,
        transformer: superjson,
        headers,
      }),
    ],
  });
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

interface Fan {
  userId: number;
  /** When this fan's enter request left, and when its answer came back (this process's clock). */
  enterSentAt: number;
  enterDoneAt: number;
  lastWaitingAt: number;
  firstActiveAt: number | null;
  paidSeats: number;
}

export async function rehearse(opts: RehearsalOptions): Promise<boolean> {
  const random = prng(opts.seed);
  const s = secrets();
  const admin = api({ 'x-admin-key': s.adminApiKey });
  const sql = new pg.Client({ connectionString: dbUrl(false) });
  await sql.connect();
  const started = performance.now();
  const latencies = { status: [] as number[], hold: [] as number[], pay: [] as number[] };
  const errors: Record<string, number> = {};
  const tallyError = (c: string) => (errors[c] = (errors[c] ?? 0) + 1);
  let killed: number | undefined;
  try {
    const now = Date.now();
    const concert = await admin.admin.concerts.create.mutate({
      title: `Rehearsal ${new Date(now).toISOString()}`,
      venue: 'Stack Hall',
      schedules: Array.from({ length: SHOWS }, (_, i) => ({
        startsAt: new Date(now + (7 + i) * 86_400_000),
        bookingOpensAt: new Date(now - 3_600_000),
        seatCount: SEATS_PER_SHOW,
        tiers: [
          { grade: 'R', price: 150_000, fromSeat: 1, toSeat: 20 },
          { grade: 'S', price: 90_000, fromSeat: 21, toSeat: SEATS_PER_SHOW },
        ],
      })),
    });
    const scheduleIds = concert.schedules.map((x) => x.scheduleId);
    const capacity = SHOWS * SEATS_PER_SHOW;
    await admin.admin.queue.configure.mutate({ concertId: concert.concertId, maxActive: MAX_ACTIVE, activeTtlSeconds: 120, idleTimeoutSeconds: 60 });

    // The fans' accounts, made in bulk the way an operator's import would: a user row and its
    // opening CHARGE entry each, so every balance equals its ledger.
    const { rows } = await sql.query<{ id: string }>(
      `WITH u AS (INSERT INTO users (name, balance) SELECT 'fan ' || g, $2 FROM generate_series(1, $1) g RETURNING id, balance)
       INSERT INTO ledger_entries (user_id, kind, source, amount, balance_after, created_at)
       SELECT id, 'CHARGE', 'ADMIN', balance, balance, now() FROM u RETURNING user_id AS id`,
      [opts.fans, BALANCE],
    );
    const userIds = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    const secret = new TextEncoder().encode(s.authJwtSecret);
    const jwt = (userId: number) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(String(userId)).setExpirationTime('2h').sign(secret);
    say(`rehearsal: concert ${concert.concertId}, ${SHOWS} shows × ${SEATS_PER_SHOW} seats, ${opts.fans} fans, maxActive ${MAX_ACTIVE}${opts.killOne ? ', one API process killed half-way' : ''}`);

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
    const monitor = (async () => {
      while (!saleOver) {
        await sleep(500);
        const r = await sql.query<{ sold: string; held: string }>(
          `SELECT count(*) FILTER (WHERE sold_at IS NOT NULL) AS sold, count(*) FILTER (WHERE held_until > now()) AS held FROM seats WHERE schedule_id = ANY($1)`,
          [scheduleIds],
        );
        soldSeats = Number(r.rows[0]!.sold);
        if (opts.killOne && killed === undefined && soldSeats >= capacity / 2) {
          killed = stopApi(0, 'SIGKILL');
          say(`rehearsal: SIGKILLed API process 1 (pid ${killed}) with ${soldSeats} of ${capacity} seats sold`);
        }
        if (soldSeats >= capacity || (soldSeats > 0 && Number(r.rows[0]!.held) === 0 && (await nothingAvailable()))) {
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

    const fans: Fan[] = [];
    const runFan = async (userId: number): Promise<void> => {
      const headers: Record<string, string> = { authorization: `Bearer ${await jwt(userId)}` };
      const enterSentAt = Date.now();
      const ticket = await persist(() => api(headers).queue.enter.mutate({ concertId: concert.concertId }));
      const fan: Fan = { userId, enterSentAt, enterDoneAt: Date.now(), lastWaitingAt: 0, firstActiveAt: null, paidSeats: 0 };
      fans.push(fan);
      const me = api({ ...headers, 'x-queue-token': ticket.token });
      let t = ticket;
      while (!saleOver && t.status !== 'ACTIVE') {
        if (t.status === 'EXPIRED' || (t.status as string) === 'SOLD_OUT') return;
        // As the server asks, a little spread so that fans do not poll in step.
        await pause(t.pollAfterMs * (1 + 0.2 * random()));
        if (saleOver) break;
        const polled = performance.now();
        try {
          t = await persist(() => me.queue.status.query({}), latencies.status);
        } catch (err) {
          tallyError(code(err));
          return;
        }
        if (t.status === 'WAITING') fan.lastWaitingAt = Date.now() - (performance.now() - polled);
      }
      if (t.status !== 'ACTIVE') return void (await me.queue.leave.mutate({}).catch(() => {}));
      fan.firstActiveAt = Date.now();
      for (let tries = 0; tries < 4 && !saleOver; tries++) {
        const scheduleId = scheduleIds[Math.floor(random() * scheduleIds.length)]!;
        const map = await persist(() => me.concerts.seats.query({ scheduleId }));
        const free = map.seats.filter((x) => x.status === 'AVAILABLE').map((x) => x.seatNumber);
        if (!free.length) continue;
        const want = Math.min(free.length, 1 + Math.floor(random() * 2));
        const seats = free.sort(() => random() - 0.5).slice(0, want);
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
          fan.paidSeats += seats.length;
        } catch (err) {
          tallyError(code(err));
        }
        return;
      }
      await me.queue.leave.mutate({}).catch(() => {});
    };

    // Everyone arrives within a few seconds; far fewer requests than fans are in flight at once.
    const inFlight = new Set<Promise<void>>();
    const all: Array<Promise<void>> = [];
    for (const userId of userIds) {
      const p = runFan(userId).catch((err) => void tallyError(`fan:${code(err)}`));
      all.push(p);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= 400) await Promise.race(inFlight);
    }
    await Promise.all(all);
    saleOver = true;
    endSale();
    await monitor;

    // The verdict comes from the database and the audit, not from what the fans believe.
    const sold = Number((await sql.query<{ n: string }>(`SELECT count(*) AS n FROM tickets WHERE schedule_id = ANY($1)`, [scheduleIds])).rows[0]!.n);
    const distinct = Number(
      (await sql.query<{ n: string }>(`SELECT count(DISTINCT (schedule_id, seat_number)) AS n FROM tickets WHERE schedule_id = ANY($1)`, [scheduleIds])).rows[0]!.n,
    );
    const oversold = sold - distinct + Math.max(0, sold - capacity);
    const money = (
      await sql.query<{ spent: string; paid: string }>(
        `SELECT (SELECT coalesce(sum($3::bigint - balance), 0) FROM users WHERE id = ANY($1)) AS spent,
                (SELECT coalesce(sum(p.amount), 0) FROM payments p JOIN reservations r ON r.id = p.reservation_id WHERE r.schedule_id = ANY($2)) AS paid`,
        [userIds, scheduleIds, BALANCE],
      )
    ).rows[0]!;
    const lost = Math.abs(Number(money.spent) - Number(money.paid));
    const audit = await persist(() => admin.admin.audit.query({}));
    // An inversion: fan A still WAITING after fan B was admitted, although B entered after A —
    // "after" in the only order a client can be sure of: B's enter left once A's had been
    // answered. (Server timestamps of two processes cannot order entries a millisecond apart.)
    const admittedFans = fans.filter((f) => f.firstActiveAt !== null);
    let inversions = 0;
    for (const a of fans) {
      if (!a.lastWaitingAt) continue;
      for (const b of admittedFans) if (b.enterSentAt > a.enterDoneAt && b.firstActiveAt! < a.lastWaitingAt) inversions++;
    }
    const hardErrors = Object.entries(errors).filter(([c]) => !c.startsWith('retried:'));
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`fans ${opts.fans}, admitted ${admittedFans.length}, seats sold ${sold}/${capacity}, in ${seconds} s`);
    console.log(`requests: status ${latencies.status.length}, holds ${latencies.hold.length}, payments ${latencies.pay.length}; retried: ${JSON.stringify(Object.fromEntries(Object.entries(errors).filter(([c]) => c.startsWith('retried:'))))}`);
    console.log(`audit: ${audit.ok ? 'ok' : 'FAILED'} (${audit.checks.map((c) => `${c.name}${c.ok ? '' : ' FAILED'}`).join(', ')})`);
    if (hardErrors.length) console.log(`errors: ${JSON.stringify(Object.fromEntries(hardErrors))}`);
    const why = [
      oversold ? `oversold=${oversold}` : '',
      lost ? `lost=${lost}` : '',
      inversions ? `inversions=${inversions}` : '',
      audit.ok ? '' : 'audit failed',
      sold === 0 ? 'nothing sold' : '',
      hardErrors.length ? `errors ${hardErrors.map(([c, n]) => `${c}×${n}`).join(' ')}` : '',
    ].filter(Boolean);
    const summary = `rehearsal: fans=${opts.fans} admitted=${admittedFans.length} sold=${sold} oversold=${oversold} lost=${lost} inversions=${inversions} p99_status_ms=${p99(latencies.status)} p99_hold_ms=${p99(latencies.hold)} p99_pay_ms=${p99(latencies.pay)}`;
    console.log(why.length ? `${summary} FAILED: ${why.join('; ')}` : `${summary} ok`);
    return why.length === 0;
  } finally {
    await sql.end();
    await agent.close();
    if (killed !== undefined) say(`API process 1 stays down: 'pnpm stack up' starts it again (ports ${PORTS.apis.join(', ')})`);
  }
}
