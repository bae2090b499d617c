import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, key, outcome, type SpawnedApi, spawnApi, tally } from '../../../test/harness.ts';
import { recomputeBooks } from './money.books.ts';
import { moneyRig } from './money.shared.ts';

/**
 * Every money-moving call at once, over two API processes through PgBouncer: holds, payments,
 * refunds and top-ups each sent with one key to both processes at once (and sometimes a
 * different body), cancels, waitlist joins and offers paid, and the show cancelled mid-storm.
 * Then admin.audit and the books recomputed from the rows.
 */
describe('money chaos: two API processes through PgBouncer', () => {
  const rig = moneyRig('chaos', { HOLD_TTL_SECONDS: '2', WAITLIST_OFFER_SECONDS: '2' });
  const { url, adminAt } = rig;
  let sql: InstanceType<typeof pg.Client>;
  let env: Record<string, string>;
  /** A third process that takes one copy of each doubled call, and is SIGKILLed mid-storm (CHAOS_KILL=1). */
  let victim: SpawnedApi | undefined;

  beforeAll(() => {
    ({ sql, env } = rig);
  });
  afterAll(async () => {
    await victim?.stop('SIGKILL');
  });

  async function tokenFor(userId: number, concertId: number): Promise<string | undefined> {
    const fan = client(url(userId), { userId }, { batch: false });
    const deadline = Date.now() + 5_000;
    for (;;) {
      const t = await fan.queue.enter.mutate({ concertId });
      if (t.status === 'ACTIVE') return t.token;
      if (Date.now() > deadline) return undefined;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const rounds = Number(process.env.CHAOS_ROUNDS ?? 1);
  for (let round = 0; round < rounds; round++) {
    // Alternately a roomy show and a scarce one (sold out at once: the waitlist and its offers carry the sale).
    const SEATS = round % 2 === 0 ? 10 : 5;
    it(`round ${round}: a storm of holds, payments, refunds, top-ups, cancels and waitlists, and the show cancelled mid-way`, { timeout: 240_000 }, async () => {
      const now = Date.now();
      const c = await adminAt(0).admin.concerts.create.mutate({
        title: `Chaos ${key()}`,
        schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: SEATS }],
      });
      const concertId = c.concertId;
      const scheduleId = c.schedules[0]!.scheduleId;
      const users: number[] = [];
      for (let i = 0; i < 12; i++) users.push((await adminAt(i).admin.users.create.mutate({ name: `chaos ${i}`, initialBalance: 250_000 })).userId);
      const kill = process.env.CHAOS_KILL === '1';
      if (kill) victim = await spawnApi(env);
      const log: string[] = [];
      const stopAt = Date.now() + 12_000;
      // Cancelled at 6 to 11 s, or (one round in three) only after the storm.
      const cancelAt = round % 3 === 2 ? Infinity : Date.now() + 6_000 + ((round * 1_700) % 5_000);
      let cancelled = false;

      const killAt = Date.now() + 3_000 + ((round * 2_300) % 6_000);
      let killed = false;
      // A call that got no answer (its process died) is retried on a survivor with the same input and key.
      const call = async <T,>(userId: number, p: number, token: string | undefined, f: (api: ReturnType<typeof client>) => Promise<T>) => {
        const who = { userId, ...(token ? { queueToken: token } : {}) };
        const first = p === 1 && victim && !killed ? victim.url : url(userId + p);
        let o = await outcome(f(client(first, who, { batch: false })));
        if (o.startsWith('HTTP_undefined')) {
          log.push('network');
          o = await outcome(f(client(url(userId), who, { batch: false })));
        }
        return o;
      };
      const both = <T,>(userId: number, token: string | undefined, f: (api: ReturnType<typeof client>) => Promise<T>, tag: string) =>
        Promise.all([0, 1].map((p) => call(userId, p, token, f).then((o) => log.push(`${tag}:${o}`))));
      const killer = kill
        ? (async () => {
            while (Date.now() < killAt) await new Promise((r) => setTimeout(r, 50));
            killed = true;
            victim!.child.kill('SIGKILL');
            await victim!.stop();
            victim = undefined;
          })()
        : Promise.resolve();

      const fan = async (userId: number, seed: number) => {
        let s = seed;
        const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
        while (Date.now() < stopAt) {
          const token = await tokenFor(userId, concertId).catch(() => undefined);
          const mine = await client(url(userId), { userId }, { batch: false }).reservations.mine.query({ limit: 50 });
          const held = mine.items.filter((r) => r.status === 'HELD');
          const paid = mine.items.filter((r) => r.status === 'PAID');
          const x = rand();
          if (x < 0.3 && token) {
            const start = 1 + Math.floor(rand() * (SEATS - 1));
            const seats = [start, Math.min(SEATS, start + 1)].filter((v, i, a) => a.indexOf(v) === i);
            const k = key('h');
            if (rand() < 0.2) {
              await Promise.all([
                outcome(client(url(userId), { userId, queueToken: token }, { batch: false }).reservations.hold.mutate({ scheduleId, seatNumbers: seats, idempotencyKey: k })).then((o) => log.push(`hold:${o}`)),
                outcome(client(url(userId + 1), { userId, queueToken: token }, { batch: false }).reservations.hold.mutate({ scheduleId, seatNumbers: [start], idempotencyKey: k })).then((o) => log.push(`hold2:${o}`)),
              ]);
            } else {
              await both(userId, token, (api) => api.reservations.hold.mutate({ scheduleId, seatNumbers: seats, idempotencyKey: k }), 'hold');
            }
          } else if (x < 0.55 && held.length > 0) {
            const r = held[Math.floor(rand() * held.length)]!;
            const k = key('p');
            await both(userId, r.source === 'WAITLIST' ? undefined : token, (api) => api.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: k }), 'pay');
          } else if (x < 0.7 && paid.length > 0) {
            const r = paid[Math.floor(rand() * paid.length)]!;
            const k = key('r');
            await Promise.all([
              both(userId, undefined, (api) => api.reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: k }), 'refund'),
              outcome(client(url(userId), { userId }, { batch: false }).reservations.refund.mutate({ reservationId: r.reservationId, idempotencyKey: key('r2') })).then((o) => log.push(`refund2:${o}`)),
            ]);
          } else if (x < 0.75) {
            const k = key('c');
            const amount = 1_000 + Math.floor(rand() * 200_000);
            await both(userId, undefined, (api) => api.balance.charge.mutate({ amount, idempotencyKey: k }), 'charge');
          } else if (x < 0.88 && held.length > 0) {
            const r = held[Math.floor(rand() * held.length)]!;
            await both(userId, undefined, (api) => api.reservations.cancel.mutate({ reservationId: r.reservationId }), 'cancel');
          } else if (x < 0.95) {
            await both(userId, undefined, (api) => api.waitlist.join.mutate({ scheduleId, seatCount: 1 + Math.floor(rand() * 2) }), 'join');
          } else {
            const entries = await client(url(userId), { userId }, { batch: false }).waitlist.mine.query({});
            const live = entries.items.find((e) => e.status === 'WAITING' || e.status === 'OFFERED');
            if (live) await both(userId, undefined, (api) => api.waitlist.leave.mutate({ entryId: live.entryId }), 'leave');
          }
          if (!cancelled && Date.now() > cancelAt) {
            cancelled = true;
            await Promise.all([0, 1].map((p) => outcome(adminAt(p).admin.schedules.cancel.mutate({ scheduleId })).then((o) => log.push(`showcancel:${o}`))));
          }
        }
      };
      await Promise.all([...users.map((u, i) => fan(u, 1000 * round + i + 1)), killer]);
      if (!cancelled) await Promise.all([0, 1].map((p) => outcome(adminAt(p).admin.schedules.cancel.mutate({ scheduleId })).then((o) => log.push(`showcancel:${o}`))));
      const counts = tally(log);
      const events = await sql.query(`SELECT type, count(*)::int AS n FROM outbox_events WHERE schedule_id = $1 GROUP BY type ORDER BY type`, [scheduleId]);
      console.log(`[money chaos round ${round}, ${SEATS} seats${kill ? ', a process killed' : ''}] ${JSON.stringify(counts)}; events ${JSON.stringify(Object.fromEntries(events.rows.map((r) => [r.type, r.n])))}`);
      expect(Object.keys(counts).filter((o) => /INTERNAL|HTTP_5|SERVICE_UNAVAILABLE/.test(o)), JSON.stringify(counts)).toEqual([]);
      const audit = await adminAt(1).admin.audit.query({});
      expect(audit.checks.filter((ch) => !ch.ok)).toEqual([]);
      expect(await recomputeBooks(sql)).toEqual([]);
    });
  }
});
