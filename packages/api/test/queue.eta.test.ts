import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, client, createTestDatabase, key, seedSale, spawnApi, type SpawnedApi, testEnv } from '../../../test/harness.ts';
import { makeFans, median, redisEnv, sleep } from './queue.shared.ts';

/**
 * How honest etaSeconds is, measured the way a fan lives it: a sale on two API processes, fans
 * polling at pollAfterMs and recording every ETA they are told, then, once admitted, the real
 * wait (the admission instant is activeUntil − activeTtlSeconds, the server's own clock). Fans
 * take 1–3 s to pick seats and pay, or walk away and let their slot lapse, so slots turn over at
 * an uneven pace. Phases: the first 20 s after the opening (a shuffled pre-queue, nothing observed
 * yet), steady, and the first 20 s after an operator's resume. Predictions whose wait spans the
 * pause are left out: no estimator can foresee an operator. The old estimator (position × 60 s ÷
 * admissions in the last minute) is replayed on the same run from the admissions the test saw.
 */
const MAX_ACTIVE = 10;
const TTL_SECONDS = 8;
const PRE_QUEUED = 150;
const ARRIVALS_PER_SECOND = 1.5;
const OPEN_IN_MS = 4_000;
const PAUSE_AT_MS = 35_000; // after the opening
const PAUSE_FOR_MS = 7_000;
const PHASE_MS = 20_000;
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

describe('etaSeconds against the real waits, on two API processes', () => {
  const redis = redisEnv();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let apis: SpawnedApi[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url, { ...redis.env, QUEUE_MAX_ACTIVE: String(MAX_ACTIVE), QUEUE_ACTIVE_TTL_SECONDS: String(TTL_SECONDS), QUEUE_IDLE_TIMEOUT_SECONDS: '30' });
    apis = await Promise.all([spawnApi(env), spawnApi(env)]);
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    await db?.drop();
    await redis.cleanup();
  });

  it('keeps the median error within 20% in every phase, and prints it by distance from the head', { timeout: 180_000 }, async () => {
    const urls = apis.map((a) => a.url);
    const sale = await seedSale(urls[0]!, { users: 0, seatCount: 1000 });
    const arrivals = Math.ceil(((PAUSE_AT_MS + PAUSE_FOR_MS + PHASE_MS) / 1000) * ARRIVALS_PER_SECOND);
    const users = await makeFans(urls[0]!, PRE_QUEUED + arrivals);
    const ops = admin(urls[1]!);
    const openAt = Date.now() + OPEN_IN_MS;
    await ops.admin.queue.configure.mutate({ concertId: sale.concertId, opensAt: new Date(openAt) });
    const pauseAt = openAt + PAUSE_AT_MS;
    const resumeAt = pauseAt + PAUSE_FOR_MS;
    const endAt = resumeAt + PHASE_MS;

    const admissions: number[] = [];
    const records: Array<{ predictions: Prediction[]; admittedAt: number | null }> = [];
    let seat = 0;
    let lateFans = 0;
    const oldEta = (position: number, at: number) => {
      const n = admissions.filter((t) => t > at - 60_000 && t <= at).length;
      return n > 0 ? Math.ceil((position * 60) / n) : null;
    };

    const fan = async (userId: number, i: number) => {
      const record: (typeof records)[number] = { predictions: [], admittedAt: null };
      records.push(record);
      const enterOn = client(urls[i % 2]!, { userId }, { batch: false });
      let t = await enterOn.queue.enter.mutate({ concertId: sale.concertId });
      const polling = client(urls[(i + 1) % 2]!, { userId, queueToken: t.token }, { batch: false });
      while (t.status !== 'ACTIVE') {
        const at = Date.now();
        if (t.status === 'WAITING' && t.etaSeconds !== null) record.predictions.push({ at, position: t.position!, eta: t.etaSeconds, before: oldEta(t.position!, at) });
        if (t.status === 'EXPIRED' || t.status === 'SOLD_OUT') throw new Error(`fan ${userId} ended ${t.status}`);
        if (at + t.pollAfterMs > endAt) return;
        await sleep(t.pollAfterMs);
        t = await polling.queue.status.query({});
      }
      record.admittedAt = t.activeUntil!.getTime() - TTL_SECONDS * 1000;
      admissions.push(record.admittedAt);
      // Uneven sessions: 70% pick seats and pay after 1–3 s, the rest walk away (their slot lapses).
      if (Math.random() < 0.3) return;
      await sleep(1_000 + Math.random() * 2_000);
      const fanOn = client(urls[i % 2]!, { userId, queueToken: t.token }, { batch: false });
      try {
        const r = await fanOn.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [++seat], idempotencyKey: key() });
        await fanOn.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
      } catch {
        lateFans++; // a fan who noticed the admission too late to use it: the slot lapsed
      }
    };

    const running: Array<Promise<void>> = [];
    // The pre-queue fills before the opening ...
    for (let i = 0; i < PRE_QUEUED; i++) {
      running.push(fan(users[i]!, i));
      await sleep((OPEN_IN_MS - 1_000) / PRE_QUEUED);
    }
    // ... then fans keep arriving; the operator pauses and resumes on the way.
    const operator = (async () => {
      await sleep(pauseAt - Date.now());
      await ops.admin.queue.configure.mutate({ concertId: sale.concertId, paused: true });
      await sleep(resumeAt - Date.now());
      await ops.admin.queue.configure.mutate({ concertId: sale.concertId, paused: false });
    })();
    for (let i = PRE_QUEUED; i < users.length && Date.now() < endAt; i++) {
      running.push(fan(users[i]!, i));
      await sleep(1000 / ARRIVALS_PER_SECOND);
    }
    await operator;
    await Promise.all(running);

    const phaseOf = (at: number) => (at < openAt + PHASE_MS ? 'first 20 s after opening' : at >= resumeAt && at < resumeAt + PHASE_MS ? 'first 20 s after resume' : 'steady');
    const errors = new Map<string, { after: number[]; before: number[] }>();
    const add = (k: string, after: number, before: number | null) => {
      const e = errors.get(k) ?? { after: [], before: [] };
      e.after.push(after);
      if (before !== null) e.before.push(before);
      errors.set(k, e);
    };
    for (const r of records) {
      if (r.admittedAt === null) continue;
      for (const p of r.predictions) {
        const actual = (r.admittedAt - p.at) / 1000;
        // Unforeseeable: the operator paused between the prediction and the admission.
        if (actual <= 0 || (p.at < pauseAt && r.admittedAt > pauseAt)) continue;
        const after = Math.abs(p.eta - actual) / actual;
        const before = p.before === null ? null : Math.abs(p.before - actual) / actual;
        const [lo, hi] = BANDS.find(([a, b]) => p.position >= a && p.position <= b)!;
        const phase = phaseOf(p.at);
        add(`${phase} · all`, after, before);
        add(`${phase} · places ${lo}${hi === Infinity ? '+' : `–${hi}`}`, after, before);
      }
    }
    const pct = (x: number) => (Number.isNaN(x) ? '   –' : `${Math.round(x * 100)}%`.padStart(4));
    const rows = [...errors.entries()].sort(([a], [b]) => a.localeCompare(b));
    console.log(
      `ETA median absolute error (|told − real| ÷ real), ${admissions.length} admitted (${lateFans} too late to book), maxActive ${MAX_ACTIVE}:\n` +
        rows.map(([k, e]) => `  ${k.padEnd(44)} before ${pct(median(e.before))}  after ${pct(median(e.after))}  (n=${e.after.length})`).join('\n'),
    );

    expect(admissions.length).toBeGreaterThan(60);
    for (const phase of ['first 20 s after opening', 'steady', 'first 20 s after resume']) {
      const e = errors.get(`${phase} · all`);
      expect(e?.after.length ?? 0, phase).toBeGreaterThan(30);
      expect(median(e!.after), phase).toBeLessThanOrEqual(0.2);
    }
  });
});
