import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { admin as harnessAdmin, client } from '../../../test/harness.ts';
import { concert, fakeTerminal, inPty, KEY, type CliSuite, startCliSuite } from './helpers.ts';

// `concert book` through its prompts: in-process on a fake terminal (inquirer's own prompts reading
// keystrokes), and the built binary in a real pseudo-terminal for Ctrl-C.
let suite: CliSuite | undefined;
let api: CliSuite['api'];
let env: CliSuite['env'];

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

const holdsOf = async (scheduleId: number) => (await harnessAdmin(api.url).admin.holds.list.query({ scheduleId })).items;

beforeAll(async () => {
  suite = await startCliSuite();
  ({ api, env } = suite);
});

afterAll(() => suite?.stop());

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
    at = await t.waitFor(/Pick your seats on the map:/, at);
    await t.waitFor(/Seat 1 · VIP ₩150,000 · available/, at);
    const screen = t.stdout();
    expect(screen).toMatch(/It's your turn until [\d-]+ \d\d:\d\d:\d\d \(\d+m \d\ds left\)/);
    expect(screen).toContain('Interactive Concert ·');
    // The cursor starts on the first free seat, marked in the gap before it.
    expect(screen).toMatch(/1-10 │>○ 1V ○ 2V ○ 3V ○ 4V ○ 5R ◐ 6R ○ 7R/);
    expect(screen).toMatch(/V {2}VIP {2}₩150,000 {2}seats 1-4 +4 of 4 left/);
    expect(screen).toContain('11 of 12 seats available · 1 held · 0 sold');

    // Right four times to seat 5, pick it; right to the held seat 6, which cannot be picked; right to 7, pick it.
    for (let i = 0; i < 4; i++) t.type(KEY.right);
    at = await t.waitFor(/Seat 5 · R ₩100,000 · available/, at);
    t.type(KEY.space);
    at = await t.waitFor(/Picked: 5 \(₩100,000\) · up to 4/, at);
    expect(t.stdout().slice(at - 2000)).toMatch(/○ 4V>✓ 5R ◐ 6R/);
    t.type(KEY.right);
    t.type(KEY.space);
    at = await t.waitFor(/Seat 6 is held; pick an available one/, at);
    t.type(KEY.right);
    t.type(KEY.space);
    at = await t.waitFor(/Picked: 5, 7 \(₩200,000\)/, at);
    t.type(KEY.enter);
    at = await t.waitFor(/₩100,000 short\. Top up ₩100,000\? \(hold: \d+m \d\ds left\)/, at);
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
    const mine = (await client(api.url, { userId: userIds[0]! }).reservations.mine.query({})).items;
    expect(mine.map((r) => [r.status, r.seats.map((s) => s.seatNumber)])).toEqual([['PAID', [5, 7]]]);
  });

  // The cursor started on a sold-out first show, where Enter said "This option is disabled and
  // cannot be selected.", and its row read "sold out sold out" (an outside review).
  it('starts the show list on the first show with seats, and says sold out once', async () => {
    const { concertId, scheduleIds, userIds } = await sale({ users: 4 });
    // Every seat of the first show held by three others, four each (the limit a user may hold).
    for (const [i, userId] of userIds.slice(1).entries()) {
      const ticket = await client(api.url, { userId }).queue.enter.mutate({ concertId });
      const seatNumbers = [1, 2, 3, 4].map((n) => n + 4 * i);
      await client(api.url, { userId, queueToken: ticket.token }).reservations.hold.mutate({ scheduleId: scheduleIds[0]!, seatNumbers, idempotencyKey: `fill-${concertId}-${i}` });
    }
    const t = fakeTerminal(env);
    const done = t.run(['--user', String(userIds[0]), 'book', '--concert', String(concertId)]);
    const at = await t.waitFor(/Which show\?/);
    await t.waitFor(/12 of 12 seats left/, at);
    expect(t.stdout().slice(at)).not.toMatch(/sold out.*sold out/);
    t.type(KEY.enter);
    await t.waitFor(/Pick your seats on the map:/, at);
    expect(t.stdout().slice(at)).toContain(`schedule ${scheduleIds[1]}`);
    expect(t.stdout()).not.toContain('cannot be selected');
    t.type(KEY.ctrlC);
    expect(await done).toBe(130);
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

  // A tester's script run from a terminal has a terminal on stdin and stderr. Its `--json book … --seats 4`
  // without --yes held seat 4 and then waited at "Pay ₩150,000 for seat(s) 4?" drawn on stderr
  // (seen in tmux), where the same script in CI failed at once naming --yes.
  it('with --json it never asks, even on a terminal: the missing flags are named (exit 2) and no seat is held', async () => {
    const { concertId, scheduleIds, userIds } = await sale();
    const t = fakeTerminal(env);
    const code = await t.run(['--user', String(userIds[0]), '--json', 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0]), '--seats', '4']);
    expect(code).toBe(2);
    expect(t.stdout()).toBe('');
    expect(JSON.parse(t.stderr())).toEqual({ error: { code: 'USAGE', appCode: null, message: 'With --json, concert book asks no questions; pass --yes' } });
    expect(await holdsOf(scheduleIds[0]!)).toEqual([]);
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
      expect(waiting.screen()).toContain('Stopped waiting; your place is kept while you look in');
      expect(waiting.screen()).not.toMatch(/Error| {4}at /);
    } finally {
      waiting.kill();
    }

    // The first user books in the terminal and leaves at the seat prompt.
    const booking = inPty(['--user', String(userIds[0]), 'book', '--concert', String(concertId)], env);
    try {
      await booking.waitFor(/Which show\?/);
      booking.type(KEY.enter);
      // The map arrives in pieces on the terminal: waited for whole (CI once read the screen
      // when only its first row had been drawn).
      await booking.waitFor(/Pick your seats on the map:[\s\S]*12 of 12 seats available/);
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
    // Seats as separate words after --seats, as hold takes them (12,13 works too, below).
    const r = await concert(['--user', String(userIds[0]), '--json', 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0]), '--seats', '9', '10', '--top-up', '--yes'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.json()).toMatchObject({ reservation: { status: 'PAID', totalPrice: 200_000, seats: [{ seatNumber: 9 }, { seatNumber: 10 }] }, payment: { amount: 200_000, status: 'COMPLETED', balanceAfter: 0 } });
    // Without --top-up a short balance is an error, and the hold is given back.
    const { concertId: c2, scheduleIds: s2, userIds: u2 } = await sale({ balance: 0 });
    const short = await concert(['--user', String(u2[0]), '--json', 'book', '--concert', String(c2), '--schedule', String(s2[0]), '--seats', '8,9', '--yes'], env);
    expect(short.code).toBe(1);
    expect(short.error()).toMatchObject({ code: 'PAYMENT_REQUIRED', appCode: 'INSUFFICIENT_BALANCE', message: expect.stringContaining('₩200,000 short of ₩200,000') });
    expect(await holdsOf(s2[0]!)).toEqual([]);
  });
  it('in a real pseudo-terminal: seats picked with the arrow keys, a hold countdown that ticks, and declining to pay (exit 0)', async () => {
    const { concertId, scheduleIds, userIds } = await sale({ title: 'Pty Concert' });
    const fan = inPty(['--user', String(userIds[0]), 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0])], env);
    try {
      let at = await fan.waitFor(/Pick your seats on the map:/);
      at = await fan.waitFor(/Seat 1 · VIP ₩150,000 · available/, at);
      // Right to seat 2 and pick it; down a row (10 seats a row) to seat 12 and pick it; enter holds both.
      fan.type(KEY.right);
      at = await fan.waitFor(/Seat 2 · VIP ₩150,000 · available/, at);
      fan.type(KEY.space);
      at = await fan.waitFor(/Picked: 2 \(₩150,000\)/, at);
      fan.type(KEY.down);
      at = await fan.waitFor(/Seat 12 · R ₩100,000 · available/, at);
      fan.type(KEY.space);
      at = await fan.waitFor(/Picked: 2, 12 \(₩250,000\)/, at);
      expect(fan.screen().slice(at - 1500)).toMatch(/11-12 │ ○11R>✓12R/);
      fan.type(KEY.enter);

      // The question carries the time left on the hold, redrawn as it runs down.
      const question = /Pay ₩250,000 for seat\(s\) 2, 12\? The hold lapses at [\d-]+ \d\d:\d\d:\d\d \((\d+m \d\ds) left\)/;
      at = await fan.waitFor(question, at);
      const shown = () => [...fan.screen().matchAll(new RegExp(question, 'g'))].map((m) => m[1]!);
      const first = shown().at(-1)!;
      await vi.waitFor(() => expect(new Set(shown().slice(shown().indexOf(first))).size).toBeGreaterThanOrEqual(3), { timeout: 20_000, interval: 100 });
      const seen = shown();
      // It counts down, a second at a time at most between redraws.
      const secs = seen.map((x) => Number(/(\d+)m/.exec(x)![1]) * 60 + Number(/(\d\d)s/.exec(x)![1]));
      expect(secs.at(-1)!).toBeLessThan(secs[0]!);
      expect(await holdsOf(scheduleIds[0]!)).toHaveLength(1);

      fan.type('n');
      fan.type(KEY.enter);
      expect(await fan.exited).toBe(0);
      expect(fan.screen()).toContain('Not paid. The hold on seat(s) 2, 12 was released; the seats are free again.');
      expect(fan.screen()).not.toMatch(/error|Error/);
      expect(await holdsOf(scheduleIds[0]!)).toEqual([]);
    } finally {
      fan.kill();
    }
  });

  // A polite kill (SIGTERM: `kill <pid>`, `timeout`, a closed session's supervisor) at a question
  // left the terminal in raw mode with its cursor hidden (-isig -icanon -echo: the shell typed
  // blind until `reset`), and the hold stood until it lapsed.
  it('in a real pseudo-terminal: SIGTERM at the pay question gives the terminal back and releases the hold (exit 143)', async () => {
    const { concertId, scheduleIds, userIds } = await sale();
    const fan = inPty(['--user', String(userIds[0]), 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0]), '--seats', '4'], env, { checkTerminal: true });
    try {
      await fan.waitFor(/Pay ₩150,000 for seat\(s\) 4\?/);
      expect(await holdsOf(scheduleIds[0]!)).toHaveLength(1);
      fan.signal('SIGTERM');
      expect(await fan.exited).toBe(143);
      expect(fan.screen()).toContain('Released the hold on seat(s) 4.');
      expect(fan.screen()).toContain('[terminal restored]');
      const raw = fan.raw();
      expect(raw.lastIndexOf('\x1b[?25h')).toBeGreaterThan(raw.lastIndexOf('\x1b[?25l'));
      expect(await holdsOf(scheduleIds[0]!)).toEqual([]);
    } finally {
      fan.kill();
    }
  });

  it('names the seat someone else took while the map was open, and shows the map again', async () => {
    const { concertId, scheduleIds, userIds } = await sale({ users: 2 });
    const t = fakeTerminal(env);
    const done = t.run(['--user', String(userIds[0]), 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0])]);
    let at = await t.waitFor(/Seat 1 · VIP ₩150,000 · available/);
    // The other fan takes seats 1 and 3 after this map was drawn.
    const other = await client(api.url, { userId: userIds[1]! }).queue.enter.mutate({ concertId });
    await client(api.url, { userId: userIds[1]!, queueToken: other.token }).reservations.hold.mutate({ scheduleId: scheduleIds[0]!, seatNumbers: [1, 3], idempotencyKey: 'quicker-fan-1' });
    t.type(KEY.space);
    t.type(KEY.right);
    t.type(KEY.right);
    t.type(KEY.space);
    at = await t.waitFor(/Picked: 1, 3 /, at);
    t.type(KEY.enter);
    at = await t.waitFor(/Someone was quicker: seats 1, 3 are no longer available\. Here is the map again\./, at);
    at = await t.waitFor(/Seat 2 · VIP ₩150,000 · available/, at);
    expect(t.stdout().slice(at - 1500)).toMatch(/│ ◐ 1V>○ 2V ◐ 3V/);
    t.type(KEY.ctrlC);
    expect(await done).toBe(130);
  });

  it('a payment that fails keeps the hold, and says how to pay it or give it back', async () => {
    // The fan pays for another show while the question waits: that payment spends their place in
    // line (the contract), so this one fails TOKEN_EXPIRED while its hold still stands.
    const { concertId, scheduleIds, userIds } = await sale();
    const t = fakeTerminal(env);
    const done = t.run(['--user', String(userIds[0]), 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0]), '--seats', '5']);
    await t.waitFor(/Pay ₩100,000 for seat\(s\) 5\?/);
    const ticket = await client(api.url, { userId: userIds[0]! }).queue.enter.mutate({ concertId });
    const fan = client(api.url, { userId: userIds[0]!, queueToken: ticket.token });
    const other = await fan.reservations.hold.mutate({ scheduleId: scheduleIds[1]!, seatNumbers: [9], idempotencyKey: 'book-spend-1' });
    await fan.payments.pay.mutate({ reservationId: other.reservationId, idempotencyKey: 'book-spend-2' });
    t.type(KEY.enter);
    expect(await done).toBe(1);
    const [hold] = await holdsOf(scheduleIds[0]!);
    expect(hold?.seatNumbers).toEqual([5]);
    expect(t.stderr()).toContain('(TOKEN_EXPIRED)');
    expect(t.stderr()).toMatch(new RegExp(`Your hold on seat\\(s\\) 5 stands until .*: concert pay ${hold!.reservationId} pays it once you are let in again, concert cancel ${hold!.reservationId} gives the seats back`));
  });

  it('when the turn in line ends before the hold, the questions count down to the turn, and its end releases the hold', async () => {
    const { concertId, scheduleIds, userIds } = await sale();
    // A two-minute turn: a hold of five minutes outlasts it, and paying needs the turn.
    await harnessAdmin(api.url).admin.queue.configure.mutate({ concertId, activeTtlSeconds: 120 });
    let skew = 0;
    const t = fakeTerminal(env, { now: () => new Date(Date.now() + skew) });
    const done = t.run(['--user', String(userIds[0]), 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0]), '--seats', '7']);
    await t.waitFor(/Pay ₩100,000 for seat\(s\) 7\? Your turn ends at/);
    expect(t.stdout()).toContain('your turn in line ends then, before the hold does');
    skew = 121_000;
    expect(await done).toBe(1);
    expect(t.stderr()).toContain('Your turn in line ended before you paid; the hold on seat(s) 7 was released, the seats are free again');
    expect(await holdsOf(scheduleIds[0]!)).toEqual([]);
  });

  it('a hold that lapses while the question waits ends the booking (exit 1) and says so', async () => {
    const { concertId, scheduleIds, userIds } = await sale();
    // The CLI's clock runs five minutes ahead once the hold is made, so the countdown reaches zero at once.
    let skew = 0;
    const t = fakeTerminal(env, { now: () => new Date(Date.now() + skew) });
    const done = t.run(['--user', String(userIds[0]), 'book', '--concert', String(concertId), '--schedule', String(scheduleIds[0]), '--seats', '4']);
    await t.waitFor(/Pay ₩150,000 for seat\(s\) 4\? The hold lapses at/);
    skew = 301_000;
    expect(await done).toBe(1);
    expect(t.stderr()).toContain('The hold on seat(s) 4 lapsed before you answered; the seats are free again (HOLD_EXPIRED)');
    expect(t.stderr()).toContain(`Start again: concert book --concert ${concertId} --schedule ${scheduleIds[0]}`);
    expect(await holdsOf(scheduleIds[0]!)).toEqual([]);
  });
});
