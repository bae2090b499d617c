import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import type { ApiClient } from '../src/client.ts';
import { adminConcertsListCommand, adminCreateConcertCommand, validateConcertFile } from '../src/commands/admin/concerts.ts';
import { adminHoldsCommand } from '../src/commands/admin/holds.ts';
import { renderQueueStats } from '../src/commands/admin/queue.ts';
import { adminWatchCommand, renderWatch } from '../src/commands/admin/watch.ts';
import { adminWebhookDeliveriesCommand } from '../src/commands/admin/webhooks.ts';
import { concertsCommand } from '../src/commands/concerts.ts';
import { historyCommand } from '../src/commands/history.ts';
import { reservationsCommand } from '../src/commands/reservations.ts';
import { scheduleTable } from '../src/commands/schedules.ts';
import { parseWon } from '../src/args.ts';
import { queueJoinCommand, renderTicket } from '../src/commands/queue.ts';
import { renderReport, stats } from '../src/commands/simulate.ts';
import { waitlistListCommand } from '../src/commands/waitlist.ts';
import { Ctx, type Io } from '../src/context.ts';
import { describeError, UsageError } from '../src/errors.ts';
import { colorsFor, displayWidth, duration, fitWidth, localTime, plain, table, timeLeft, won } from '../src/format.ts';
import { liveLine, soldOut, waitInLine } from '../src/line.ts';
import { run } from '../src/program.ts';
import type { QueueTicket, SaleWatch } from '../src/types.ts';
import { RehearsalPool } from '../src/rehearsal-users.ts';
import { renderSeatMap, seatMapCols, type SeatMapView } from '../src/seatmap.ts';
import { SessionStore } from '../src/session.ts';
import { renderReservation } from '../src/views.ts';
import { fakeTerminal, KEY, memoryIo, stripAnsi } from './helpers.ts';
import pkg from '../package.json' with { type: 'json' };

const startsAt = new Date(2026, 11, 24, 19, 0);
const TIERS = [
  { grade: 'VIP', price: 150_000, to: 10 },
  { grade: 'R', price: 100_000, to: 30 },
  { grade: 'S', price: 70_000, to: 50 },
];
function schedule(status: (n: number) => 'AVAILABLE' | 'HELD' | 'SOLD', seatCount = 50): SeatMapView {
  return {
    concertId: 1,
    scheduleId: 3,
    startsAt,
    seats: Array.from({ length: seatCount }, (_, i) => {
      const n = i + 1;
      const tier = TIERS.find((t) => n <= t.to)!;
      return { seatNumber: n, grade: tier.grade, price: tier.price, status: status(n) };
    }),
  };
}

describe('seat map', () => {
  it('renders a sold-out schedule', () => {
    const text = renderSeatMap(schedule(() => 'SOLD'), plain, { title: 'Aurora Live' });
    expect(text).toContain('Aurora Live · 2026-12-24 19:00 Thu · schedule 3');
    expect(text).toContain('   1-10 │ ● 1V ● 2V ● 3V ● 4V ● 5V ● 6V ● 7V ● 8V ● 9V ●10V');
    expect(text).toContain('  41-50 │ ●41S ●42S');
    expect(text.split('\n').filter((l) => l.includes('│')).join('')).not.toMatch(/[○◐]/);
    expect(text).toMatch(/V {2}VIP {2}₩150,000 {2}seats 1-10 {3}sold out/);
    expect(text).toContain('SOLD OUT · 0 of 50 seats available · 0 held · 50 sold');
  });

  it('renders a half-held schedule with a legend of prices and what is left', () => {
    const text = renderSeatMap(schedule((n) => (n % 2 === 0 ? 'HELD' : 'AVAILABLE')), plain, { title: 'Aurora Live' });
    expect(text).toContain('   1-10 │ ○ 1V ◐ 2V ○ 3V ◐ 4V');
    expect(text).toContain('○ available   ◐ held   ● sold');
    expect(text).toMatch(/V {2}VIP {2}₩150,000 {2}seats 1-10 {3}5 of 10 left/);
    expect(text).toMatch(/R {2}R {4}₩100,000 {2}seats 11-30 {2}10 of 20 left/);
    expect(text).toMatch(/S {2}S {5}₩70,000 {2}seats 31-50 {2}10 of 20 left/);
    expect(text).toContain('25 of 50 seats available · 25 held · 0 sold');
    expect(text).not.toContain('SOLD OUT');
  });

  // Padded by length, a grade of double-width characters pushed its cells and its legend row out
  // of line (an outside review, with VIP, VVIP, 일반석 and Standing).
  it('lines up grades of double-width characters, in the grid and the legend', () => {
    const grades = ['VIP', 'VVIP', '일반석', 'Standing'];
    const map: SeatMapView = {
      concertId: 1,
      scheduleId: 3,
      startsAt,
      seats: Array.from({ length: 40 }, (_, i) => ({ seatNumber: i + 1, grade: grades[i % 4]!, price: 1000 * (i % 4), status: 'AVAILABLE' as const })),
    };
    const lines = renderSeatMap(map, plain).split('\n');
    const widths = (ls: string[]) => new Set(ls.map((l) => displayWidth(l)));
    expect(widths(lines.filter((l) => l.includes('│')))).toEqual(new Set([displayWidth(lines.find((l) => l.includes('│'))!)]));
    // The legend's columns after the grade (prices, right-aligned, then the seats) line up.
    const legend = lines.filter((l) => l.includes('₩'));
    expect(legend).toHaveLength(4);
    expect(new Set(legend.map((l) => displayWidth(l.slice(0, l.indexOf(' seats ')))))).toHaveProperty('size', 1);
  });

  // A 1,000-seat show in an 80×24 terminal: rows of 81 columns wrapped, and the picker's map was
  // about 110 lines, its cursor's row scrolled away (an outside review).
  it('fits a large show to the terminal: fewer seats a row, and a window of rows around the cursor', () => {
    const big: SeatMapView = { ...schedule(() => 'AVAILABLE'), seats: Array.from({ length: 1000 }, (_, i) => ({ seatNumber: i + 1, grade: 'R', price: 1000, status: 'AVAILABLE' as const })) };
    const cols = seatMapCols(big, 80);
    expect(cols).toBeLessThan(10);
    expect(seatMapCols(schedule(() => 'AVAILABLE'), 80)).toBe(10);
    expect(seatMapCols(big, undefined)).toBe(10);
    const text = renderSeatMap(big, plain, { cols, cursor: 500, maxRows: 10 });
    const grid = text.split('\n').filter((l) => l.includes('│'));
    expect(grid).toHaveLength(8);
    for (const line of text.split('\n')) expect(displayWidth(line)).toBeLessThanOrEqual(80);
    expect(grid.some((l) => l.includes('>○ 500R'))).toBe(true);
    expect(text).toMatch(/↑ \d+ more rows/);
    expect(text).toMatch(/↓ \d+ more rows/);
    // At the first seat, nothing is above.
    const top = renderSeatMap(big, plain, { cols, cursor: 1, maxRows: 10 });
    expect(top).toContain('>○   1R');
    expect(top).not.toContain('↑');
    expect(text.split('\n').length).toBe(top.split('\n').length);
  });

  it('renders an empty schedule (nothing sold yet), and one with no seats at all', () => {
    const text = renderSeatMap(schedule(() => 'AVAILABLE'), plain, { cols: 25 });
    expect(text).toContain('Concert 1 · 2026-12-24 19:00 Thu');
    expect(text.split('\n').filter((l) => l.includes('│'))).toHaveLength(2);
    expect(text).toContain('50 of 50 seats available · 0 held · 0 sold');
    expect(renderSeatMap({ ...schedule(() => 'AVAILABLE'), seats: [] }, plain)).toContain('This schedule has no seats.');
  });

  it('colours by status only when colours are on, and the glyphs still tell the status without them', () => {
    const map = schedule((n) => (n <= 10 ? 'SOLD' : n <= 20 ? 'HELD' : 'AVAILABLE'));
    const coloured = renderSeatMap(map, colorsFor({ isTTY: true }, {}));
    expect(coloured).toContain('\x1b[32m○21'); // available: green
    expect(coloured).toContain('\x1b[33m◐11'); // held: yellow
    expect(coloured).toContain('\x1b[31m● 1'); // sold: red
    expect(stripAnsi(coloured)).toBe(renderSeatMap(map, plain));
    expect(renderSeatMap(map, colorsFor({ isTTY: true }, { NO_COLOR: '1' }))).not.toContain('\x1b[');
    expect(renderSeatMap(map, colorsFor({ isTTY: false }, {}))).not.toContain('\x1b[');
  });

  it('marks grades that share an initial with longer marks', () => {
    const map: SeatMapView = { concertId: 1, scheduleId: 1, startsAt, seats: [
      { seatNumber: 1, grade: 'SR', price: 1, status: 'AVAILABLE' },
      { seatNumber: 2, grade: 'S', price: 1, status: 'AVAILABLE' },
    ] };
    expect(renderSeatMap(map, plain)).toContain('○1SR ○2S ');
  });
});

describe('formatting', () => {
  it('money in won, times in local time, what is left of a hold', () => {
    expect(won(1_234_500)).toBe('₩1,234,500');
    expect(won(-70_000)).toBe('-₩70,000');
    expect(localTime(new Date(2026, 0, 5, 9, 7, 3), { seconds: true })).toBe('2026-01-05 09:07:03 Mon');
    const now = new Date(2026, 0, 1, 12, 0, 0);
    expect(timeLeft(new Date(now.getTime() + 4 * 60_000 + 5_000), now)).toBe('4m 05s left');
    expect(timeLeft(new Date(now.getTime() - 1), now)).toBe('expired');
    expect(duration(3 * 3600_000 + 120_000)).toBe('3h 02m');
  });

  it('tables align and carry no colour when off', () => {
    const t = table(plain, ['id', 'title'], [[1, 'Aurora'], [22, 'Neon']], { align: ['right', 'left'] });
    expect(t).toContain('│  1 │ Aurora │');
    expect(t).toContain('│ 22 │ Neon   │');
    expect(t).not.toContain('\x1b[');
  });

  it('renders holds, reservations and the rehearsal report as tables', async () => {
    const report = renderReport(plain, {
      concertId: 1, scheduleId: 3, users: 30, concurrency: 8, payRate: 0.7, durationMs: 4200,
      admitted: 30, held: 28, paid: 20, abandoned: 8, soldOut: 2, soldOutInLine: 4, waited: 12, usersCreated: 10, usersReused: 20, conflicts: 5, seatsSold: 31,
      errors: { RATE_LIMITED: 1 },
      steps: { enter: stats([5, 6, 7]), wait: stats([850, 1250, 2400, 61_500]), hold: stats([10, 20, 30, 40]) },
      oversoldSeats: 0,
      audit: { ok: true, checks: [{ name: 'no seat sold twice', ok: true, detail: 'fine' }] },
    });
    expect(report).toContain('✓ 0 oversold seats · audit clean (1 checks)');
    expect(report).toContain('errors          RATE_LIMITED ×1');
    expect(report).toContain('users           10 new, 20 reused from earlier rehearsals');
    expect(report).toContain('waited in line  12 (the rest were admitted as they entered)');
    expect(report).toContain('found no seat   2');
    expect(report).toContain('sold out        4 in line (told SOLD_OUT before their turn; not an error)');
    // Timings keep their milliseconds: sub-second in ms, seconds to the hundredth, minutes to the tenth of a second.
    expect(report).toContain('8 at a time, 70% pay · 4.20 s');
    expect(report).toMatch(/│ wait {2}│ +4 │ 1\.25 s │ 1m 01\.5s │ 1m 01\.5s │ 1m 01\.5s │/);
    expect(report).toMatch(/│ enter │ +3 │ +6 ms │ +7 ms │/);
    expect(report).toMatch(/│ hold {2}│ +4 │ +20 ms │ +40 ms │ +40 ms │ +40 ms │/);
    expect(stats([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toEqual({ count: 10, p50: 5, p95: 10, p99: 10, max: 10 });
  });
});

describe('schedules table', () => {
  // The server counts a started show's seats 0 available, and the table read "sold out (5)" for a
  // show with four seats unsold (an outside review); its booking column already says closed.
  it('says nothing of seats left for a started show, and sold out for one that is', () => {
    const ctx = new Ctx(memoryIo().io, { user: '1' });
    const now = ctx.now().getTime();
    const show = (scheduleId: number, startsIn: number, availableSeats: number) => ({
      scheduleId,
      concertId: 1,
      startsAt: new Date(now + startsIn),
      bookingOpensAt: new Date(now - 86_400_000),
      totalSeats: 5,
      availableSeats,
    });
    const text = scheduleTable(ctx, [show(1, -60_000, 0), show(2, 86_400_000, 0), show(3, 86_400_000, 4)]);
    expect(text).toMatch(/│ +1 │[^\n]*│ closed +│ +- │/);
    expect(text).toMatch(/│ +2 │[^\n]*│ open +│ +sold out \(5\) │/);
    expect(text).toMatch(/│ +3 │[^\n]*│ open +│ +4 of 5 │/);
  });
});

describe('concert files', () => {
  it('points at the field that is wrong, using the core schema', async () => {
    try {
      await validateConcertFile({ title: '', schedules: [{ startsAt: '2026-12-24T19:00:00Z', tiers: [{ grade: 'VIP', price: -1, fromSeat: 1, toSeat: 10 }] }] }, 'concert.json');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      const issues = (err as UsageError).issues!;
      // Seats 11..50 of the default 50 are in no tier: the shared schema says so too.
      expect(issues.map((i) => i.path)).toEqual(['title', 'schedules[0].tiers[0].price', 'schedules[0].tiers']);
      expect((err as UsageError).message).toContain('schedules[0].tiers[0].price:');
    }
    expect((await validateConcertFile({ title: 'Ok', schedules: [{ startsAt: '2026-12-24T19:00:00Z' }] })).schedules[0]!.startsAt).toBeInstanceOf(Date);
  });

  // A misspelt key was dropped and its default taken ("seats": 30 made 50 seats at one price, a
  // concert that cannot be deleted), and a booking window of no length was taken (an outside review).
  it('refuses keys it does not know, at any depth, and a booking window that opens as the show starts', async () => {
    let message = '';
    const issuesOf = async (json: unknown) => {
      try {
        await validateConcertFile(json, 'concert.json');
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        message = (err as UsageError).message;
        return (err as UsageError).issues!.map((i) => i.path);
      }
      return [];
    };
    const startsAt = '2026-12-24T19:00:00Z';
    expect(await issuesOf({ title: 'Typo', foo: 1, schedules: [{ startsAt, seats: 30, tier: [] }] })).toEqual(['schedules[0]', '']);
    // The keys are named.
    for (const key of ['"seats"', '"tier"', '"foo"']) expect(message).toContain(key);
    expect(await issuesOf({ title: 'Typo', schedules: [{ startsAt, seatCount: 2, tiers: [{ grade: 'R', price: 1, fromSeat: 1, toSeat: 2, prce: 5 }] }] })).toEqual(['schedules[0].tiers[0]']);
    expect(await issuesOf({ title: 'Empty window', schedules: [{ startsAt, bookingOpensAt: startsAt }] })).toEqual(['schedules[0].bookingOpensAt']);
    expect(await issuesOf({ title: 'Ok', schedules: [{ startsAt, bookingOpensAt: '2026-12-24T18:59:59Z' }] })).toEqual([]);
  });

  // A file saved by Windows Notepad starts with a byte-order mark, which JSON.parse refuses: the
  // concert file was "not valid JSON: Unexpected token '\uFEFF'", and a session or rehearsal-users
  // file edited there was silently taken for empty (its tokens and users forgotten).
  it('reads JSON files that start with a UTF-8 byte-order mark', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-bom-'));
    try {
      const concert = { title: 'Aurora', schedules: [{ startsAt: '2099-12-24T19:00:00Z', seatCount: 10 }] };
      writeFileSync(path.join(dir, 'concert.json'), `\uFEFF${JSON.stringify(concert)}`);
      const m = memoryIo();
      const ctx = new Ctx({ ...m.io, cwd: dir }, { adminKey: 'k', json: true });
      let sent: unknown;
      const created = { concertId: 5, schedules: [{ scheduleId: 9, startsAt: new Date('2099-12-24T19:00:00Z'), seatCount: 10 }] };
      Object.defineProperty(ctx, 'client', { value: { admin: { concerts: { create: { mutate: async (input: unknown) => ((sent = input), created) } } } } });
      await adminCreateConcertCommand(ctx, 'concert.json');
      expect(sent).toMatchObject({ title: 'Aurora', schedules: [{ seatCount: 10 }] });

      const token = { api: 'http://127.0.0.1:3000', user: '1', concertId: 7, token: 't', status: 'ACTIVE', activeUntil: null, savedAt: '2026-12-01T00:00:00Z' };
      writeFileSync(path.join(dir, 'session.json'), `\uFEFF${JSON.stringify({ version: 1, tokens: { x: token } })}`);
      expect(new SessionStore(path.join(dir, 'session.json')).list()).toEqual([token]);
      writeFileSync(path.join(dir, 'rehearsal-users.json'), `\uFEFF${JSON.stringify({ version: 1, apis: { 'http://127.0.0.1:3000': [{ userId: 4, boughtOn: [] }] } })}`);
      expect(new RehearsalPool(path.join(dir, 'rehearsal-users.json'), 'http://127.0.0.1:3000').take(5, 1)).toEqual([{ userId: 4, boughtOn: [] }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('help and usage', () => {
  it('`concert help hold` reads like a man page', async () => {
    const m = memoryIo();
    expect(await run(['help', 'hold'], m.io)).toBe(0);
    const text = m.out();
    expect(text).toContain('Usage: concert hold [options] <scheduleId> <seat...>');
    expect(text).toContain('Hold 1 to 4 seats of a show');
    expect(text).toContain('Global Options:');
    expect(text).toContain('--idempotency-key <key>');
    expect(text).toContain('Examples:');
    expect(text).toContain('$ concert --user 1 hold 3 12 13');
  });

  it('every command has a description and an example', async () => {
    const { buildProgram } = await import('../src/program.ts');
    const program = buildProgram(memoryIo().io, { exitCode: 0, known: {} });
    const leaves: string[] = [];
    const walk = (cmd: typeof program, prefix: string[]) => {
      for (const sub of cmd.commands) {
        if (sub.name() === 'help') continue;
        if (sub.commands.length) walk(sub, [...prefix, sub.name()]);
        else leaves.push([...prefix, sub.name()].join(' '));
      }
    };
    walk(program, []);
    expect(leaves.sort()).toEqual(
      [
        'admin audit', 'admin concerts create', 'admin concerts list', 'admin concerts rename', 'admin holds', 'admin queue config', 'admin queue stats',
        'admin refund', 'admin release', 'admin schedules cancel', 'admin seed-demo', 'admin users create', 'admin watch',
        'admin webhooks add', 'admin webhooks deliveries', 'admin webhooks list', 'admin webhooks remove',
        'balance', 'book', 'cancel', 'charge', 'concerts', 'history', 'hold', 'pay', 'queue join', 'queue leave', 'queue status',
        'refund', 'reservation', 'reservations', 'schedules', 'seats', 'simulate', 'waitlist join', 'waitlist leave', 'waitlist list',
      ].sort(),
    );
    for (const leaf of leaves) {
      const m = memoryIo();
      expect(await run(['help', ...leaf.split(' ')], m.io)).toBe(0);
      expect(m.out(), leaf).toMatch(/Examples:\n {2}# .+\n {2}\$ concert /);
    }
  });

  it('a command is found by its name: `concert a b` lives in commands/a.ts, or commands/a/b.ts for a group with a folder', async () => {
    const { existsSync } = await import('node:fs');
    const { buildProgram } = await import('../src/program.ts');
    const dir = new URL('../src/commands/', import.meta.url);
    const program = buildProgram(memoryIo().io, { exitCode: 0, known: {} });
    const top = program.commands.filter((c) => c.name() !== 'help');
    expect(top.length).toBeGreaterThan(10);
    for (const cmd of top) {
      const name = cmd.name();
      if (existsSync(new URL(`${name}/index.ts`, dir))) {
        for (const sub of cmd.commands) expect(existsSync(new URL(`${name}/${sub.name()}.ts`, dir)), `${name} ${sub.name()}`).toBe(true);
      } else {
        expect(existsSync(new URL(`${name}.ts`, dir)), name).toBe(true);
      }
    }
  });

  it('bad usage exits 2, in both output modes', async () => {
    const m = memoryIo();
    expect(await run(['hold', 'x', '1'], m.io)).toBe(2);
    expect(m.err()).toContain("error: command-argument value 'x' is invalid for argument 'scheduleId'");
    const j = memoryIo();
    expect(await run(['--json', 'frobnicate'], j.io)).toBe(2);
    expect(JSON.parse(j.err())).toEqual({ error: { code: 'USAGE', appCode: null, message: "unknown command 'frobnicate'" } });
    expect(j.out()).toBe('');
    const u = memoryIo();
    expect(await run(['--json', 'balance'], u.io)).toBe(2);
    expect(JSON.parse(u.err()).error.message).toContain('--user');
    expect(() => new Ctx(memoryIo().io, { user: 'abc' })).toThrow(UsageError);
  });

  // A group whose list is its default command (admin webhooks, admin concerts, waitlist) handed a
  // mistyped command to the list: `admin webhooks delete 2` said "too many arguments for 'list'".
  it('a word that names no command of a group with a default list is an unknown command of that group', async () => {
    for (const [argv, message, hint] of [
      [['admin', 'webhooks', 'delete', '2'], "unknown command 'delete'", 'See concert help admin webhooks'],
      [['admin', 'concerts', 'crate', '--file', 'x.json'], "unknown command 'crate'\n(Did you mean create?)", 'See concert help admin concerts'],
      [['waitlist', 'joinn', '3'], "unknown command 'joinn'\n(Did you mean join?)", 'See concert help waitlist'],
    ] as const) {
      const m = memoryIo();
      expect(await run(['--admin-key', 'k', '--user', '1', '--api', 'http://127.0.0.1:9', ...argv], m.io)).toBe(2);
      expect(m.err()).toBe(`error: ${message}\n${hint}\n`);
      const j = memoryIo();
      expect(await run(['--json', '--admin-key', 'k', '--user', '1', '--api', 'http://127.0.0.1:9', ...argv], j.io)).toBe(2);
      expect(JSON.parse(j.err())).toEqual({ error: { code: 'USAGE', appCode: null, message } });
    }
    // The list itself still takes its options, with or without its name.
    const page = memoryIo();
    expect(await run(['--user', '1', '--api', 'http://127.0.0.1:9', 'waitlist', '--limit', '0'], page.io)).toBe(2);
    expect(page.err()).toContain("option '--limit <n>' argument '0' is invalid");
  });

  // `simulate --users 100000000` was accepted and made about 102,000 permanent users before it was killed.
  it('simulate --users has an upper limit: more is bad usage naming it, before anything is sent', async () => {
    for (const json of [true, false]) {
      const m = memoryIo();
      expect(await run(['--admin-key', 'k', '--api', 'http://127.0.0.1:9', ...(json ? ['--json'] : []), 'simulate', '--concert', '1', '--users', '10001'], m.io)).toBe(2);
      expect(m.out()).toBe('');
      if (json) expect(JSON.parse(m.err()).error).toMatchObject({ code: 'USAGE', appCode: null, message: expect.stringContaining('--users must be a whole number from 1 to 10000') });
      else expect(m.err()).toContain('--users must be a whole number from 1 to 10000');
    }
    const help = memoryIo();
    expect(await run(['help', 'simulate'], help.io)).toBe(0);
    expect(help.out()).toMatch(/--users <n> +how many virtual users \(1-10000\)/);
    // --max-seats past the ticket limit too (5 was quietly taken as 4).
    const five = memoryIo();
    expect(await run(['--admin-key', 'k', '--api', 'http://127.0.0.1:9', 'simulate', '--concert', '1', '--users', '10', '--max-seats', '5'], five.io)).toBe(2);
    expect(five.err()).toContain('--max-seats must be a whole number from 1 to 4');
  });

  // `concert --json admin queue` (a group without its command) and `concert --json` alone printed
  // the group's help on stderr, so a script reading stderr's envelope got a page of text.
  it('a missing command is a usage error too: with --json, the envelope alone on stderr; --version is JSON', async () => {
    for (const [argv, message] of [
      [['--json', 'admin', 'queue'], 'concert admin queue needs a command: stats, config'],
      [['--json'], 'concert needs a command: see concert help'],
    ] as const) {
      const j = memoryIo();
      expect(await run([...argv], j.io), argv.join(' ')).toBe(2);
      expect(j.out()).toBe('');
      expect(JSON.parse(j.err()), argv.join(' ')).toEqual({ error: { code: 'USAGE', appCode: null, message } });
    }
    // --version is a JSON document too with --json (it printed 0.1.0, which jq refuses).
    const v = memoryIo();
    expect(await run(['--json', '--version'], v.io)).toBe(0);
    expect(JSON.parse(v.out())).toEqual({ version: pkg.version });
    const plain = memoryIo();
    expect(await run(['--version'], plain.io)).toBe(0);
    expect(plain.out()).toBe(`${pkg.version}\n`);
    // Without --json, people still get the group's help (on stderr, exit 2).
    const m = memoryIo();
    expect(await run(['admin', 'queue'], m.io)).toBe(2);
    expect(m.err()).toContain('Usage: concert admin queue');
    expect(m.out()).toBe('');
  });
});

describe('the live line fits the terminal', () => {
  const colours = colorsFor({ isTTY: true }, {});
  const ticket = (over: Partial<QueueTicket>): QueueTicket =>
    ({ token: 'tok', concertId: 12345, status: 'WAITING', position: 1234, aheadCount: 1233, etaSeconds: 4000, enteredAt: new Date(), opensAt: null, activeUntil: null, pollAfterMs: 150, paused: false, ...over }) as QueueTicket;

  it('measures without colour codes, and cuts with an ellipsis, keeping colours closed', () => {
    expect(displayWidth(colours.bold('abc'))).toBe(3);
    expect(displayWidth('공연 ⠋ █░')).toBe(9);
    expect(fitWidth('short', 10)).toBe('short');
    expect(fitWidth('0123456789', 10)).toBe('0123456789');
    expect(fitWidth('0123456789abc', 10)).toBe('012345678…');
    expect(fitWidth('공연공연공연', 7)).toBe('공연공…');
    const cut = fitWidth(`${colours.cyan('⠋')} In line ${colours.bold('1234')} and more`, 12);
    expect(stripAnsi(cut)).toBe('⠋ In line 1…');
    // The bold cut short is closed before the ellipsis.
    expect(cut.endsWith('\x1b[22m…')).toBe(true);
    expect(fitWidth(colours.cyan('⠋ In line 1234 and more'), 12)).toBe(`${colours.cyan('⠋ In line 1')}…`);
  });

  it('is wider than 80 columns before fitting, both pre-queued and waiting', () => {
    const now = new Date();
    expect(displayWidth(liveLine(colours, ticket({ status: 'PRE_QUEUE', position: null, opensAt: new Date(now.getTime() + 35_000) }), 1, 0, now))).toBeGreaterThan(100);
    expect(displayWidth(liveLine(colours, ticket({}), 5000, 0, now))).toBeGreaterThan(80);
  });

  it('pre-queued on a narrow terminal: shorter wordings keep the countdown to the opening, never cut before it', () => {
    const now = new Date(2026, 11, 24, 13, 58, 37);
    const pre = (concertId: number, inMs: number) => ticket({ concertId, status: 'PRE_QUEUE', position: null, opensAt: new Date(now.getTime() + inMs) });
    // 40 columns: the line is drawn one cell short of them.
    expect(stripAnsi(liveLine(colours, pre(13, 83_000), 1, 0, now, 39))).toBe('⠋ Pre-queued · opens in 1m 23s');
    expect(stripAnsi(liveLine(colours, pre(12345, 3_723_000), 1, 0, now, 39))).toBe('⠋ Pre-queued · opens in 1h 02m');
    expect(stripAnsi(liveLine(colours, pre(13, 83_000), 1, 0, now, 29))).toBe('⠋ opens in 1m 23s');
    expect(stripAnsi(liveLine(colours, pre(13, 0), 1, 0, now, 39))).toBe('⠋ Pre-queued for concert 13 · opens now');
    // Wider terminals keep the rest as before, as much as fits.
    expect(stripAnsi(liveLine(colours, pre(13, 83_000), 1, 0, now, 79))).toBe(`⠋ Pre-queued for concert 13 · opens in 1m 23s (${localTime(new Date(now.getTime() + 83_000), { seconds: true, weekday: false })})`);
    expect(stripAnsi(liveLine(colours, pre(13, 83_000), 1, 0, now))).toMatch(/^⠋ Pre-queued for concert 13 · opens in 1m 23s \(.+\) · places are drawn at random at the opening$/);
    for (const width of [20, 29, 39, 59, 79]) expect(displayWidth(liveLine(colours, pre(12345, 83_000), 1, 0, now, width)), String(width)).toBeLessThanOrEqual(width);
  });

  it('redraws within the width of the terminal, and again at the new width when it is resized', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-line-'));
    let err = '';
    const stderr = Object.assign(new Writable({ write: (chunk: Buffer, _enc, cb) => ((err += chunk.toString()), cb()) }), { isTTY: true, columns: 80 });
    const io: Io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr, env: { CONCERT_CONFIG_DIR: dir }, cwd: process.cwd(), signal: new AbortController().signal };
    const ctx = new Ctx(io, { user: '1' });
    const now = Date.now();
    const answers = [
      ticket({ status: 'PRE_QUEUE', position: null, opensAt: new Date(now + 35_000), pollAfterMs: 400 }),
      ticket({ pollAfterMs: 400 }),
      ticket({ status: 'ACTIVE', position: null, activeUntil: new Date(now + 600_000) }),
    ];
    let polls = 0;
    const client = {
      queue: {
        status: {
          query: async () => {
            // Narrower after the first answer: the next redraw (and the resize event's) fits the new width.
            if (polls === 0) Object.assign(stderr, { columns: 60 }).emit('resize');
            return answers[Math.min(polls++, answers.length - 1)]!;
          },
        },
      },
    } as unknown as ApiClient;
    try {
      const done = await waitInLine(ctx, ticket({ status: 'PRE_QUEUE', position: null, opensAt: new Date(now + 35_000), pollAfterMs: 400 }), client);
      expect(done.status).toBe('ACTIVE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const frames = err.split('\r\x1b[2K').filter(Boolean).map(stripAnsi);
    expect(frames.some((f) => f.includes('Pre-queued'))).toBe(true);
    expect(frames.some((f) => f.includes('In line'))).toBe(true);
    const at80 = frames.filter((f) => displayWidth(f) > 59);
    expect(at80.length).toBeGreaterThan(0);
    for (const f of frames) expect(displayWidth(f), f).toBeLessThanOrEqual(79);
    // After the resize every frame fits 60 columns.
    const firstNarrow = frames.findIndex((f, i) => i > 0 && displayWidth(f) <= 59 && f.endsWith('…'));
    expect(firstNarrow).toBeGreaterThan(0);
    for (const f of frames.slice(firstNarrow)) expect(displayWidth(f), f).toBeLessThanOrEqual(59);
    expect(frames.filter((f) => f.endsWith('…')).length).toBeGreaterThan(2);
  });

  it('leaves output that is not a terminal as it was: whole lines, one per change', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-line-'));
    let err = '';
    const stderr = Object.assign(new Writable({ write: (chunk: Buffer, _enc, cb) => ((err += chunk.toString()), cb()) }), { columns: 40 });
    const io: Io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr, env: { CONCERT_CONFIG_DIR: dir }, cwd: process.cwd(), signal: new AbortController().signal };
    const ctx = new Ctx(io, { user: '1' });
    const client = { queue: { status: { query: async () => ticket({ status: 'ACTIVE', position: null }) } } } as unknown as ApiClient;
    try {
      await waitInLine(ctx, ticket({ pollAfterMs: 50 }), client);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(err).toBe('In line for concert 12345 · position 1234 · 1233 ahead · ETA ~1h 06m  ░░░░░░░░░░░░░░░░░░░░ 0%\n');
  });

  // `concert queue status 3` in a second terminal during `queue join 3 --wait`: the wait's next poll
  // came too soon after that look, and the wait ended RATE_LIMITED, exit 1, its place still kept.
  it('a poll turned away as too soon (someone else looked just before) is asked again, not the end of the wait', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-line-'));
    let err = '';
    const stderr = new Writable({ write: (chunk: Buffer, _enc, cb) => ((err += chunk.toString()), cb()) });
    const io: Io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr, env: { CONCERT_CONFIG_DIR: dir }, cwd: process.cwd(), signal: new AbortController().signal };
    const tooSoon = Object.assign(new Error('Polling faster than pollAfterMs asks; retry in 497 ms'), {
      name: 'TRPCClientError',
      data: { code: 'TOO_MANY_REQUESTS', appCode: 'RATE_LIMITED', httpStatus: 429, details: { retryAfterMs: 497 } },
    });
    const answers: Array<() => QueueTicket> = [
      () => {
        throw tooSoon;
      },
      () => ticket({ status: 'ACTIVE', position: null }),
    ];
    const polls: number[] = [];
    const client = { queue: { status: { query: async () => (polls.push(Date.now()), answers.shift()!()) } } } as unknown as ApiClient;
    try {
      const done = await waitInLine(new Ctx(io, { user: '1' }), ticket({ pollAfterMs: 50 }), client);
      expect(done.status).toBe('ACTIVE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(polls).toHaveLength(2);
    // At the line's pace again, not at once.
    expect(polls[1]! - polls[0]!).toBeGreaterThanOrEqual(45);
    expect(err).not.toContain('RATE_LIMITED');
  });

  // FORCE_COLOR (CI logs) on output that is not a terminal: the spinner was cut as two characters,
  // half of its colour code, and the line began `36m⠋\x1b[39m Pre-queued…`.
  it('with colours forced on output that is not a terminal, the line starts at its words, no spinner and no torn colour code', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-line-'));
    let err = '';
    const stderr = new Writable({ write: (chunk: Buffer, _enc, cb) => ((err += chunk.toString()), cb()) });
    const io: Io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr, env: { CONCERT_CONFIG_DIR: dir, FORCE_COLOR: '1' }, cwd: process.cwd(), signal: new AbortController().signal };
    const client = { queue: { status: { query: async () => ticket({ status: 'ACTIVE', position: null }) } } } as unknown as ApiClient;
    try {
      await waitInLine(new Ctx(io, { user: '1' }), ticket({ pollAfterMs: 50 }), client);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(err.startsWith('In line for concert 12345 · position \x1b[1m1234\x1b[22m · 1233 ahead')).toBe(true);
    expect(stripAnsi(err)).toBe('In line for concert 12345 · position 1234 · 1233 ahead · ETA ~1h 06m  ░░░░░░░░░░░░░░░░░░░░ 0%\n');
  });
});

/** A terminal-looking stream of `columns` that keeps what is written to it. */
function screenOf(columns: number, rows?: number) {
  let text = '';
  const stream = Object.assign(new Writable({ write: (chunk: Buffer, _enc, cb) => ((text += chunk.toString()), cb()) }), { isTTY: true, columns, ...(rows ? { rows } : {}) });
  return { stream, text: () => text };
}

const fanTicket = (over: Partial<QueueTicket>): QueueTicket =>
  ({ token: 'tok', concertId: 7, status: 'WAITING', position: 3, aheadCount: 2, etaSeconds: 40, enteredAt: new Date(2026, 11, 24, 13, 50), opensAt: null, activeUntil: null, pollAfterMs: 1000, paused: false, ...over }) as QueueTicket;

describe('the waiting room tells the fan why, and when to ask again', () => {
  const at = new Date(2026, 11, 24, 14, 0, 0);
  const ctxAt = (now: Date) => new Ctx({ ...memoryIo().io, now: () => now }, { user: '1' });

  it('a SOLD_OUT ticket says when asking again is worth it (its pollAfterMs: sooner, the server answers RATE_LIMITED) and why', () => {
    const t = fanTicket({ status: 'SOLD_OUT', position: null, aheadCount: 0, etaSeconds: null, pollAfterMs: 60_000 });
    const text = renderTicket(ctxAt(at), plain, t);
    expect(text).toContain('Concert 7 is sold out: no seat is available or held.');
    expect(text).toContain('if seats come back (a refund), the line reopens in order');
    expect(text).toContain('Check again after 14:01:00 (in about 1 min): concert queue status 7');
    // `queue join --wait` and `book` end with the same advice as their hint (exit 1, SOLD_OUT).
    const failure = soldOut(t, at);
    expect(failure.message).toBe('Concert 7 is sold out: no seat is available or held');
    expect(failure.hint).toContain('Check again after 14:01:00 (in about 1 min): concert queue status 7');
    expect(soldOut({ ...t, pollAfterMs: 30_000 }, at).hint).toContain('after 14:00:30 (in about 30 s)');
    // Asked too soon anyway: the hint says how long the server wants (details.retryAfterMs).
    const limited = Object.assign(new Error('Polling faster than pollAfterMs asks; retry in 29500 ms'), {
      name: 'TRPCClientError',
      data: { code: 'TOO_MANY_REQUESTS', appCode: 'RATE_LIMITED', details: { retryAfterMs: 29_500 } },
    });
    expect(describeError(limited, { concertId: 7 }).hint).toBe('Asked too soon: try again in 30 s');
  });

  // An outside review: cancelling a lapsed hold was told to "hold the seats again: concert hold
  // <scheduleId> <seat...>" (placeholders, and advice against what was asked), and cancelling a
  // paid reservation got no hint at all, where a refund is what gives it back.
  it('cancel and admin release: a lapsed hold is nothing to do, a paid one points to the refund', () => {
    const server = (code: string, appCode: string) => Object.assign(new Error(appCode), { name: 'TRPCClientError', data: { code, appCode } });
    const id = '0b9d6d1e-7a4f-4f3e-9a59-0d7c1f0e2a11';
    const lapsed = server('PRECONDITION_FAILED', 'HOLD_EXPIRED');
    const paid = server('CONFLICT', 'ALREADY_PAID');
    expect(describeError(lapsed, { command: 'cancel', reservationId: id }).hint).toBe('Nothing to cancel: the hold had lapsed and its seats are already free');
    expect(describeError(lapsed, { command: 'admin release', reservationId: id }).hint).toBe('Nothing to cancel: the hold had lapsed and its seats are already free');
    expect(describeError(paid, { command: 'cancel', reservationId: id }).hint).toBe(`A paid reservation is given back by a refund: concert refund ${id}`);
    expect(describeError(paid, { command: 'admin release', reservationId: id }).hint).toBe(`A paid reservation is given back by a refund: concert admin refund ${id}`);
    // Elsewhere the advice stands: a hold that lapsed before pay is held again, with what is known.
    expect(describeError(lapsed, { command: 'pay', scheduleId: 7, seats: [3, 4] }).hint).toBe('The hold lapsed; hold the seats again: concert hold 7 3 4');
    expect(describeError(paid, { command: 'pay' }).hint).toBeUndefined();
    expect(describeError(lapsed, { command: 'cancel' }).payload).toEqual({ code: 'PRECONDITION_FAILED', appCode: 'HOLD_EXPIRED', message: 'HOLD_EXPIRED' });
  });

  it("a server's refusal that names its field says it once, with the field (admin webhooks add, deliveries --cursor)", () => {
    const invalid = (message: string, issues: Array<{ path: string[]; message: string }>) =>
      Object.assign(new Error(message), { name: 'TRPCClientError', data: { code: 'BAD_REQUEST', appCode: 'INVALID_INPUT', issues } });
    // It read "A webhook url must not carry credentials: url: A webhook url must not carry credentials".
    expect(describeError(invalid('A webhook url must not carry credentials', [{ path: ['url'], message: 'A webhook url must not carry credentials' }])).payload.message).toBe(
      'url: A webhook url must not carry credentials',
    );
    // "Invalid input" alone still names every field.
    expect(describeError(invalid('Invalid input', [{ path: ['events'], message: 'Too small' }, { path: ['url'], message: 'must be an http:// or https:// URL' }])).payload.message).toBe(
      'Invalid input: events: Too small; url: must be an http:// or https:// URL',
    );
  });

  it('a charge over a limit says which limit, and what can still be charged', () => {
    const refused = (details: Record<string, unknown>) =>
      Object.assign(new Error('refused'), { name: 'TRPCClientError', data: { code: 'UNPROCESSABLE_CONTENT', appCode: 'CHARGE_LIMIT_EXCEEDED', details } });
    expect(describeError(refused({ monthlyLimit: 5_000_000, chargedThisMonth: 4_200_000 })).hint).toBe(
      'Charges this month total 4200000 of the 5000000 won allowed: at most 800000 more this month',
    );
    expect(describeError(refused({ maxPerTx: 1_000_000 })).hint).toBe('One charge may be at most 1000000 won: top up in parts (concert charge 1000000), then pay');
  });

  it('a line that stands still because no seat is free (all held, or not on sale yet) says so, in the ticket and in the live line at 80 columns', () => {
    const held = fanTicket({ etaSeconds: null });
    const text = renderTicket(ctxAt(at), plain, held);
    expect(text).toMatch(/eta +none for now: no seat is free \(all held, or booking not open yet\)/);
    expect(text).toContain('The line moves again when a seat frees up (a hold lapses or is released) or booking opens; your place is kept.');
    expect(text).not.toContain('unknown');
    // The live line: the reason first, shortened rather than cut at 80 columns (79 cells drawn).
    const colours = colorsFor({ isTTY: true }, {});
    const wide = stripAnsi(liveLine(colours, held, 3, 0, at));
    expect(wide).toBe('⠋ In line for concert 7 · position 3 · 2 ahead · no seat is free right now (all held, or booking not open yet); the line moves when one frees up');
    const at80 = liveLine(colours, held, 3, 0, at, 79);
    expect(displayWidth(at80)).toBeLessThanOrEqual(79);
    expect(stripAnsi(at80)).toBe('⠋ Position 3 · 2 ahead · no seat free now (held or not on sale yet)');
    const far = liveLine(colours, fanTicket({ etaSeconds: null, position: 12345, aheadCount: 12344 }), 12345, 0, at, 79);
    expect(displayWidth(far)).toBeLessThanOrEqual(79);
    expect(stripAnsi(far)).toContain('no seat free now (held or not on sale yet)');
    // Neither paused nor held: the ETA as before.
    expect(stripAnsi(liveLine(colours, fanTicket({}), 3, 0, at))).toContain('ETA ~40s');
    expect(stripAnsi(liveLine(colours, fanTicket({ etaSeconds: null, paused: true }), 3, 0, at))).toContain('sale paused by the organiser');
  });

  // Cut at the terminal's width, a paused line lost its reason: "sale paus…" at 60 columns, and
  // nothing of it below 50 (an outside acceptance sweep: `concert book` in a 60-column terminal).
  it('a paused line keeps saying so on a narrow terminal: shorter wordings, never the pause cut off', () => {
    const colours = colorsFor({ isTTY: true }, {});
    const paused = (position: number) => fanTicket({ etaSeconds: null, paused: true, position, aheadCount: position - 1 });
    expect(stripAnsi(liveLine(colours, paused(3), 3, 0, at, 79))).toBe('⠋ Position 3 · 2 ahead · sale paused by the organiser, your place is kept');
    expect(stripAnsi(liveLine(colours, paused(3), 3, 0, at, 59))).toBe('⠋ Position 3 · 2 ahead · sale paused, place kept');
    for (const width of [119, 99, 79, 59, 49, 39, 29, 19]) {
      for (const p of [3, 12345]) {
        const line = liveLine(colours, paused(p), p, 0, at, width);
        expect(displayWidth(line), `${width}`).toBeLessThanOrEqual(width);
        expect(stripAnsi(line), `${width}`).toMatch(/[Ss]ale paused/);
      }
    }
  });

  it('without a terminal, the line is printed again when it starts moving (the position alone has not changed)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-line-'));
    let err = '';
    const stderr = new Writable({ write: (chunk: Buffer, _enc, cb) => ((err += chunk.toString()), cb()) });
    const io: Io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr, env: { CONCERT_CONFIG_DIR: dir }, cwd: process.cwd(), signal: new AbortController().signal };
    const answers = [fanTicket({ pollAfterMs: 20 }), fanTicket({ status: 'ACTIVE', position: null, aheadCount: 0, etaSeconds: null })];
    let polls = 0;
    const client = { queue: { status: { query: async () => answers[Math.min(polls++, answers.length - 1)]! } } } as unknown as ApiClient;
    try {
      await waitInLine(new Ctx(io, { user: '1' }), fanTicket({ etaSeconds: null, pollAfterMs: 20 }), client);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(err.split('\n').filter(Boolean)).toEqual([
      'In line for concert 7 · position 3 · 2 ahead · no seat is free right now (all held, or booking not open yet); the line moves when one frees up',
      'In line for concert 7 · position 3 · 2 ahead · ETA ~40s  ░░░░░░░░░░░░░░░░░░░░ 0%',
    ]);
  });

  // `queue join --wait` that ended EXPIRED printed nothing on stdout (a script's `jq .status` read
  // an empty input), where one that ended SOLD_OUT printed the ticket, then the error.
  it('queue join --wait that ends EXPIRED prints the final ticket on stdout as SOLD_OUT does, then fails QUEUE_EXPIRED (exit 1), the advice once', async () => {
    const expiredTicket = fanTicket({ status: 'EXPIRED', position: null, aheadCount: 0, etaSeconds: null });
    const soldOutTicket = fanTicket({ status: 'SOLD_OUT', position: null, aheadCount: 0, etaSeconds: null, pollAfterMs: 60_000 });
    for (const [final, code] of [
      [expiredTicket, 'QUEUE_EXPIRED'],
      [soldOutTicket, 'SOLD_OUT'],
    ] as const) {
      for (const json of [true, false]) {
        const dir = mkdtempSync(path.join(tmpdir(), 'concert-line-'));
        const m = memoryIo({ CONCERT_CONFIG_DIR: dir });
        const ctx = new Ctx(m.io, { user: '1', json });
        const client = { queue: { enter: { mutate: async () => fanTicket({ pollAfterMs: 20 }) }, status: { query: async () => final } } };
        Object.defineProperty(ctx, 'client', { value: client });
        let failure: unknown;
        try {
          await queueJoinCommand(ctx, 7, { wait: true }).catch((err: unknown) => (failure = err));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        const { payload, exitCode, hint } = describeError(failure);
        expect(payload.code, `${final.status} json=${json}`).toBe(code);
        expect(exitCode).toBe(1);
        if (json) expect(JSON.parse(m.out())).toMatchObject({ concertId: 7, status: final.status, position: null });
        else {
          expect(m.out()).toMatch(new RegExp(`status\\s+${final.status}`));
          // The advice is the error's hint, not repeated under the ticket.
          expect(`${m.out()}\n${hint}`.match(/concert queue (join|status) 7/g), m.out()).toHaveLength(1);
        }
      }
    }
  });
});

describe('amounts of won on the command line', () => {
  it('a whole number too large is told so, not that it is not a whole number', () => {
    expect(() => parseWon('99999999999999999', { allowZero: true })).toThrow('the amount must be at most 9007199254740991 won, not "99999999999999999".');
    expect(() => parseWon('12.5')).toThrow('the amount must be a positive whole number of won, not "12.5".');
    expect(() => parseWon('0')).toThrow('positive whole number');
    expect(parseWon('₩1,000,000')).toBe(1_000_000);
  });

  // Separators were dropped wherever they stood: "1,5" charged 15 won and "10,00" 1,000.
  it('takes thousands separators only between groups of three digits', () => {
    for (const [text, n] of [['50000', 50_000], ['50,000', 50_000], ['₩50,000', 50_000], ['50000원', 50_000], ['50,000 원', 50_000], ['₩ 1,234,567', 1_234_567], ['1_000', 1000], ['1 000 000', 1_000_000], ['007', 7]] as const) {
      expect(parseWon(text), text).toBe(n);
    }
    for (const text of ['1,5', '10,00', '5,0000', '0,500', '000,001', '00 005', '1 5', '1,000,00', ',100', '100,', '1,000_000', '1__000', '12.5', '1e3', '']) {
      expect(() => parseWon(text), text).toThrow(`the amount must be a positive whole number of won, not "${text}".`);
    }
  });
});

describe('an empty --cursor', () => {
  // `history --cursor ''`, `admin concerts --cursor ''` (and waitlist, webhook deliveries) dropped
  // the empty cursor and printed the first page, where `reservations` and `concerts` sent it and the
  // server refused it INVALID_INPUT (exit 1): every paged command now sends it as given.
  it('goes to the server as given, from every paged command', async () => {
    const asked: Record<string, unknown> = {};
    const page = (name: string) => ({ query: async (input: unknown) => ((asked[name] = input), { items: [], entries: [], nextCursor: null }) });
    const client = {
      balance: { history: page('history') },
      waitlist: { mine: page('waitlist') },
      concerts: { list: page('concerts') },
      reservations: { mine: page('reservations') },
      admin: { concerts: { list: page('admin concerts') }, holds: { list: page('admin holds') }, webhooks: { deliveries: page('admin webhooks deliveries') } },
    };
    // A Ctx prints one document: one for each command.
    const ctx = () => Object.defineProperty(new Ctx(memoryIo().io, { user: '1', adminKey: 'k', json: true }), 'client', { value: client });
    const opts = { cursor: '' };
    await historyCommand(ctx(), opts);
    await waitlistListCommand(ctx(), opts);
    await concertsCommand(ctx(), opts);
    await reservationsCommand(ctx(), opts);
    await adminConcertsListCommand(ctx(), opts);
    await adminHoldsCommand(ctx(), opts);
    await adminWebhookDeliveriesCommand(ctx(), 3, opts);
    expect(Object.keys(asked).sort()).toEqual(['admin concerts', 'admin holds', 'admin webhooks deliveries', 'concerts', 'history', 'reservations', 'waitlist']);
    for (const [name, input] of Object.entries(asked)) expect(input, name).toMatchObject({ cursor: '' });
  });
});

describe('concert reservations', () => {
  // A refunded reservation's "when" read "paid <time>" beside REFUNDED: the time that matters is the refund's.
  it('says when each was paid, refunded or made', async () => {
    const base = { concertId: 1, concertTitle: 'Aurora', scheduleId: 2, startsAt: new Date(2026, 11, 20, 19, 0), seats: [{ seatNumber: 3, grade: 'R', price: 100_000 }], totalPrice: 100_000, source: 'QUEUE', holdExpiresAt: new Date(2026, 11, 1, 12, 5), createdAt: new Date(2026, 11, 1, 12, 0) };
    const items = [
      { ...base, reservationId: 'r-refunded', status: 'REFUNDED', paidAt: new Date(2026, 11, 1, 12, 1), refundedAt: new Date(2026, 11, 2, 9, 30) },
      { ...base, reservationId: 'r-paid', status: 'PAID', paidAt: new Date(2026, 11, 1, 12, 1), refundedAt: null },
      { ...base, reservationId: 'r-cancelled', status: 'CANCELLED', paidAt: null, refundedAt: null },
    ];
    const m = memoryIo({ NO_COLOR: '1' });
    const ctx = new Ctx(m.io, { user: '1' });
    Object.defineProperty(ctx, 'client', { value: { reservations: { mine: { query: async () => ({ items, nextCursor: null }) } } } });
    await reservationsCommand(ctx, {});
    const rows = Object.fromEntries(m.out().split('\n').flatMap((line) => { const id = /r-[a-z]+/.exec(line)?.[0]; return id ? [[id, line]] : []; }));
    expect(rows['r-refunded']).toMatch(/REFUNDED.*refunded 2026-12-02 09:30/);
    expect(rows['r-paid']).toMatch(/PAID.*paid 2026-12-01 12:01/);
    expect(rows['r-cancelled']).toMatch(/CANCELLED.*2026-12-01 12:00/);
  });
});

describe('concert admin watch fits the terminal', () => {
  const at = new Date(2026, 11, 2, 4, 45, 25);
  // Big numbers, a long title in wide (two-cell) characters, an opening time and holds about to lapse: every row at its widest.
  const snapshot = {
    at,
    concertId: 12345,
    title: '아이유 콘서트 HER · 서울 올림픽홀 — the winter tour, with a title that runs on and on',
    lapsingWithinSeconds: 60,
    line: {
      concertId: 12345, state: 'PRE_QUEUE', opensAt: new Date(at.getTime() + 3_723_000), waiting: 123_456, preQueued: 23_456, active: 1000, maxActive: 1000,
      activeTtlSeconds: 600, idleTimeoutSeconds: 60, paused: false, admittedTotal: 987_654, admittedLastMinute: 12_000, droppedIdleTotal: 12_345,
      etaBackSeconds: 3723, admissionsPerMinute: Array.from({ length: 30 }, (_, i) => i * 40),
    },
    shows: [
      { scheduleId: 1, startsAt: new Date(2026, 11, 9, 4, 0), available: 1000, held: 1000, sold: 1000, lapsingSoon: 1000, nextLapse: new Date(at.getTime() + 7_500_000) },
      { scheduleId: 2, startsAt: new Date(2026, 11, 10, 4, 0), available: 50, held: 0, sold: 0, lapsingSoon: 0, nextLapse: null },
    ],
  } as unknown as SaleWatch;

  it('every row of the screen fits 80 columns, and nothing on it is lost', async () => {
    const term = screenOf(80);
    const io: Io = { ...memoryIo().io, stdout: term.stream };
    const ctx = new Ctx(io, { adminKey: 'k' });
    Object.defineProperty(ctx, 'clientWithTimeout', { value: () => ({ admin: { watch: { query: async () => snapshot } } }) });
    expect(await adminWatchCommand(ctx, 12345, { count: 1 })).toEqual({ refreshes: 1 });
    const screen = stripAnsi(term.text().split('\x1b[H')[1]!).split('\n');
    console.log(`concert admin watch at 80 columns:\n${screen.join('\n')}`);
    expect(screen.length).toBeGreaterThan(12);
    for (const line of screen) expect(displayWidth(line), line).toBeLessThanOrEqual(80);
    const text = screen.join('\n');
    for (const piece of [
      'Concert 12345 · 아이유', '2026-12-02 04:45:25 · q quits', 'PRE-QUEUE (not open yet)', 'opens 2026-12-02 05:47:28 (in 1h 02m)',
      'waiting 123456', 'pre-queued 23456', 'active 1000/1000', 'dropped idle 12345', 'ETA at the back ~1h 02m', '1160/min now',
      '12000 in the last minute', '987654 in all', 'lapsing ≤60s', 'next lapse', 'in 2h 05m', 'all shows', '1000 held seat(s) lapse within 60 s',
    ]) expect(text).toContain(piece);
    expect(text).toMatch(/^ {11}2026-12-09 04:00 +1000 +1000 +1000 +1000 +in 2h 05m$/m);
  });

  it('follows a narrower or wider terminal: each row within its width, the line as one row when there is room', () => {
    for (const columns of [60, 100, 160]) {
      for (const line of stripAnsi(renderWatch(colorsFor({ isTTY: true }, {}), snapshot, { columns })).split('\n')) {
        expect(displayWidth(line), `${columns}: ${line}`).toBeLessThan(columns);
      }
    }
    expect(renderWatch(plain, snapshot, { columns: 160 })).toContain('waiting 123456 · pre-queued 23456 · active 1000/1000 · dropped idle 12345');
    // A line that admits by seats says so beside its ACTIVE count; the stats say which rule.
    const bySeats = { ...snapshot, line: { ...snapshot.line, admitBySeats: true } } as SaleWatch;
    expect(renderWatch(plain, bySeats, { columns: 160 })).toContain('active 1000/1000 by seats · dropped idle 12345');
    expect(renderQueueStats(plain, bySeats.line)).toMatch(/admits +while a seat is left for each fan \(--by-seats\)/);
    expect(renderQueueStats(plain, snapshot.line)).toMatch(/admits +whenever a slot is free/);
  });

  it('says a pre-queue (or a sold-out line) is also paused: the state alone hid the pause', () => {
    const paused = { ...snapshot, line: { ...snapshot.line, paused: true } } as SaleWatch;
    expect(renderWatch(plain, paused, { columns: 160 })).toContain('PRE-QUEUE (not open yet) · paused: nobody is admitted until resumed');
    expect(renderWatch(plain, { ...paused, line: { ...paused.line, state: 'SOLD_OUT' } }, { columns: 160 })).toContain('SOLD OUT · paused: nobody is admitted until resumed');
    expect(renderWatch(plain, { ...paused, line: { ...paused.line, state: 'PAUSED' } }, { columns: 160 })).not.toContain('paused: nobody');
    expect(renderWatch(plain, snapshot, { columns: 160 })).not.toContain('paused');
    expect(renderQueueStats(plain, paused.line)).toMatch(/state +PRE_QUEUE: not open yet; entrants are pre-queued · paused: nobody is admitted until resumed/);
    expect(renderQueueStats(plain, snapshot.line)).not.toContain('paused');
  });

  // After the opening an operator read "opens 2026-12-03 18:33:27" (stats) or "opens 18:33:27"
  // (watch) under an OPEN line, as if the line were still to open; a past opening time set with
  // --opens-at read "opens 2020-01-01 00:00:00 Wed".
  it('an opening time that has passed reads as opened, not as one to come', () => {
    const opened = { ...snapshot, line: { ...snapshot.line, state: 'OPEN', opensAt: new Date(snapshot.at.getTime() - 60_000) } } as SaleWatch;
    const watched = renderWatch(plain, opened, { columns: 160 });
    expect(watched).toContain(`opened ${localTime(opened.line.opensAt!, { seconds: true, weekday: false })}`);
    expect(watched).not.toMatch(/\bopens \d/);
    const stats = renderQueueStats(plain, opened.line, snapshot.at);
    expect(stats).toMatch(/opens +opened 20\d\d-/);
    expect(renderQueueStats(plain, snapshot.line, snapshot.at)).toMatch(/opens +20\d\d-\d\d-\d\d \d\d:\d\d:\d\d \w+ \(in 1h 02m\)/);
  });

  // A show whose booking had not opened read like any other (its seats available, no lapse), so an
  // operator could not tell from the view why nobody was holding them (an outside operator sweep).
  it('says when a show’s booking opens, while it is still to come', () => {
    const [first, second] = snapshot.shows;
    const later = { ...snapshot, shows: [{ ...first!, bookingOpensAt: new Date(at.getTime() - 60_000) }, { ...second!, bookingOpensAt: new Date(at.getTime() + 90 * 60_000) }] } as SaleWatch;
    const text = renderWatch(plain, later, { columns: 160 });
    expect(text).toMatch(/^ +2026-12-10 04:00 +50 +0 +0 +0 +booking opens in 1h 30m$/m);
    expect(text).toMatch(/^ +2026-12-09 04:00 +1000 +1000 +1000 +1000 +in 2h 05m$/m);
    for (const line of stripAnsi(renderWatch(colorsFor({ isTTY: true }, {}), later, { columns: 80 })).split('\n')) expect(displayWidth(line), line).toBeLessThanOrEqual(80);
  });

  it('an ALL_HELD line names both of its causes, held seats and a booking not open yet', () => {
    // A concert whose only show's booking had not opened read "every seat is held" beside 3 available, 0 held.
    const held = { ...snapshot, line: { ...snapshot.line, state: 'ALL_HELD' } } as SaleWatch;
    expect(renderWatch(plain, held, { columns: 160 })).toContain('ALL HELD (no seat available: held, or booking not open yet)');
    expect(renderQueueStats(plain, held.line)).toContain('ALL_HELD: no seat available (all held, or booking not open yet); admitting again when one frees up or booking opens');
  });

  // Shrunk in tmux from 100 to 45 columns, the screen showed the old frame's rows wrapped in two
  // until the next refresh (up to a second later, longer while the API is slow to answer).
  it('redraws the last frame at once when the terminal is resized, at its new width', async () => {
    const term = screenOf(100, 40);
    const interrupt = new AbortController();
    const ctx = new Ctx({ ...memoryIo().io, stdout: term.stream, signal: interrupt.signal }, { adminKey: 'k' });
    // The first answer at once, then none: only a resize can draw another frame.
    let asked = 0;
    const query = () => (asked++ === 0 ? Promise.resolve(snapshot) : new Promise<never>(() => {}));
    Object.defineProperty(ctx, 'clientWithTimeout', { value: () => ({ admin: { watch: { query } } }) });
    const watching = adminWatchCommand(ctx, 12345);
    const frames = () => term.text().split('\x1b[H').slice(1);
    await vi.waitFor(() => expect(frames()).toHaveLength(1));
    Object.assign(term.stream, { columns: 50 }).emit('resize');
    await vi.waitFor(() => expect(frames()).toHaveLength(2));
    for (const line of stripAnsi(frames()[1]!).split('\n')) expect(displayWidth(line), line).toBeLessThan(50);
    interrupt.abort();
    await expect(watching).rejects.toThrow('Interrupted');
    // Done watching, a resize draws nothing more.
    term.stream.emit('resize');
    expect(frames()).toHaveLength(2);
  });

  // `admin watch --json` timed each request from the start of the one before: the first answer
  // (a new connection, a cold server) took 0.5 s, and the first two lines came 0.5 s apart.
  it('--json lines come a second apart, after a slow first answer and around a latency blip', { timeout: 20_000 }, async () => {
    const m = memoryIo();
    const ctx = new Ctx(m.io, { adminKey: 'k', json: true });
    const latencies = [500, 20, 400, 20, 20, 20];
    let asked = 0;
    const query = () => new Promise<SaleWatch>((resolve) => setTimeout(() => resolve(snapshot), latencies[asked++]));
    Object.defineProperty(ctx, 'clientWithTimeout', { value: () => ({ admin: { watch: { query } } }) });
    const arrivals: number[] = [];
    m.io.stdout.on('data', () => arrivals.push(performance.now()));
    expect(await adminWatchCommand(ctx, 12345, { count: latencies.length })).toEqual({ refreshes: latencies.length });
    const gaps = arrivals.slice(1).map((t, i) => Math.round(t - arrivals[i]!));
    console.log(`watch --json gaps between lines (ms), latencies ${latencies.join(', ')}: ${gaps.join(', ')}`);
    expect(gaps).toHaveLength(latencies.length - 1);
    // Never much sooner than a second (timers only fire late); the blip itself makes one gap long.
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(900);
  });

  // An API that stops answering (a process stopped, a network that drops packets): q and a Ctrl-C
  // typed at the watch waited for the request in flight to time out, 28 s of a 30 s timeout in
  // tmux with the API process stopped (SIGSTOP), before the watch quit.
  it('q and Ctrl-C quit at once while a request is in flight, however long the API takes', async () => {
    for (const [key, outcome] of [['q', 'quit'], [KEY.ctrlC, 'interrupted']] as const) {
      const t = fakeTerminal({});
      const ctx = new Ctx(t.io, { adminKey: 'k' });
      let asked = 0;
      // The first answer at once; then an API that never answers (the call ends only if aborted).
      const query = (_input: unknown, opts?: { signal?: AbortSignal }) =>
        asked++ === 0
          ? Promise.resolve(snapshot)
          : new Promise<never>((_, reject) => opts?.signal?.addEventListener('abort', () => reject(new DOMException('Aborted', 'AbortError'))));
      Object.defineProperty(ctx, 'clientWithTimeout', { value: () => ({ admin: { watch: { query } } }) });
      let ended: string | undefined;
      adminWatchCommand(ctx, 12345).then(
        () => (ended = 'quit'),
        (err: Error) => (ended = err.name === 'Interrupted' ? 'interrupted' : err.message),
      );
      await vi.waitFor(() => expect(asked).toBe(2), { timeout: 10_000 });
      t.type(key);
      await vi.waitFor(() => expect(ended).toBe(outcome), { timeout: 5_000 });
    }
  });

  it('fits a terminal shorter than the frame, and one narrower than 21 columns: it never scrolls', async () => {
    // 80×10: the frame was 18 rows, each ending in a newline, so every redraw scrolled the screen
    // and the line's state was never on it; at 12 columns every row was drawn 20 cells wide and wrapped.
    for (const [columns, rows] of [[80, 10], [12, 40], [30, 3]] as const) {
      const term = screenOf(columns, rows);
      const ctx = new Ctx({ ...memoryIo().io, stdout: term.stream }, { adminKey: 'k' });
      Object.defineProperty(ctx, 'clientWithTimeout', { value: () => ({ admin: { watch: { query: async () => snapshot } } }) });
      await adminWatchCommand(ctx, 12345, { count: 2 });
      const frames = term.text().split('\x1b[H').slice(1);
      expect(frames).toHaveLength(2);
      for (const f of frames) {
        // The cursor ends below the last row: one newline a row, fewer than the terminal's rows.
        expect(f.split('\n').length - 1, `${columns}×${rows}`).toBeLessThan(rows);
        for (const line of stripAnsi(f).split('\n')) expect(displayWidth(line), `${columns}×${rows}: ${line}`).toBeLessThan(columns);
      }
    }
    const short = stripAnsi(renderWatch(colorsFor({ isTTY: true }, {}), snapshot, { columns: 80, rows: 9 })).split('\n');
    expect(short).toHaveLength(9);
    expect(short[2]).toContain('PRE-QUEUE (not open yet)');
    expect(short[8]).toMatch(/^… \d+ more rows: a taller terminal shows them$/);
    // A lost API's notice is what matters most then: it stays at the bottom.
    const lost = stripAnsi(renderWatch(plain, snapshot, { columns: 80, rows: 9, lost: { attempt: 2, delayMs: 2000, giveUpAt: new Date(at.getTime() + 30_000), error: { code: 'NETWORK_ERROR', appCode: null, message: 'Could not reach the API (ECONNREFUSED)' } } })).split('\n');
    expect(lost).toHaveLength(9);
    expect(lost[8]).toContain('retrying (2)');
    // At 80 columns the notice kept its reason and lost its end, when the watch gives up
    // (`…; gives up at 04:45:55` cut to `…(ECONNREFUSED));…`): the reason goes last now.
    expect(lost[8]).toMatch(/^Connection lost, retrying \(2\) in 2s; gives up at 04:45:55 \(Could not reach the/);
    expect(displayWidth(lost[8]!)).toBeLessThan(80);
  });
});

describe('help reads cleanly at 80 columns', () => {
  /** `concert`, then every command and group, as a user would ask for their help. */
  async function everyHelp(io: () => { io: Io; out: () => string }) {
    const { buildProgram } = await import('../src/program.ts');
    const program = buildProgram(memoryIo().io, { exitCode: 0, known: {} });
    const paths: string[][] = [[]];
    const walk = (cmd: typeof program, prefix: string[]) => {
      for (const sub of cmd.commands) {
        paths.push([...prefix, sub.name()]);
        walk(sub, [...prefix, sub.name()]);
      }
    };
    walk(program, []);
    const helps: Array<[string, string]> = [];
    for (const p of paths) {
      const m = io();
      expect(await run([...p, '--help'], m.io)).toBe(0);
      helps.push([`concert ${p.join(' ')}`.trim(), m.out()]);
    }
    return helps;
  }

  /**
   * Lines that a paragraph or an item's description continues on (the same column as the text
   * before them) must start with a word that would not have fitted on the line before: otherwise
   * the break was put there by hand, and a narrower wrap made it ragged.
   */
  function raggedBreaks(text: string, width: number): string[] {
    const lines = text.split('\n');
    const found: string[] = [];
    const indent = (l: string) => l.length - l.trimStart().length;
    const item = /^(\s*)(\S.*?\S|\S)\s{2,}(?=\S)/;
    for (let i = 1; i < lines.length; i++) {
      const [a, b] = [lines[i - 1]!, lines[i]!];
      if (!a.trim() || !b.trim() || /[.:!?\\{[]$/.test(a.trimEnd())) continue;
      // Where the text of line a starts: after an item's term, or its indent.
      const m = item.exec(a);
      const column = m ? m[0].length : indent(a);
      if (indent(b) !== column || item.test(b) || !/^[A-Za-z0-9(`]/.test(b.trimStart())) continue;
      const word = b.trimStart().split(/\s/)[0]!;
      if (displayWidth(a) + 1 + displayWidth(word) <= width) found.push(`${a}⏎${b}`);
    }
    return found;
  }

  it('no line of any help is wider than the terminal, and no paragraph breaks early', async () => {
    const atWidth = (columns: number) => () => {
      const m = memoryIo();
      const term = screenOf(columns);
      return { io: { ...m.io, stdout: term.stream }, out: term.text };
    };
    const helps = await everyHelp(atWidth(80));
    expect(helps.length).toBeGreaterThan(40);
    for (const [name, text] of helps) {
      for (const line of text.split('\n')) expect(displayWidth(line), `${name}: ${line}`).toBeLessThanOrEqual(80);
      expect(raggedBreaks(text, 80), name).toEqual([]);
    }
    // Output that is not a terminal follows $COLUMNS (80 without it); a wide terminal gets at most 100 columns.
    // (The examples are written by hand for 80 columns: narrower, only they may run past the edge.)
    for (const [name, text] of await everyHelp(() => memoryIo({ COLUMNS: '80' }))) {
      for (const line of text.split('\n')) expect(displayWidth(line), `${name}: ${line}`).toBeLessThanOrEqual(80);
      expect(raggedBreaks(text, 80), name).toEqual([]);
    }
    const narrow = await everyHelp(() => memoryIo({ COLUMNS: '64' }));
    for (const [name, text] of narrow) {
      for (const line of text.split('\n')) if (!/^ {2}([#$]| {4})/.test(line)) expect(displayWidth(line), `${name}: ${line}`).toBeLessThanOrEqual(64);
    }
    for (const [name, text] of await everyHelp(atWidth(200))) {
      for (const line of text.split('\n')) expect(displayWidth(line), `${name}: ${line}`).toBeLessThanOrEqual(100);
      expect(raggedBreaks(text, 100), name).toEqual([]);
    }
  });

  it('the command list is wrapped too (it was not: with " [options]" its terms left too little room)', async () => {
    const m = { ...memoryIo(), term: screenOf(80) };
    expect(await run(['--help'], { ...m.io, stdout: m.term.stream })).toBe(0);
    const text = m.term.text();
    expect(text).toMatch(/^ {2}hold <scheduleId> <seat\.\.\.> {2}Hold 1 to 4 seats of a show, all of them or none,\n {31}for a few minutes$/m);
    expect(text).toMatch(/^ {2}130 {2}interrupted with Ctrl-C$/m);
  });

  it('`concert hold --help` gives the hold time with its unit', async () => {
    const m = memoryIo();
    expect(await run(['hold', '--help'], m.io)).toBe(0);
    const text = m.out().replace(/\s+/g, ' ');
    expect(text).toContain('HOLD_TTL_SECONDS on the server, 300 seconds (5 minutes) by default');
    expect(text).not.toMatch(/\b5 by default/);
  });
});

describe('a reservation', () => {
  // A waitlist reservation read "source  waitlist offer (pay it without a queue token)" after it was
  // paid, refunded or had lapsed: advice to pay what could no longer be paid.
  it('from the waitlist says it can be paid without a queue token only while it is a hold', () => {
    const ctx = new Ctx(memoryIo().io, {});
    const base = {
      reservationId: '0b9d5a3e-6f1c-4c2a-9e7b-1d2f3a4b5c6d', concertId: 1, concertTitle: 'T', scheduleId: 2, startsAt: new Date(2027, 0, 1),
      seats: [{ seatNumber: 5, grade: 'R', price: 100_000 }], totalPrice: 100_000, source: 'WAITLIST' as const,
      holdExpiresAt: new Date(Date.now() + 60_000), createdAt: new Date(), paidAt: null, refundedAt: null,
    };
    expect(renderReservation(ctx, plain, { ...base, status: 'HELD' })).toContain('pay it without a queue token');
    for (const status of ['PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'] as const) {
      const text = renderReservation(ctx, plain, { ...base, status, ...(status === 'PAID' || status === 'REFUNDED' ? { paidAt: new Date() } : {}) });
      expect(text, status).toMatch(/source +waitlist offer/);
      expect(text, status).not.toContain('pay it');
    }
  });
});
