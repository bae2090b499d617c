import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin as harnessAdmin, client } from '../../../test/harness.ts';
import { buildOnce, concert, fakeTerminal, inPty, KEY, startGatedApi, tempConfigDir } from './helpers.ts';

// `concert book` through its prompts: in-process on a fake terminal (inquirer's own prompts reading
// keystrokes), and the built binary in a real pseudo-terminal for Ctrl-C.
let api: Awaited<ReturnType<typeof startGatedApi>>;
let cfg: ReturnType<typeof tempConfigDir>;
let env: Record<string, string>;

async function sale(opts: { balance?: number; users?: number; title?: string } = {}) {
  const a = harnessAdmin(api.url);
  const now = Date.now();
  const c = await a.admin.concerts.create.mutate({
    title: opts.title ?? 'Book Test',
    venue: 'Hall',
    schedules: [7, 8].map((d) => ({
      startsAt: new Date(now + d * 86_400_000),
      bookingOpensAt: new Date(now - 3_600_000),
      seatCount: 12,
      tiers: [
        { grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 4 },
        { grade: 'R', price: 100_000, fromSeat: 5, toSeat: 12 },
      ],
    })),
  });
  const userIds = await Promise.all(Array.from({ length: opts.users ?? 1 }, async (_, i) => (await a.admin.users.create.mutate({ name: `fan ${i}`, initialBalance: opts.balance ?? 1_000_000 })).userId));
  return { concertId: c.concertId, scheduleIds: c.schedules.map((s) => s.scheduleId), userIds };
}

const holdsOf = (scheduleId: number) => harnessAdmin(api.url).admin.holds.list.query({ scheduleId });

beforeAll(async () => {
  cfg = tempConfigDir();
  [api] = await Promise.all([startGatedApi({ QUEUE_IDLE_TIMEOUT_SECONDS: '6' }), buildOnce()]);
  env = { CONCERT_API_URL: api.url, CONCERT_CONFIG_DIR: cfg.dir };
});

afterAll(async () => {
  await api?.stop();
  cfg?.remove();
});

describe('concert book', () => {
  it('walks the whole journey through its prompts: concert, show, seats on the map, top-up, pay', async () => {
    await sale({ title: 'Another Concert' });
    const { concertId, scheduleIds, userIds } = await sale({ users: 2, balance: 100_000, title: 'Interactive Concert' });
    // Someone else holds seat 6, so the map shows it held and the seat prompt refuses it.
    const other = client(api.url, { userId: userIds[1]! });
    const t1 = await other.queue.enter.mutate({ concertId });
    await client(api.url, { userId: userIds[1]!, queueToken: t1.token }).reservations.hold.mutate({ scheduleId: scheduleIds[0]!, seatNumbers: [6], idempotencyKey: 'other-hold-1' });

    const t = fakeTerminal(env);
    const done = t.run(['--user', String(userIds[0]), 'book']);
    let at = await t.waitFor(/Which concert\?/);
    at = await t.waitFor(/Interactive Concert/, 0);
    t.type(KEY.down);
    await t.waitFor(/❯ Interactive Concert/, 0);
    t.type(KEY.enter);
    at = await t.waitFor(/Which show\?/, at);
    await t.waitFor(/12 of 12 seats left|11 of 12 seats left/, at);
    t.type(KEY.enter);
    at = await t.waitFor(/Seats to hold/, at);
    const screen = t.stdout();
    expect(screen).toMatch(/It's your turn until [\d-]+ \d\d:\d\d:\d\d \(\d+m \d\ds left\)/);
    expect(screen).toContain('Interactive Concert ·');
    expect(screen).toMatch(/1-10 │ ○ 1V ○ 2V ○ 3V ○ 4V ○ 5R ◐ 6R ○ 7R/);
    expect(screen).toMatch(/V {2}VIP {2}₩150,000 {2}seats 1-4 +4 of 4 left/);
    expect(screen).toContain('11 of 12 seats available · 1 held · 0 sold');

    t.type('6');
    t.type(KEY.enter);
    at = await t.waitFor(/Seat 6 is held/, at);
    t.type('\x7f 5 7'.replace(' ', ''));
    t.type(KEY.enter);
    at = await t.waitFor(/₩100,000 short\. Top up ₩100,000\?/, at);
    expect(t.stdout()).toMatch(/seats\s+5 R ₩100,000, 7 R ₩100,000/);
    expect(t.stdout()).toMatch(/hold expires\s+.*\(\d+m \d\ds left\)/);
    t.type('y');
    t.type(KEY.enter);
    at = await t.waitFor(/Pay ₩200,000 for seat\(s\) 5, 7\? The hold lapses at [\d-]+ \d\d:\d\d:\d\d \(\d+m \d\ds left\)/, at);
    t.type(KEY.enter);
    expect(await done).toBe(0);
    const end = t.stdout().slice(at);
    expect(t.stdout()).toContain('Topped up ₩100,000; balance ₩200,000.');
    expect(end).toContain('Paid. Enjoy the show!');
    expect(end).toMatch(/balance\s+₩200,000 → ₩0/);
    const mine = await client(api.url, { userId: userIds[0]! }).reservations.mine.query({});
    expect(mine.map((r) => [r.status, r.seats.map((s) => s.seatNumber)])).toEqual([['PAID', [5, 7]]]);
  });

  it('Ctrl-C at a prompt leaves quietly, releasing a hold made on the way', async () => {
    const { concertId, scheduleIds, userIds } = await sale();
    const t = fakeTerminal(env);
    const done = t.run(['--user', String(userIds[0]), 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[1]), '--seats', '1,2']);
    await t.waitFor(/Pay ₩300,000 for seat\(s\) 1, 2\?/);
    expect(await holdsOf(scheduleIds[1]!)).toHaveLength(1);
    t.type(KEY.ctrlC);
    expect(await done).toBe(130);
    expect(t.stderr()).toContain('Released the hold on seat(s) 1, 2.');
    expect(t.stdout() + t.stderr()).not.toMatch(/ExitPromptError|at .*\.js:\d+/);
    expect(await holdsOf(scheduleIds[1]!)).toEqual([]);

    // Ctrl-C before any hold: nothing to release, still quiet.
    const t2 = fakeTerminal(env);
    const done2 = t2.run(['--user', String(userIds[0]), 'book', '--concert', String(concertId)]);
    await t2.waitFor(/Which show\?/);
    t2.type(KEY.ctrlC);
    expect(await done2).toBe(130);
    expect(t2.stderr()).not.toContain('Released');
  });

  it('in a real pseudo-terminal: the live line in the waiting room, and Ctrl-C out of it and out of a prompt', async () => {
    const { concertId, scheduleIds, userIds } = await sale({ users: 2 });
    await harnessAdmin(api.url).admin.queue.configure.mutate({ concertId, maxActive: 1 });
    // The first user takes the only slot, so the second waits in line.
    expect((await concert(['--user', String(userIds[0]), 'queue', 'join', String(concertId)], env)).code).toBe(0);
    const waiting = inPty(['--user', String(userIds[1]), 'book', '--concert', String(concertId)], env);
    try {
      await waiting.waitFor(/In line for concert \d+ · position 1 · 0 ahead · ETA .*░+ 0%/);
      waiting.type(KEY.ctrlC);
      expect(await waiting.exited).toBe(130);
      expect(waiting.screen()).toContain('Stopped waiting; your place is kept');
      expect(waiting.screen()).not.toMatch(/Error| {4}at /);
    } finally {
      waiting.kill();
    }

    // The first user books in the terminal and leaves at the seat prompt.
    const booking = inPty(['--user', String(userIds[0]), 'book', '--concert', String(concertId)], env);
    try {
      await booking.waitFor(/Which show\?/);
      booking.type(KEY.enter);
      await booking.waitFor(/Seats to hold/);
      expect(booking.screen()).toContain('12 of 12 seats available');
      booking.type(KEY.ctrlC);
      expect(await booking.exited).toBe(130);
      expect(booking.screen()).not.toMatch(/Error| {4}at /);
      expect(await holdsOf(scheduleIds[0]!)).toEqual([]);
    } finally {
      booking.kill();
    }
  });

  it('with every choice as a flag it needs no terminal, and --json prints the reservation and payment', async () => {
    const { concertId, scheduleIds, userIds } = await sale({ balance: 0 });
    const r = await concert(['--user', String(userIds[0]), '--json', 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0]), '--seats', '9', '--top-up', '--yes'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.json()).toMatchObject({ reservation: { status: 'PAID', totalPrice: 100_000 }, payment: { amount: 100_000, status: 'COMPLETED', balanceAfter: 0 } });
    // Without --top-up a short balance is an error, and the hold is given back.
    const { concertId: c2, scheduleIds: s2, userIds: u2 } = await sale({ balance: 0 });
    const short = await concert(['--user', String(u2[0]), '--json', 'book', '--concert', String(c2), '--schedule', String(s2[0]), '--seats', '9', '--yes'], env);
    expect(short.code).toBe(1);
    expect(short.error()).toMatchObject({ code: 'INSUFFICIENT_BALANCE', appCode: 'INSUFFICIENT_BALANCE' });
    expect(await holdsOf(s2[0]!)).toEqual([]);
  });
});
