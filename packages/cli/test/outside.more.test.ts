import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookCommand } from '../src/commands/book.ts';
import { Ctx } from '../src/context.ts';
import { Interrupted } from '../src/errors.ts';
import { run } from '../src/program.ts';
import { admin as harnessAdmin } from '../../../test/harness.ts';
import { ADMIN_KEY, concert, fakeTerminal, KEY, memoryIo, type CliSuite, concertLive, startCliSuite, startGatedApi, tempConfigDir } from './helpers.ts';

// Defects found by using the CLI from outside, as fans and scripts do: each test failed before its fix.
let suite: CliSuite | undefined;
let api: CliSuite['api'];
let cfg: CliSuite['cfg'];
let env: CliSuite['env'];

async function sale() {
  const a = harnessAdmin(api.url);
  const now = Date.now();
  const create = () =>
    a.admin.concerts.create.mutate({
      title: 'Outside Test',
      venue: 'Hall',
      schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: 12 }],
    });
  const [c, other] = await Promise.all([create(), create()]);
  const { userId } = await a.admin.users.create.mutate({ name: 'fan', initialBalance: 1_000_000 });
  return { concertId: c.concertId, scheduleId: c.schedules[0]!.scheduleId, otherConcertId: other.concertId, otherScheduleId: other.schedules[0]!.scheduleId, userId };
}

/** Nobody in the line of the concert: no place taken, no turn spent. */
const lineOf = async (concertId: number) => {
  const s = await harnessAdmin(api.url).admin.queue.stats.query({ concertId });
  return { waiting: s.waiting, preQueued: s.preQueued, active: s.active, admittedTotal: s.admittedTotal };
};
const EMPTY = { waiting: 0, preQueued: 0, active: 0, admittedTotal: 0 };

beforeAll(async () => {
  suite = await startCliSuite();
  ({ api, cfg, env } = suite);
});

afterAll(() => suite?.stop());

describe('concert book checks its flags before it takes a place in line', () => {
  // `book --seats 12,12` (or five seats) joined the line, waited for a turn, and only then failed
  // INVALID_INPUT (exit 1), the turn spent; `hold` refuses the same seats at once (exit 2).
  it('seats that hold would refuse are bad usage (exit 2), and nobody joins the line', async () => {
    const { concertId, scheduleId, userId } = await sale();
    for (const seats of [['12,12'], ['1', '2', '3', '4', '5']]) {
      const r = await concert(['--user', String(userId), '--json', 'book', '--concert', String(concertId), '--schedule', String(scheduleId), '--seats', ...seats, '--yes'], env);
      expect(r.code, `${seats.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.error()).toMatchObject({ code: 'USAGE', appCode: null, message: expect.stringContaining('--seats') });
    }
    expect(await lineOf(concertId)).toEqual(EMPTY);
  });

  // `book --concert 1 --schedule <a show of concert 4>` took a turn in concert 1's line and then
  // failed TOKEN_WRONG_CONCERT, its hint sending the fan back to concert 1's line; an unknown show
  // failed SCHEDULE_NOT_FOUND only after the wait.
  it('a show of another concert is bad usage naming its concert, an unknown show fails at once, and nobody joins the line', async () => {
    const { concertId, otherConcertId, otherScheduleId, userId } = await sale();
    const wrong = await concert(['--user', String(userId), 'book', '--concert', String(concertId), '--schedule', String(otherScheduleId), '--seats', '1', '--yes'], env);
    expect(wrong.code, wrong.stderr).toBe(2);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toContain(`error: Show ${otherScheduleId} is of concert ${otherConcertId}, not of concert ${concertId}`);
    expect(wrong.stderr).toContain(`concert book --concert ${otherConcertId} --schedule ${otherScheduleId}`);

    const unknown = await concert(['--user', String(userId), '--json', 'book', '--concert', String(concertId), '--schedule', '999999', '--seats', '1', '--yes'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.error()).toMatchObject({ appCode: 'SCHEDULE_NOT_FOUND' });

    expect(await lineOf(concertId)).toEqual(EMPTY);
    expect(await lineOf(otherConcertId)).toEqual(EMPTY);
  });

  it('with --schedule alone, the concert is the show’s: the concert question is not asked', async () => {
    const { otherConcertId, otherScheduleId, userId } = await sale();
    const t = fakeTerminal(env);
    const done = t.run(['--user', String(userId), 'book', '--schedule', String(otherScheduleId)]);
    try {
      await t.waitFor(/Which concert\?|Pick your seats on the map:[\s\S]*12 of 12 seats available/);
      expect(t.stdout()).not.toContain('Which concert?');
      expect(await lineOf(otherConcertId)).toMatchObject({ active: 1 });
    } finally {
      t.type(KEY.ctrlC);
    }
    expect(await done).toBe(130);
  });
});

describe('concert book’s concert question', () => {
  // A concert whose every show was cancelled was offered like the others ("0 show(s)" beside it):
  // picked, it took a place in its line, which answered SOLD_OUT (exit 1). The show question
  // already offers a sold-out show as disabled.
  it('offers a concert with no show left as disabled', async () => {
    const { concertId, scheduleId, otherConcertId, userId } = await sale();
    await harnessAdmin(api.url).admin.schedules.cancel.mutate({ scheduleId });
    const t = fakeTerminal(env);
    const ctx = await Ctx.create(t.io, { user: String(userId) });
    let offered: Array<{ value: unknown; disabled?: boolean | string }> = [];
    Object.defineProperty(ctx, 'prompts', {
      value: {
        select: async (_message: string, choices: typeof offered) => {
          offered = choices;
          throw new Interrupted();
        },
      },
    });
    await expect(bookCommand(ctx, {})).rejects.toBeInstanceOf(Interrupted);
    expect(offered.find((o) => o.value === concertId)).toMatchObject({ disabled: 'no shows' });
    expect(offered.find((o) => o.value === otherConcertId)?.disabled).toBeUndefined();
    expect(await lineOf(concertId)).toEqual(EMPTY);
  });
});

describe('--api', () => {
  // `--api localhost:3000` parses as a URL whose scheme is `localhost:`; it was sent, and failed as
  // an unreachable API (NETWORK_ERROR "unknown scheme", exit 1), where `--api 127.0.0.1:3000` was
  // bad usage (exit 2).
  it('must be an http or https URL: anything else is bad usage (exit 2) before any request', async () => {
    for (const url of ['localhost:3000', 'ftp://127.0.0.1:3000', '127.0.0.1:3000']) {
      for (const argv of [['--api', url, '--json', 'concerts'], ['--json', 'concerts']]) {
        const m = memoryIo(argv[0] === '--api' ? {} : { CONCERT_API_URL: url });
        expect(await run(argv, m.io), `${url} ${argv.join(' ')}`).toBe(2);
        expect(m.out()).toBe('');
        expect(JSON.parse(m.err()).error).toMatchObject({ code: 'USAGE', appCode: null, message: expect.stringContaining(`not "${url}"`) });
      }
    }
    const ok = await concert(['--api', `${api.url.replace(/^http:/, 'HTTP:')}/`, '--json', 'concerts'], {});
    expect(ok.code, ok.stderr).toBe(0);
  });

  // The server's start line reads "Concert API listening on http://127.0.0.1:3000/trpc", and that
  // URL, copied into --api, made every command PROCEDURE_NOT_FOUND (the client asked …/trpc/trpc/…).
  // The REST base (…/v1, README "REST") copied there was NETWORK_ERROR "404 Not Found" on every
  // command, with the hint "Is the API running?" about a server that was.
  it('may be the tRPC endpoint the server names at start (…/trpc) or the REST base (…/v1), as --api or CONCERT_API_URL', async () => {
    const plain = await concert(['--api', api.url, '--json', 'concerts'], {});
    expect(plain.code, plain.stderr).toBe(0);
    for (const url of [`${api.url}/trpc`, `${api.url}/trpc/`, `${api.url}/v1`, `${api.url}/V1/`]) {
      const flag = await concert(['--api', url, '--json', 'concerts'], {});
      expect(flag.code, flag.stderr).toBe(0);
      expect(JSON.parse(flag.stdout)).toEqual(JSON.parse(plain.stdout));
      const fromEnv = await concert(['--json', 'concerts'], { CONCERT_API_URL: url });
      expect(fromEnv.code, fromEnv.stderr).toBe(0);
    }
  });
});

describe('the session file', () => {
  // CONCERT_CONFIG_DIR naming a file (or a directory concert cannot write) ended `queue join` with
  // Node's own error as INTERNAL: `EEXIST: file already exists, mkdir '…' (INTERNAL)`, naming
  // neither the session file nor the setting to change.
  it('that cannot be written is a usage error naming it and the setting, not INTERNAL', async () => {
    const { concertId, userId } = await sale();
    const file = path.join(cfg.dir, 'not-a-directory');
    writeFileSync(file, '');
    const join = (...extra: string[]) => concert(['--user', String(userId), ...extra, 'queue', 'join', String(concertId)], { ...env, CONCERT_CONFIG_DIR: file });
    const text = await join();
    expect(text.code, text.stderr).toBe(2);
    expect(text.stderr).toContain(`error: Cannot write the session file ${path.join(file, 'session.json')} (EEXIST)`);
    expect(text.stderr).toContain('CONCERT_CONFIG_DIR');
    expect(text.stderr).not.toContain('INTERNAL');
    const json = await join('--json');
    expect(json.code).toBe(2);
    expect(json.stdout).toBe('');
    expect(json.error()).toEqual({ code: 'USAGE', appCode: null, message: `Cannot write the session file ${path.join(file, 'session.json')} (EEXIST)` });
  });
});

describe('the session file, written by commands run side by side', () => {
  // A script that joins the line for many fans at once (`concert --user $u queue join 1 &`, then
  // `wait`) lost tokens: every command read the file, added its token and replaced the file, and
  // the last to write dropped what the others had added meanwhile. In an outside sweep 8 of 20
  // joins were lost (each had printed its ticket, exit 0), and those fans' holds were TOKEN_INVALID.
  it('keeps every token', async () => {
    const { concertId } = await sale();
    const a = harnessAdmin(api.url);
    const users = await Promise.all(Array.from({ length: 16 }, (_, i) => a.admin.users.create.mutate({ name: `fan ${i}` })));
    const dir = tempConfigDir();
    try {
      const joins = await Promise.all(users.map((u) => concert(['--user', String(u.userId), '--json', 'queue', 'join', String(concertId)], { ...env, CONCERT_CONFIG_DIR: dir.dir })));
      expect(joins.map((j) => j.code)).toEqual(users.map(() => 0));
      const saved = JSON.parse(readFileSync(path.join(dir.dir, 'session.json'), 'utf8')) as { tokens: Record<string, { token: string }> };
      expect(Object.values(saved.tokens).map((t) => t.token).sort()).toEqual(joins.map((j) => j.json<{ token: string }>().token).sort());
    } finally {
      dir.remove();
    }
  });
});

describe('concert simulate', () => {
  // `simulate --concert 1 --schedule <a show of concert 4>` ran the rehearsal: its fans were made or
  // topped up and let into concert 1's line, every hold was refused TOKEN_WRONG_CONCERT, and the
  // report said "audit clean", exit 0.
  it('a --schedule of another concert is bad usage naming its concert, before any fan is let in', async () => {
    const { concertId, otherConcertId, otherScheduleId } = await sale();
    const r = await concert(['--admin-key', ADMIN_KEY, 'simulate', '--concert', String(concertId), '--schedule', String(otherScheduleId), '--users', '2'], env);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`error: Show ${otherScheduleId} is of concert ${otherConcertId}, not of concert ${concertId}`);
    expect(await lineOf(concertId)).toEqual(EMPTY);
    const unknown = await concert(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(concertId), '--schedule', '999999', '--users', '2'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.error()).toMatchObject({ appCode: 'SCHEDULE_NOT_FOUND' });
    expect(await lineOf(concertId)).toEqual(EMPTY);
  });
});

describe('concert book --top-up of a shortfall over one charge’s limit', () => {
  const pricey = async (price: number) => {
    const a = harnessAdmin(api.url);
    const now = Date.now();
    const c = await a.admin.concerts.create.mutate({
      title: 'Pricey',
      schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: 4, tiers: [{ grade: 'VVIP', price, fromSeat: 1, toSeat: 4 }] }],
    });
    const { userId } = await a.admin.users.create.mutate({ name: 'fan', initialBalance: 0 });
    const scheduleId = c.schedules[0]!.scheduleId;
    return { a, scheduleId, userId, book: ['--user', String(userId), 'book', '--concert', String(c.concertId), '--schedule', String(scheduleId), '--seats', '1', '--yes', '--top-up'] };
  };

  // A shortfall over CHARGE_MAX_PER_TX (1,000,000 by default) was refused whole, the hold released,
  // and the hint said to top up in parts and then pay a hold that was gone (an outside review). It
  // is topped up in parts now (the help says --top-up tops up the shortfall).
  it('tops up in charges of at most the limit, and pays', async () => {
    const { book } = await pricey(2_000_000);
    const r = await concert(['--json', ...book], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ reservation: { status: 'PAID' }, payment: { amount: 2_000_000, balanceAfter: 0 } });
  });

  // Past the monthly limit (5,000,000) the server refuses a part: the hold is released, as a short
  // balance without --top-up releases it, and the parts charged before stay in the wallet, said so.
  it('that the month’s limit refuses releases the hold and says what was charged', async () => {
    const { a, scheduleId, book } = await pricey(6_000_000);
    const r = await concert(book, env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('(CHARGE_LIMIT_EXCEEDED)');
    expect(r.stderr).toContain('before a charge was refused; the balance keeps it.');
    expect(r.stderr).toContain('Released the hold on seat(s) 1.');
    expect((await a.admin.holds.list.query({ scheduleId })).items).toEqual([]);
  });
});

describe('concert pay of a reservation that is not a hold', () => {
  // Paying needs an ACTIVE place in line, and the server checks the place before the reservation: a
  // second `concert pay <id>` (was the first one through?) answered TOKEN_INVALID "Join the waiting
  // room first", as did paying a cancelled or lapsed hold once the turn was spent, and a fan who
  // joined the line again and waited was then told ALREADY_PAID or HOLD_EXPIRED. The CLI reads the
  // reservation before paying, and now says what it is.
  it('says it is already paid, or cancelled, instead of sending the fan back to the line', async () => {
    const { concertId, scheduleId, userId } = await sale();
    const as = (...args: string[]) => concert(['--user', String(userId), ...args], env);
    expect((await as('queue', 'join', String(concertId), '--wait')).code).toBe(0);
    const held = (await as('--json', 'hold', String(scheduleId), '1')).json<{ reservationId: string }>();
    const cancelled = (await as('--json', 'hold', String(scheduleId), '2')).json<{ reservationId: string }>();
    expect((await as('cancel', cancelled.reservationId)).code).toBe(0);
    const paid = await as('--json', 'pay', held.reservationId, '--idempotency-key', 'outside-pay-0001');
    expect(paid.code, paid.stderr).toBe(0);

    const again = await as('--json', 'pay', held.reservationId);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.error()).toMatchObject({ code: 'CONFLICT', appCode: 'ALREADY_PAID', message: expect.stringContaining('already paid') });
    const text = await as('pay', held.reservationId);
    expect(text.stderr).toContain('(ALREADY_PAID)');
    expect(text.stderr).not.toContain('waiting room');
    // A retry with the first call's key is still the first call's answer.
    const replay = await as('--json', 'pay', held.reservationId, '--idempotency-key', 'outside-pay-0001');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.json()).toEqual(paid.json());

    const gone = await as('--json', 'pay', cancelled.reservationId);
    expect(gone.code).toBe(1);
    expect(gone.error()).toMatchObject({ appCode: 'RESERVATION_CANCELLED' });
  });
});

describe('concert pay and cancel of a hold its show’s cancellation released', () => {
  // The fan was told "This reservation was cancelled" (RESERVATION_CANCELLED), by the server and by
  // the CLI alike, for a hold they never cancelled (found by an operator's rehearsal).
  it('says the show was cancelled, with or without a key (the server asked), and so does cancelling it', async () => {
    const { concertId, scheduleId, userId } = await sale();
    const as = (...args: string[]) => concert(['--user', String(userId), ...args], env);
    expect((await as('queue', 'join', String(concertId), '--wait')).code).toBe(0);
    const held = (await as('--json', 'hold', String(scheduleId), '1')).json<{ reservationId: string }>();
    await harnessAdmin(api.url).admin.schedules.cancel.mutate({ scheduleId });
    const told = await as('--json', 'pay', held.reservationId);
    expect(told.code).toBe(1);
    expect(told.error()).toMatchObject({ appCode: 'SCHEDULE_CANCELLED', message: expect.stringContaining('released') });
    const asked = await as('--json', 'pay', held.reservationId, '--idempotency-key', 'outside-pay-cancelled-1');
    expect(asked.code).toBe(1);
    expect(asked.error()).toMatchObject({ appCode: 'SCHEDULE_CANCELLED' });
    // Cancelling it said "Cancelled; the seats are free again" (exit 0) for seats no longer on sale.
    const cancel = await as('cancel', held.reservationId);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toContain(`Schedule ${scheduleId} has been cancelled; this hold was released with it.`);
    expect(cancel.stdout).not.toContain('free again');
  });
});

describe('concert simulate interrupted', () => {
  // Ctrl-C ended a rehearsal ("Rehearsal interrupted; no report", exit 130) and left its fans where
  // they stood: waiting in line until the idle timeout dropped them, ACTIVE (an admission slot each,
  // for the turn's 10 minutes by default), holding seats. On the concert being rehearsed, real fans
  // were kept out of those slots and seats; `concert book`, interrupted, releases its hold.
  it('gives back the places its fans took in line', async () => {
    const { concertId } = await sale();
    await harnessAdmin(api.url).admin.queue.configure.mutate({ concertId, paused: true });
    const rehearsal = concertLive(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(concertId), '--users', '4', '--concurrency', '4', '--new-users'], env);
    await expect.poll(async () => (await lineOf(concertId)).waiting, { timeout: 30_000 }).toBe(4);
    rehearsal.kill('SIGINT');
    const done = await rehearsal.done;
    expect(done.code, done.stderr).toBe(130);
    expect(JSON.parse(done.stderr).error).toMatchObject({ code: 'INTERRUPTED' });
    // At once, not when the idle timeout (6 s here) drops them.
    expect(await lineOf(concertId)).toMatchObject({ waiting: 0, active: 0 });
  });

  // A fresh-clone CI run left 2 of 4 fans in line after the Ctrl-C above: their enters had placed
  // them, and the answers (their tokens) had not come back when the interrupt aborted the calls, so
  // the tidy-up had no token to leave with. Here the answers are held back by a proxy every time.
  it('gives back the place of a fan whose enter reached the line but whose answer had not come back', async () => {
    const { concertId } = await sale();
    await harnessAdmin(api.url).admin.queue.configure.mutate({ concertId, paused: true });
    const held: http.ServerResponse[] = [];
    let holdEnters = true;
    const proxy = http.createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))) as Record<string, string>;
        const answer = await fetch(new URL(req.url!, api.url), { method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks) });
        const body = Buffer.from(await answer.arrayBuffer());
        // The enter has done its work on the server; its answer is kept from the CLI.
        if (holdEnters && req.url!.includes('queue.enter')) return void held.push(res);
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        res.end(body);
      })().catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const viaProxy = { ...env, CONCERT_API_URL: `http://127.0.0.1:${(proxy.address() as { port: number }).port}` };
      const rehearsal = concertLive(['--admin-key', ADMIN_KEY, '--json', 'simulate', '--concert', String(concertId), '--users', '4', '--concurrency', '4', '--new-users'], viaProxy);
      await expect.poll(async () => ({ waiting: (await lineOf(concertId)).waiting, held: held.length }), { timeout: 30_000 }).toEqual({ waiting: 4, held: 4 });
      // The tidy-up's own calls go through; the interrupt aborts the four enters still waiting.
      holdEnters = false;
      rehearsal.kill('SIGINT');
      const done = await rehearsal.done;
      expect(done.code, done.stderr).toBe(130);
      expect(await lineOf(concertId)).toMatchObject({ waiting: 0, active: 0 });
    } finally {
      for (const res of held) res.destroy();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe('identity from the environment', () => {
  // A script that exported CONCERT_USER for all its commands and passed --user-token for one of
  // them (or CONCERT_USER_TOKEN and --user) was refused: "Pass either --user or --user-token, not
  // both", though the command line named one identity. A bad CONCERT_USER was blamed on --user.
  it('an identity on the command line outranks the environment’s, of either kind', () => {
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI3In0.x';
    const byToken = new Ctx(memoryIo({ CONCERT_USER: '1' }).io, { userToken: token });
    expect([byToken.userId, byToken.userToken]).toEqual([undefined, token]);
    const byId = new Ctx(memoryIo({ CONCERT_USER_TOKEN: token }).io, { user: '2' });
    expect([byId.userId, byId.userToken]).toEqual([2, undefined]);
    expect(new Ctx(memoryIo({ CONCERT_USER: '3' }).io, {}).userId).toBe(3);
    expect(new Ctx(memoryIo({ CONCERT_USER: 'abc' }).io, { user: '4' }).userId).toBe(4);
    // Both on the command line, or both in the environment, stay ambiguous, each told as it came.
    expect(() => new Ctx(memoryIo().io, { user: '1', userToken: token })).toThrow('Pass either --user or --user-token, not both');
    expect(() => new Ctx(memoryIo({ CONCERT_USER: '1', CONCERT_USER_TOKEN: token }).io, {})).toThrow('Set either CONCERT_USER or CONCERT_USER_TOKEN, not both');
    expect(() => new Ctx(memoryIo({ CONCERT_USER: 'abc' }).io, {})).toThrow('CONCERT_USER must be a positive whole number');
  });

  it('through the whole program: the flag’s identity goes as far as the request, not a usage error (exit 2)', async () => {
    const m = memoryIo({ CONCERT_USER: '1', CONCERT_API_URL: 'http://127.0.0.1:1' });
    // Nothing listens there: getting as far as the request (exit 1, NETWORK_ERROR) is the point.
    expect(await run(['--json', '--user-token', 'a.b.c', 'balance'], m.io)).toBe(1);
    expect(JSON.parse(m.err()).error).toMatchObject({ code: 'NETWORK_ERROR' });
  });
});

describe('a page size or seat count outside the range its help names', () => {
  // `--limit 0` was bad usage (exit 2) but `--limit 101`, outside the same "1 to 100" of the help,
  // went to the server and came back INVALID_INPUT (exit 1); so did `waitlist join --seats 5`
  // ("1-4"), where `hold` with five seats is bad usage.
  it.each([
    ['concerts', '--limit', '101'],
    ['--user', '1', 'reservations', '--limit', '101'],
    ['--user', '1', 'history', '--limit', '101'],
    ['--user', '1', 'waitlist', '--limit', '101'],
    ['--admin-key', 'k', 'admin', 'holds', '--limit', '101'],
    ['--admin-key', 'k', 'admin', 'concerts', 'list', '--limit', '101'],
    ['--admin-key', 'k', 'admin', 'webhooks', 'deliveries', '1', '--limit', '101'],
    ['--user', '1', 'waitlist', 'join', '3', '--seats', '5'],
  ])('is bad usage (exit 2) before any request: %s', async (...args) => {
    // Nothing listens there: a request would be NETWORK_ERROR, exit 1.
    const m = memoryIo({ CONCERT_API_URL: 'http://127.0.0.1:1' });
    expect(await run(['--json', ...args], m.io)).toBe(2);
    const flag = args.find((a) => a.startsWith('--limit') || a.startsWith('--seats'))!;
    expect(JSON.parse(m.err()).error).toMatchObject({ code: 'USAGE', message: expect.stringContaining(flag) });
  });
});

describe('a relative --file', () => {
  // npm and pnpm set INIT_CWD (the directory they were started in) for every script and all it
  // runs, and concert read relative paths from it whatever script it ran under. `npm run seed` of
  // `"seed": "cd fixtures && concert admin concerts create --file concert.json"` looked for
  // ./concert.json next to package.json: "Cannot read concert.json: ENOENT" (exit 2).
  it('is read from the directory concert runs in; only `pnpm concert` (the root script) reads it from the caller’s', async () => {
    const project = tempConfigDir();
    try {
      const fixtures = path.join(project.dir, 'fixtures');
      mkdirSync(fixtures);
      const startsAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
      writeFileSync(path.join(fixtures, 'concert.json'), JSON.stringify({ title: 'From a file', schedules: [{ startsAt, seatCount: 4 }] }));
      const create = ['--admin-key', ADMIN_KEY, '--json', 'admin', 'concerts', 'create', '--file', 'concert.json'];
      const npm = { npm_package_json: path.join(project.dir, 'package.json') };

      const seed = await concert(create, { ...env, ...npm, INIT_CWD: project.dir, npm_lifecycle_event: 'seed' }, { cwd: fixtures });
      expect(seed.code, seed.stderr).toBe(0);
      expect(seed.json()).toMatchObject({ concertId: expect.any(Number) });

      // `cd fixtures && pnpm concert …`: pnpm runs the root's `concert` script at the root, and keeps fixtures in INIT_CWD.
      const viaPnpm = await concert(create, { ...env, ...npm, INIT_CWD: fixtures, npm_lifecycle_event: 'concert' }, { cwd: project.dir });
      expect(viaPnpm.code, viaPnpm.stderr).toBe(0);
    } finally {
      project.remove();
    }
  });
});

describe('concert waitlist leave', () => {
  // Leaving an entry that had already ended (its show cancelled: LAPSED; its offer paid: ACCEPTED)
  // changes nothing, and the server answers the entry as it is (README, Decisions: Waitlist); the
  // CLI printed the LAPSED entry and then "You left the waitlist." all the same.
  it('of an entry that had already ended says it changed nothing, and does not claim the fan left', async () => {
    const a = harnessAdmin(api.url);
    const now = Date.now();
    const c = await a.admin.concerts.create.mutate({ title: 'One seat', schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: 1 }] });
    const scheduleId = c.schedules[0]!.scheduleId;
    const [holder, fan] = await Promise.all([1, 2].map(() => a.admin.users.create.mutate({ name: 'fan', initialBalance: 1_000_000 })));
    const as = (u: { userId: number }, ...args: string[]) => concert(['--user', String(u.userId), ...args], env);
    expect((await as(holder!, 'queue', 'join', String(c.concertId), '--wait')).code).toBe(0);
    expect((await as(holder!, 'hold', String(scheduleId), '1')).code).toBe(0);
    const joined = await as(fan!, '--json', 'waitlist', 'join', String(scheduleId));
    expect(joined.code, joined.stderr).toBe(0);
    const { entryId } = joined.json<{ entryId: number }>();
    await a.admin.schedules.cancel.mutate({ scheduleId });

    const left = await as(fan!, 'waitlist', 'leave', String(entryId));
    expect(left.code, left.stderr).toBe(0);
    expect(left.stdout).toContain('LAPSED');
    expect(left.stdout).not.toContain('You left the waitlist');
    expect(left.stdout).toContain('had already ended (LAPSED): nothing changed');
    const json = await as(fan!, '--json', 'waitlist', 'leave', String(entryId));
    expect(json.json()).toMatchObject({ entryId, status: 'LAPSED' });
  });
});

describe('the line of a concert with no show left', () => {
  // Every show cancelled: the line is SOLD_OUT, and the fan was told "sold out … Your place is kept:
  // if seats come back (a refund), the line reopens in order. Check again after …" for a line no
  // refund can reopen. Then it was sent to "see its shows with concert schedules N --all", which
  // lists no cancelled show and said "No shows." (found by an operator's review).
  it('says no show is left, not to keep checking for seats to come back, nor to look for cancelled shows', async () => {
    const { concertId, scheduleId, userId } = await sale();
    await harnessAdmin(api.url).admin.schedules.cancel.mutate({ scheduleId });
    const as = (...args: string[]) => concert(['--user', String(userId), ...args], env);
    const join = await as('queue', 'join', String(concertId));
    expect(join.code, join.stderr).toBe(0);
    expect(join.stdout).toContain(`Concert ${concertId} has no show left to sell: every show was cancelled or has started.`);
    expect(join.stdout).not.toContain('reopens');
    const wait = await as('queue', 'join', String(concertId), '--wait');
    expect(wait.code).toBe(1);
    expect(wait.stderr).toContain('has no show left to sell');
    expect(wait.stderr).toContain('Nothing more will go on sale for it.');
    expect(wait.stderr).not.toContain('--all');
    expect(wait.stderr).not.toContain('Check again');
    const status = await as('queue', 'status', String(concertId));
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('has no show left to sell');
    expect(status.stdout).not.toContain('--all');
  });
});

describe('concert schedules', () => {
  // A concert whose only show was cancelled: `concert schedules` said "Every show is sold out (see
  // them all: concert schedules N --all)", and --all then said "No shows." A cancelled show is no
  // longer listed (API.md), so there is nothing sold out to see.
  it('of a concert with no show left says so, and does not send the fan to --all for sold-out shows', async () => {
    const { concertId, scheduleId } = await sale();
    await harnessAdmin(api.url).admin.schedules.cancel.mutate({ scheduleId });
    const r = await concert(['schedules', String(concertId)], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('sold out');
    expect(r.stdout).toContain('No shows.');
    const all = await concert(['schedules', String(concertId), '--all'], env);
    expect(all.stdout).toContain('No shows.');
  });
});

describe('an identity token (--user-token) that has expired or is not valid', () => {
  // The server answers a bad JWT with TOKEN_EXPIRED or TOKEN_INVALID, the codes of a bad queue
  // token, and the CLI's hint was the queue token's: an expired login (on balance, pay, anything)
  // read "Your turn in the waiting room is over: concert queue join <concertId> --wait", and joining
  // again failed the same way; a malformed one, "Join the waiting room first".
  it('is named in the hint, not the place in the waiting room', async () => {
    const secret = 'cli-jwt-test-secret-0123456789abcdef';
    const jwtApi = await startGatedApi({ AUTH_MODE: 'jwt', AUTH_JWT_SECRET: secret });
    try {
      const a = harnessAdmin(jwtApi.url);
      const { userId } = await a.admin.users.create.mutate({ name: 'fan', initialBalance: 0 });
      const now = Math.floor(Date.now() / 1000);
      const sign = (exp: number) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(String(userId)).setExpirationTime(exp).sign(new TextEncoder().encode(secret));
      const [expired, valid] = await Promise.all([sign(now - 10), sign(now + 600)]);
      const as = (token: string, ...args: string[]) => concert(['--api', jwtApi.url, '--user-token', token, ...args], env);
      expect((await as(valid, '--json', 'balance')).code).toBe(0);

      for (const args of [['balance'], ['queue', 'join', '1'], ['pay', '0b9d5a3e-6f1c-4c2a-9e7b-1d2f3a4b5c6d']]) {
        const r = await as(expired, ...args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr).toContain('(TOKEN_EXPIRED)');
        expect(r.stderr, args.join(' ')).not.toContain('waiting room');
        expect(r.stderr).toContain('--user-token');
      }
      const forged = await as(`${valid.slice(0, -4)}AAAA`, 'balance');
      expect(forged.code).toBe(1);
      expect(forged.stderr).toContain('(TOKEN_INVALID)');
      expect(forged.stderr).not.toContain('waiting room');
      expect(forged.stderr).toContain('--user-token');
    } finally {
      await jwtApi.stop();
    }
  });
});

describe('admin queue config outside the ranges the server takes', () => {
  // `--max-active 0` was bad usage (exit 2) but `--max-active 99999999999` went to the server and
  // came back INVALID_INPUT (exit 1), as did `--active-ttl` and `--idle-timeout` over a day: the
  // same option's range was checked half here, half there, as --limit's once was.
  it.each([
    ['--max-active', '1000001'],
    ['--active-ttl', '86401'],
    ['--idle-timeout', '86401'],
  ])('%s %s is bad usage (exit 2) before any request, naming the range', async (flag, value) => {
    // Nothing listens there: a request would be NETWORK_ERROR, exit 1.
    const m = memoryIo({ CONCERT_API_URL: 'http://127.0.0.1:1' });
    expect(await run(['--json', '--admin-key', 'k', 'admin', 'queue', 'config', '1', flag, value], m.io)).toBe(2);
    expect(JSON.parse(m.err()).error).toMatchObject({ code: 'USAGE', message: expect.stringMatching(new RegExp(`${flag} must be a whole number from 1 to `)) });
  });
});

describe('admin concerts rename with a title the server refuses', () => {
  // `admin users create ""` is bad usage (exit 2, checked with the core's schema), but `admin
  // concerts rename 1 --title ""` (or only spaces, or 201 characters) went to the server and came
  // back INVALID_INPUT, exit 1.
  it.each([[''], ['   '], ['x'.repeat(201)]])('--title %j is bad usage (exit 2) before any request', async (title) => {
    // Nothing listens there: a request would be NETWORK_ERROR, exit 1.
    const m = memoryIo({ CONCERT_API_URL: 'http://127.0.0.1:1' });
    expect(await run(['--json', '--admin-key', 'k', 'admin', 'concerts', 'rename', '1', '--title', title], m.io)).toBe(2);
    expect(JSON.parse(m.err()).error).toMatchObject({ code: 'USAGE', message: expect.stringContaining('--title') });
  });
});

describe('concert book from a script with --schedule alone', () => {
  // The CLI guide says --schedule alone answers the concert question too, but without a terminal
  // (or with --json) book still asked for --concert (exit 2): only a terminal could use it.
  it('books the show’s concert, no --concert needed', async () => {
    const { scheduleId, userId } = await sale();
    const r = await concert(['--user', String(userId), '--json', 'book', '--schedule', String(scheduleId), '--seats', '3', '--yes'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ reservation: { scheduleId, status: 'PAID' } });
  });
});

describe('concert book of a show whose booking has not opened', () => {
  // It took a place in line, was let in (its turn begun), and then failed BOOKING_NOT_OPEN at the
  // hold, the turn left standing for its whole length (an outside review).
  it('fails BOOKING_NOT_OPEN before it takes a place in line', async () => {
    const a = harnessAdmin(api.url);
    const now = Date.now();
    const c = await a.admin.concerts.create.mutate({ title: 'Later', schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now + 3_600_000), seatCount: 4 }] });
    const { userId } = await a.admin.users.create.mutate({ name: 'fan', initialBalance: 1_000_000 });
    const r = await concert(['--user', String(userId), '--json', 'book', '--schedule', String(c.schedules[0]!.scheduleId), '--seats', '1', '--yes'], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.error()).toMatchObject({ code: 'PRECONDITION_FAILED', appCode: 'BOOKING_NOT_OPEN' });
    expect(await lineOf(c.concertId)).toEqual(EMPTY);
  });
});

describe('a --queue-token of another concert', () => {
  // `queue leave 1` with concert 2's token left concert 2's line, answered {"left":true,"concertId":1},
  // and forgot concert 1's saved place, still ACTIVE (an outside review); `queue status 1` showed
  // concert 2's ticket.
  it('is bad usage naming its concert, and neither line nor the saved place changes', async () => {
    const { concertId, otherConcertId, userId } = await sale();
    const joined = await concert(['--user', String(userId), '--json', 'queue', 'join', String(concertId)], env);
    expect(joined.code, joined.stderr).toBe(0);
    const other = await concert(['--user', String(userId), '--json', 'queue', 'join', String(otherConcertId)], env);
    const otherToken = JSON.parse(other.stdout).token as string;
    for (const cmd of ['leave', 'status']) {
      const r = await concert(['--user', String(userId), '--json', '--queue-token', otherToken, 'queue', cmd, String(concertId)], env);
      expect(r.code, r.stderr).toBe(2);
      expect(r.error()).toMatchObject({ code: 'USAGE', message: `The queue token given is for concert ${otherConcertId}, not concert ${concertId}` });
    }
    expect(await lineOf(concertId)).toMatchObject({ active: 1 });
    expect(await lineOf(otherConcertId)).toMatchObject({ active: 1 });
    const saved = await concert(['--user', String(userId), '--json', 'queue', 'status', String(concertId)], env);
    expect(saved.code, saved.stderr).toBe(0);
    expect(JSON.parse(saved.stdout)).toMatchObject({ concertId, status: 'ACTIVE' });
  });
});

describe('values that only looked right', () => {
  // `--opens-at 2027-02-30T10:00:00Z` was taken as March 2nd (Date rolls the day over), and
  // `simulate --pay-rate ''` (or ' ', or '0x1') as 0 or 1 (an outside review).
  it.each([
    [['--admin-key', 'k', 'admin', 'queue', 'config', '1', '--opens-at', '2027-02-30T10:00:00Z'], '--opens-at'],
    [['--admin-key', 'k', 'admin', 'queue', 'config', '1', '--opens-at', '2027-02-29T10:00:00Z'], '--opens-at'],
    [['--admin-key', 'k', 'admin', 'queue', 'config', '1', '--opens-at', '2027-04-31T10:00:00+09:00'], '--opens-at'],
    [['--admin-key', 'k', 'simulate', '--concert', '1', '--users', '1', '--pay-rate', ''], '--pay-rate'],
    [['--admin-key', 'k', 'simulate', '--concert', '1', '--users', '1', '--pay-rate', '0x1'], '--pay-rate'],
  ])('%j is bad usage (exit 2) before any request', async (args, flag) => {
    // Nothing listens there: a request would be NETWORK_ERROR, exit 1.
    const m = memoryIo({ CONCERT_API_URL: 'http://127.0.0.1:1' });
    expect(await run(['--json', ...args], m.io)).toBe(2);
    expect(JSON.parse(m.err()).error).toMatchObject({ code: 'USAGE', message: expect.stringContaining(flag) });
  });
});
