import { describe, expect, it } from 'vitest';
import { admin as harnessAdmin } from '../../../test/harness.ts';
import { ADMIN_KEY, concert, concertLive, useGatedCli } from './helpers.ts';

// What a fan reads when the line stops: every seat held (ALL_HELD), or nothing left (SOLD_OUT).
// The built binary against the API as its own process, on the real PostgreSQL and Redis.
const cli = useGatedCli();

/** A concert of one seat and two funded fans. */
async function oneSeat() {
  const a = harnessAdmin(cli.api.url);
  const now = Date.now();
  const c = await a.admin.concerts.create.mutate({
    title: 'One Seat',
    venue: 'Hall',
    schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: 1 }],
  });
  const fans = await Promise.all([0, 1].map(async (i) => String((await a.admin.users.create.mutate({ name: `fan ${i}`, initialBalance: 200_000 })).userId)));
  return { concertId: String(c.concertId), scheduleId: String(c.schedules[0]!.scheduleId), fans: fans as [string, string] };
}

describe('a hold that outlasts the turn', () => {
  it('hold names the end of the turn as the time to pay by, when it comes before the hold lapses', async () => {
    const { concertId, scheduleId, fans } = await oneSeat();
    const [a, b] = fans;
    // A two-minute turn, and a hold of five minutes made at once: the hold outlasts the turn.
    await harnessAdmin(cli.api.url).admin.queue.configure.mutate({ concertId: Number(concertId), activeTtlSeconds: 120 });
    expect((await concert(['--user', a, 'queue', 'join', concertId], cli.env)).code).toBe(0);
    const hold = await concert(['--user', a, 'hold', scheduleId, '1'], cli.env);
    expect(hold.code, hold.stderr).toBe(0);
    expect(hold.stdout).toMatch(/Held\. Pay by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: your turn in line ends then, before the hold does, and paying needs it: concert pay [0-9a-f-]{36}/);
    // A turn longer than the hold: the hold's own lapse is the deadline.
    await harnessAdmin(cli.api.url).admin.queue.configure.mutate({ concertId: Number(concertId), activeTtlSeconds: 3600 });
    expect((await concert(['--user', b, 'queue', 'join', concertId], cli.env)).code).toBe(0);
    expect((await concert(['--user', a, 'cancel', /concert pay (\S+)/.exec(hold.stdout)![1]!], cli.env)).code).toBe(0);
    await expect.poll(async () => (await concert(['--user', b, 'queue', 'status', concertId], cli.env)).stdout, { timeout: 10_000 }).toMatch(/status\s+ACTIVE/);
    const second = await concert(['--user', b, 'hold', scheduleId, '1'], cli.env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('Held. Pay before it lapses: concert pay');
  });
});

describe('a line that stops says why', () => {
  it('every seat held: the ticket and the waiting line say so instead of "ETA unknown", and the wait ends when the hold is given back', async () => {
    const { concertId, scheduleId, fans } = await oneSeat();
    const [a, b] = fans;
    expect((await concert(['--user', a, 'queue', 'join', concertId], cli.env)).code).toBe(0);
    const hold = await concert(['--user', a, '--json', 'hold', scheduleId, '1'], cli.env);
    expect(hold.code, hold.stderr).toBe(0);
    const stats = await concert(['--admin-key', ADMIN_KEY, '--json', 'admin', 'queue', 'stats', concertId], cli.env);
    expect(stats.json().state).toBe('ALL_HELD');

    const joined = await concert(['--user', b, 'queue', 'join', concertId], cli.env);
    expect(joined.code, joined.stderr).toBe(0);
    expect(joined.stdout).toMatch(/status\s+WAITING/);
    expect(joined.stdout).toMatch(/eta\s+none for now: no seat is free \(all held, or booking not open yet\)/);
    expect(joined.stdout).toContain('The line moves again when a seat frees up (a hold lapses or is released) or booking opens; your place is kept.');
    expect(joined.stdout).not.toContain('unknown');

    const waiting = concertLive(['--user', b, 'queue', 'join', concertId, '--wait'], cli.env);
    await waiting.waitForStderr(/no seat is free right now/);
    expect((await concert(['--user', a, 'cancel', hold.json().reservationId], cli.env)).code).toBe(0);
    const done = await waiting.done;
    expect(done.code, done.stderr).toBe(0);
    // Without a terminal, a line per change: the reason the line stood still, then the turn.
    expect(done.stderr.split('\n')[0]).toBe(`In line for concert ${concertId} · position 1 · 0 ahead · no seat is free right now (all held, or booking not open yet); the line moves when one frees up`);
    expect(done.stdout).toMatch(/status\s+ACTIVE/);
  });

  it('sold out: the advice names when asking again is worth it, the time the server itself gives (at once it is RATE_LIMITED)', async () => {
    const { concertId, scheduleId, fans } = await oneSeat();
    const [a, b] = fans;
    expect((await concert(['--user', a, 'queue', 'join', concertId], cli.env)).code).toBe(0);
    const hold = await concert(['--user', a, '--json', 'hold', scheduleId, '1'], cli.env);
    expect((await concert(['--user', a, 'pay', hold.json().reservationId], cli.env)).code).toBe(0);

    expect((await concert(['--user', b, 'queue', 'join', concertId], cli.env)).stdout).toMatch(/status\s+SOLD_OUT/);
    const status = await concert(['--user', b, 'queue', 'status', concertId], cli.env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('if seats come back (a refund), the line reopens in order');
    const advice = /Check again after (\d\d):(\d\d):(\d\d) \(in about 1 min\): concert queue status (\d+)/.exec(status.stdout);
    expect(advice, status.stdout).not.toBeNull();
    expect(advice![4]).toBe(concertId);

    // Following the old hint at once: refused, and the hint says how long to wait, which is when the advice said.
    const tooSoon = await concert(['--user', b, 'queue', 'status', concertId], cli.env);
    expect(tooSoon.code).toBe(1);
    const retry = /\(RATE_LIMITED\)\nAsked too soon: try again in (\d+) s/.exec(tooSoon.stderr);
    expect(retry, tooSoon.stderr).not.toBeNull();
    const [h, m, s] = advice!.slice(1, 4).map(Number) as [number, number, number];
    const when = new Date();
    when.setHours(h, m, s, 0);
    if (when.getTime() < Date.now() - 12 * 3_600_000) when.setDate(when.getDate() + 1); // past midnight
    // Asking when the advice says is never refused: the server's own limit (it tolerates polls
    // sooner than pollAfterMs) ends before then. The advice's time is cut to the second.
    expect(when.getTime() + 1_000).toBeGreaterThanOrEqual(Date.now() + Number(retry![1]) * 1000);
  });

  it('a wait that ends sold out gives its advice once: the ticket on stdout, the failure and its advice on stderr', async () => {
    const { concertId, scheduleId, fans } = await oneSeat();
    const [a, b] = fans;
    expect((await concert(['--user', a, 'queue', 'join', concertId], cli.env)).code).toBe(0);
    const hold = await concert(['--user', a, '--json', 'hold', scheduleId, '1'], cli.env);
    expect(hold.code, hold.stderr).toBe(0);
    const waiting = concertLive(['--user', b, 'queue', 'join', concertId, '--wait'], cli.env);
    await waiting.waitForStderr(/no seat is free right now/);
    expect((await concert(['--user', a, 'pay', hold.json().reservationId], cli.env)).code).toBe(0);

    const done = await waiting.done;
    expect(done.code, done.stderr).toBe(1);
    expect(done.stdout).toMatch(/status\s+SOLD_OUT/);
    expect(done.stderr).toContain(`error: Concert ${concertId} is sold out: no seat is available or held (SOLD_OUT)`);
    // It was printed twice: under the ticket on stdout and again as the error's hint.
    const both = done.stdout + done.stderr;
    expect(both.match(/Your place is kept: if seats come back/g), both).toHaveLength(1);
    expect(both.match(/Check again after/g), both).toHaveLength(1);
    expect(both.match(/is sold out/g), both).toHaveLength(1);
  });
});
