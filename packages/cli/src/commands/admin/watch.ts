import type { Command } from 'commander';
import { count, id } from '../../args.ts';
import { act, man } from '../../command.ts';
import { type Ctx, sleep } from '../../context.ts';
import { Interrupted } from '../../errors.ts';
import { type Colors, duration, localTime } from '../../format.ts';
import type { SaleWatch } from '../../types.ts';

export function register(admin: Command): void {
  man(
    admin
      .command('watch')
      .description(
        "A live view of a sale: the line (waiting, pre-queued, active, its state), admissions per minute as a\nsparkline, the ETA at the back of the line, seats available/held/sold per show and holds about to lapse.\nRedraws in place every second; q or Ctrl-C quits. With --json, one JSON line per second instead.",
      )
      .argument('<concertId>', 'the concert', id('concertId'))
      .option('--count <n>', 'stop after n refreshes', count('--count'))
      .action(act(adminWatchCommand)),
    [
      ['concert --admin-key $KEY admin watch 1', 'watch the sale of concert 1'],
      ["concert --admin-key $KEY --json admin watch 1 | jq -c '{state: .line.state, waiting: .line.waiting}'", 'a line a second for a script'],
    ],
  );
}

const REFRESH_MS = 1_000;

/**
 * `concert admin watch <concertId>`: polls admin.watch once a second. On a terminal the screen is
 * redrawn in place (cursor home, each line cleared to its end, the rest below cleared: no blank
 * frame, so no flicker) and q or Ctrl-C quits; with --json, each snapshot is one line on stdout.
 */
export async function adminWatchCommand(ctx: Ctx, concertId: number, opts: { count?: number } = {}): Promise<{ refreshes: number }> {
  ctx.requireAdmin();
  ctx.know({ concertId });
  const { stdin, stdout } = ctx.io;
  const screen = !ctx.json && stdout.isTTY === true;
  const quit = new AbortController();
  // q is a quit (exit 0); Ctrl-C, as a signal or as a key in raw mode, is an interrupt (exit 130).
  let interrupted = false;
  const interrupt = () => {
    interrupted = true;
    quit.abort();
  };
  ctx.io.signal.addEventListener('abort', interrupt, { once: true });
  const keys = (data: Buffer | string) => {
    const s = data.toString();
    if (s.includes('\x03')) interrupt();
    else if (s.includes('q') || s.includes('Q')) quit.abort();
  };
  const raw = stdin.isTTY === true && typeof (stdin as { setRawMode?: unknown }).setRawMode === 'function';
  if (raw) {
    (stdin as unknown as { setRawMode(on: boolean): void }).setRawMode(true);
    stdin.on('data', keys);
    stdin.resume();
  }
  if (screen) stdout.write('\x1b[?25l\x1b[2J');
  let refreshes = 0;
  try {
    while (!quit.signal.aborted && (opts.count === undefined || refreshes < opts.count)) {
      const started = Date.now();
      const snapshot = await ctx.client.admin.watch.query({ concertId });
      refreshes++;
      if (ctx.json) stdout.write(`${JSON.stringify(snapshot)}\n`);
      else if (screen) stdout.write(`\x1b[H${renderWatch(ctx.c, snapshot, { columns: stdout.columns ?? 100 }).replace(/\n/g, '\x1b[K\n')}\x1b[K\n\x1b[J`);
      else stdout.write(`${renderWatch(ctx.c, snapshot, { columns: 100 })}\n\n`);
      if (opts.count !== undefined && refreshes >= opts.count) break;
      await sleep(Math.max(0, REFRESH_MS - (Date.now() - started)), quit.signal).catch(() => {});
    }
  } catch (err) {
    // Ctrl-C or q while a request is in flight is a quit, not an error.
    if (!quit.signal.aborted) throw err;
  } finally {
    ctx.io.signal.removeEventListener('abort', interrupt);
    if (raw) {
      stdin.off('data', keys);
      (stdin as unknown as { setRawMode(on: boolean): void }).setRawMode(false);
      stdin.pause();
    }
    if (screen) stdout.write('\x1b[?25h');
  }
  if (interrupted) throw new Interrupted();
  return { refreshes };
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** Values as a row of bar glyphs scaled to the largest (all lowest when nothing happened). */
export function sparkline(values: number[]): string {
  const max = Math.max(0, ...values);
  return values.map((v) => SPARKS[max === 0 ? 0 : Math.min(7, Math.round((v / max) * 7))]).join('');
}

const STATE_TEXT: Record<SaleWatch['line']['state'], string> = {
  PRE_QUEUE: 'PRE-QUEUE (not open yet)',
  OPEN: 'OPEN (admitting)',
  PAUSED: 'PAUSED by an operator',
  ALL_HELD: 'ALL HELD (waiting for a seat to free up)',
  SOLD_OUT: 'SOLD OUT',
};

export function renderWatch(c: Colors, w: SaleWatch, opts: { columns: number }): string {
  const l = w.line;
  const now = w.at;
  const stateColor = l.state === 'OPEN' ? c.green : l.state === 'SOLD_OUT' ? c.red : c.yellow;
  const perMinute = l.admissionsPerMinute;
  const current = perMinute[perMinute.length - 1] ?? 0;
  const width = Math.max(10, Math.min(perMinute.length, opts.columns - 40));
  const lines = [
    `${c.bold(`Concert ${w.concertId}`)} · ${w.title}`.slice(0, Math.max(20, opts.columns - 30)) + c.dim(`   ${localTime(now, { seconds: true, weekday: false })} · q quits`),
    '',
    `${c.bold('Line')}       ${stateColor(STATE_TEXT[l.state])}${l.opensAt ? ` · opens ${localTime(l.opensAt, { seconds: true, weekday: false })}${l.opensAt > now ? ` (in ${duration(l.opensAt.getTime() - now.getTime())})` : ''}` : ''}`,
    `           waiting ${c.bold(String(l.waiting))} · pre-queued ${c.bold(String(l.preQueued))} · active ${c.bold(`${l.active}/${l.maxActive}`)} · dropped idle ${l.droppedIdleTotal}`,
    `           ETA at the back ${l.etaBackSeconds === null ? c.dim('–') : c.bold(`~${duration(l.etaBackSeconds * 1000)}`)}`,
    `${c.bold('Admitted')}   ${c.cyan(sparkline(perMinute.slice(-width)))} ${Math.round(current)}/min now · ${l.admittedLastMinute} in the last minute · ${l.admittedTotal} in all`,
    c.dim(`           (per minute, ${width * 10} s back, 10 s a bar)`),
    '',
    c.bold('Shows      starts             available   held   sold   lapsing ≤60s   next lapse'),
  ];
  if (w.shows.length === 0) lines.push(c.dim('           no show to come'));
  for (const s of w.shows) {
    const lapse = s.nextLapse ? `in ${duration(s.nextLapse.getTime() - now.getTime())}` : '–';
    lines.push(
      `           ${localTime(s.startsAt, { weekday: false }).padEnd(18)} ${String(s.available).padStart(9)} ${String(s.held).padStart(6)} ${String(s.sold).padStart(6)} ${(s.lapsingSoon > 0 ? c.yellow(String(s.lapsingSoon).padStart(14)) : String(s.lapsingSoon).padStart(14))}   ${lapse}`,
    );
  }
  const totals = w.shows.reduce((t, s) => ({ a: t.a + s.available, h: t.h + s.held, s: t.s + s.sold, l: t.l + s.lapsingSoon }), { a: 0, h: 0, s: 0, l: 0 });
  if (w.shows.length > 1) lines.push(c.dim(`           ${'all shows'.padEnd(18)} ${String(totals.a).padStart(9)} ${String(totals.h).padStart(6)} ${String(totals.s).padStart(6)} ${String(totals.l).padStart(14)}`));
  if (totals.l > 0) lines.push('', c.yellow(`${totals.l} held seat(s) lapse within ${w.lapsingWithinSeconds} s and come back on sale.`));
  return lines.join('\n');
}
