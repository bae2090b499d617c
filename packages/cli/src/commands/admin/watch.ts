import type { Command } from 'commander';
import { count, id } from '../../args.ts';
import { act, man } from '../../command.ts';
import { type Ctx, sleep } from '../../context.ts';
import { Interrupted } from '../../errors.ts';
import { clockTime, type Colors, displayWidth, duration, fitWidth, localTime } from '../../format.ts';
import { Outage, type Retry, retryJson, retryText } from '../../retry.ts';
import type { SaleWatch } from '../../types.ts';
import { alsoPaused, opening } from './queue.ts';

export function register(admin: Command): void {
  man(
    admin
      .command('watch')
      .description(
        "A live view of a sale: the line (waiting, pre-queued, active, its state), admissions per minute as a sparkline, the ETA at the back of the line, seats available/held/sold per show and holds about to lapse. Redraws in place every second, at the terminal's width; q or Ctrl-C quits. With --json, one JSON line per second instead.",
      )
      .argument('<concertId>', 'the concert', id('concertId'))
      .option('--count <n>', 'stop after n refreshes', count('--count'))
      .action(act(adminWatchCommand)),
    [
      ['concert --admin-key $KEY admin watch 1', 'watch the sale of concert 1'],
      ["concert --admin-key $KEY --json admin watch 1 \\\n| jq -c '{state: .line.state, waiting: .line.waiting}'", 'a line a second for a script'],
    ],
    'A refresh with no answer 3 s after it was asked (an API stopped or swamped) turns the line under the frame into "No answer from the API for 5s — figures from 07:41:12", counted every second until the answer comes; with --json, one line a second on stderr: {"stale":{"noAnswerForMs","figuresFrom"}}. Each refresh gives up after 10 s. When the API stops answering after the first frame (a restart: refused, reset, 502/503/504, or that timeout), the last frame stays with a line saying so, and the call is retried after 1 s, 2 s, then every 4 s; about 30 s after the first request that failed was asked, the command exits 1 as before (NETWORK_ERROR). With --json, stdout gets no line for those seconds (every line is a snapshot; the gap shows in their "at") and each failed try is one line on stderr: {"retrying":{"attempt","inMs","giveUpAt","error"}}. Other errors (a bad admin key, an unknown concert) end it at once.',
  );
}

const REFRESH_MS = 1_000;

/**
 * How long one refresh may take before the watch gives up on it. A second's view has no use for
 * an answer 30 s late (the client's default): a request that hangs (the API process stopped, a
 * network dropping packets) is an outage from its start, and the ride-through gives up about
 * RIDE_THROUGH_MS after it, not 30 s later.
 */
export const WATCH_REQUEST_TIMEOUT_MS = 10_000;

/** A refresh this late (no answer since it was asked) makes the frame say its figures are stale. */
export const LATE_AFTER_MS = 3_000;

/** The figures on screen are old: nothing has answered for `noAnswerForMs`; they are the snapshot taken at `figuresFrom`. */
export interface Stale {
  noAnswerForMs: number;
  figuresFrom: Date;
  /** In an outage (a call already failed), when the watch gives up, and which try is waiting. */
  attempt?: number;
  giveUpAt?: Date;
}

/** The notice in words, for a frame's status line or a line of its own. */
export function staleText(s: Stale): string {
  const outage = s.giveUpAt ? `; gives up at ${clockTime(s.giveUpAt)} (try ${s.attempt})` : '; still waiting for it';
  return `No answer from the API for ${duration(s.noAnswerForMs)} — figures from ${clockTime(s.figuresFrom)}${outage}`;
}

/** The notice as one JSON line on stderr with --json: stdout keeps only snapshots. */
export function staleJson(s: Stale): string {
  return `${JSON.stringify({ stale: { noAnswerForMs: s.noAnswerForMs, figuresFrom: s.figuresFrom.toISOString(), ...(s.giveUpAt ? { attempt: s.attempt, giveUpAt: s.giveUpAt.toISOString() } : {}) } })}\n`;
}

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
  // The screen is cleared (and the cursor hidden) with the first frame, not before the first
  // answer: a watch that fails at once (an unknown concert, the API not started) leaves the
  // screen as it was, with the error under it.
  let cleared = false;
  // The terminal's width is read at every frame, so a resized terminal gets the next frame at its size.
  // So is its height: every row of the frame ends in a newline, so a frame of as many rows as the
  // terminal scrolled it by one at each redraw (the top rows gone, copies piling up above).
  // A resized terminal gets the frame on screen again at once, at its new size (it showed the old
  // frame's rows wrapped until the next answer).
  let drawn: [SaleWatch, Notice?] | undefined;
  const frame = (snapshot: SaleWatch, notice: Notice = {}) => {
    drawn = [snapshot, notice];
    const clear = cleared ? '' : '\x1b[?25l\x1b[2J';
    cleared = true;
    stdout.write(
      `${clear}\x1b[H${renderWatch(ctx.c, snapshot, { columns: stdout.columns || 80, ...(stdout.rows ? { rows: stdout.rows - 1 } : {}), ...notice }).replace(/\n/g, '\x1b[K\n')}\x1b[K\n\x1b[J`,
    );
  };
  const onResize = () => drawn && frame(...drawn);
  if (screen) stdout.on('resize', onResize);
  const client = ctx.clientWithTimeout(WATCH_REQUEST_TIMEOUT_MS);
  const outage = new Outage();
  let last: SaleWatch | undefined;
  let answeredAt = 0;
  // The outage's last failure, while it lasts.
  let lost: Retry | undefined;
  let refreshes = 0;
  const cadence = new Cadence(REFRESH_MS);
  try {
    while (!quit.signal.aborted && (opts.count === undefined || refreshes < opts.count)) {
      const started = Date.now();
      let snapshot: SaleWatch;
      // A refresh that does not come (an API stopped or swamped): from LATE_AFTER_MS on, the frame
      // says every second that its figures are stale, while the request goes on waiting. Without
      // it the frame stood still and said nothing for the whole timeout.
      let lateTimer: NodeJS.Timeout | undefined;
      let toldLate = false;
      const late = () => {
        if (last) {
          const stale: Stale = { noAnswerForMs: Date.now() - answeredAt, figuresFrom: last.at, ...(lost ? { attempt: lost.attempt + 1, giveUpAt: lost.giveUpAt } : {}) };
          if (ctx.json) ctx.io.stderr.write(staleJson(stale));
          else if (screen) frame(last, { stale });
          // A log gets it once, not a line a second.
          else if (!toldLate) stdout.write(`${ctx.c.yellow(staleText(stale))}\n\n`);
          toldLate = true;
        }
        lateTimer = setTimeout(late, REFRESH_MS);
      };
      lateTimer = setTimeout(late, LATE_AFTER_MS);
      try {
        // q or a Ctrl-C key ends the request in flight too: an API that stopped answering held the
        // quit until the request timed out.
        snapshot = await client.admin.watch.query({ concertId }, { signal: quit.signal });
        outage.over();
        lost = undefined;
      } catch (err) {
        // A view that has been running rides through a restart of the API (the last frame stays,
        // saying so); one that never had an answer fails at once, as any command does (a wrong
        // --api, an API not started). Non-transient errors are thrown by failed() at once.
        if (quit.signal.aborted || !last) throw err;
        lost = outage.failed(err, 0, started);
        cadence.gap();
        if (ctx.json) ctx.io.stderr.write(retryJson(lost));
        else if (screen) frame(last, { lost });
        else stdout.write(`${ctx.c.yellow(retryText(lost))}\n\n`);
        await sleep(lost.delayMs, quit.signal).catch(() => {});
        continue;
      } finally {
        clearTimeout(lateTimer);
      }
      last = snapshot;
      answeredAt = Date.now();
      refreshes++;
      if (ctx.json) stdout.write(`${JSON.stringify(snapshot)}\n`);
      else if (screen) frame(snapshot);
      else stdout.write(`${renderWatch(ctx.c, snapshot, { columns: 80 })}\n\n`);
      if (opts.count !== undefined && refreshes >= opts.count) break;
      await sleep(Math.max(0, cadence.next(started, answeredAt) - Date.now()), quit.signal).catch(() => {});
    }
  } catch (err) {
    // Ctrl-C or q while a request is in flight is a quit, not an error.
    if (!quit.signal.aborted) throw err;
  } finally {
    ctx.io.signal.removeEventListener('abort', interrupt);
    if (screen) stdout.off('resize', onResize);
    if (raw) {
      stdin.off('data', keys);
      (stdin as unknown as { setRawMode(on: boolean): void }).setRawMode(false);
      stdin.pause();
    }
    if (cleared) stdout.write('\x1b[?25h');
  }
  if (interrupted) throw new Interrupted();
  return { refreshes };
}

/**
 * When to ask for the next snapshot so that answers come a period apart, not just requests. The
 * first request after a start or an outage is slow (a new connection, a cold server: seen at
 * 0.5 s), and timing the next one from its start put the first two lines 0.5 s apart. So the
 * next request is asked a period after this answer, less the latency a request usually has (the
 * median of the last few, the slow first one left out), and never sooner than a period after this
 * request was asked. A late answer (a latency blip) then does not pull the next line in early.
 */
export class Cadence {
  private readonly latencies: number[] = [];
  private fresh = true;
  constructor(private readonly periodMs: number) {}

  /** A request failed: the next answer comes over a new connection. */
  gap(): void {
    this.fresh = true;
  }

  /** The instant (ms) to ask next, given when this request was asked and answered. */
  next(askedAt: number, answeredAt: number): number {
    if (this.fresh) this.fresh = false;
    else {
      this.latencies.push(answeredAt - askedAt);
      if (this.latencies.length > 5) this.latencies.shift();
    }
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const usual = sorted.length === 0 ? 0 : Math.min(sorted[(sorted.length - 1) >> 1]!, this.periodMs);
    return Math.max(askedAt + this.periodMs, answeredAt + this.periodMs - usual);
  }
}

/** What a frame says under the figures: a refresh that is late, or the last failure of an outage. */
export interface Notice {
  stale?: Stale;
  lost?: Retry;
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
  ALL_HELD: 'ALL HELD (no seat available: held, or booking not open yet)',
  SOLD_OUT: 'SOLD OUT',
};

/** The column where every row's values start, under its label. */
const INDENT = 11;

/** The values' column with nothing under a label. */
const UNDER = ' '.repeat(INDENT);

const label = (text: string) => text + ' '.repeat(Math.max(1, INDENT - displayWidth(text)));

/**
 * `head` (a label) then `parts` joined by ` · `; where a row would pass `width`, the next part starts
 * a row of its own under the values' column, so nothing is lost on a narrow terminal.
 */
function flow(head: string, parts: string[], width: number): string[] {
  const rows: string[] = [];
  let row = '';
  for (const part of parts) {
    if (row && INDENT + displayWidth(`${row} · ${part}`) > width) {
      rows.push(row);
      row = part;
    } else row = row ? `${row} · ${part}` : part;
  }
  rows.push(row);
  return rows.map((r, i) => fitWidth(`${i === 0 ? label(head) : UNDER}${r}`, width));
}

/**
 * One screen of the sale, every row within `columns - 1` cells: a row that reaches the last column
 * leaves the cursor waiting to wrap, and the clear-to-end-of-line after it would erase that cell.
 * Rows that do not fit are reflowed (the line's numbers) or, as a last resort, cut with `…`. With
 * `rows`, at most that many rows: the bottom ones give way to a row saying how many are hidden
 * (a lost API's notice stays).
 */
export function renderWatch(c: Colors, w: SaleWatch, opts: { columns: number; rows?: number } & Notice): string {
  // A row wider than the terminal wraps, and the frame scrolls: at most one cell short of it, however narrow.
  const width = Math.max(1, opts.columns - 1);
  const l = w.line;
  const now = w.at;
  const stateColor = l.state === 'OPEN' ? c.green : l.state === 'SOLD_OUT' ? c.red : c.yellow;
  const perMinute = l.admissionsPerMinute;
  const current = perMinute[perMinute.length - 1] ?? 0;
  // Room for the sparkline and its `120/min now` beside it.
  const bars = Math.max(10, Math.min(perMinute.length, width - INDENT - 13));
  const clock = c.dim(`   ${localTime(now, { seconds: true, weekday: false })} · q quits`);
  const title = fitWidth(`${c.bold(`Concert ${w.concertId}`)} · ${w.title}`, Math.max(20, width - displayWidth(clock)));
  const opens = l.opensAt ? [opening(l.opensAt, now, { weekday: false, opens: true })] : [];
  const lines = [
    fitWidth(title + clock, width),
    '',
    ...flow(c.bold('Line'), [`${stateColor(STATE_TEXT[l.state])}${alsoPaused(c, l)}`, ...opens], width),
    ...flow(
      '',
      [
        `waiting ${c.bold(String(l.waiting))}`,
        `pre-queued ${c.bold(String(l.preQueued))}`,
        `active ${c.bold(`${l.active}/${l.maxActive}`)}${l.admitBySeats ? ' by seats' : ''}`,
        `dropped idle ${l.droppedIdleTotal}`,
      ],
      width,
    ),
    ...flow('', [`ETA at the back ${l.etaBackSeconds === null ? c.dim('–') : c.bold(`~${duration(l.etaBackSeconds * 1000)}`)}`], width),
    ...flow(
      c.bold('Admitted'),
      [`${c.cyan(sparkline(perMinute.slice(-bars)))} ${Math.round(current)}/min now`, `${l.admittedLastMinute} in the last minute`, `${l.admittedTotal} in all`],
      width,
    ),
    fitWidth(c.dim(`${UNDER}(per minute, ${bars * 10} s back, 10 s a bar)`), width),
    '',
  ];
  // starts 16, available 11, held 7, sold 7, lapsing 14, then the next lapse: 78 cells with the label.
  const row = (starts: string, a: string, h: string, s: string, lapsing: string, lapse: string, paint: (x: string) => string = (x) => x) =>
    `${starts.padEnd(16)}${a.padStart(11)}${h.padStart(7)}${s.padStart(7)}${paint(lapsing.padStart(14))}${lapse ? `  ${lapse}` : ''}`;
  lines.push(fitWidth(c.bold(`${label('Shows')}${row('starts', 'available', 'held', 'sold', `lapsing ≤${w.lapsingWithinSeconds}s`, 'next lapse')}`), width));
  if (w.shows.length === 0) lines.push(fitWidth(c.dim(`${UNDER}no show to come`), width));
  for (const s of w.shows) {
    // Before its booking opens a show's seats cannot be held: say when, where its next lapse goes.
    const lapse = s.nextLapse
      ? `in ${duration(s.nextLapse.getTime() - now.getTime())}`
      : s.bookingOpensAt > now
        ? `booking opens in ${duration(s.bookingOpensAt.getTime() - now.getTime())}`
        : '–';
    const paint = s.lapsingSoon > 0 ? c.yellow : undefined;
    lines.push(fitWidth(`${UNDER}${row(localTime(s.startsAt, { weekday: false }), String(s.available), String(s.held), String(s.sold), String(s.lapsingSoon), lapse, paint)}`, width));
  }
  const totals = w.shows.reduce((t, s) => ({ a: t.a + s.available, h: t.h + s.held, s: t.s + s.sold, l: t.l + s.lapsingSoon }), { a: 0, h: 0, s: 0, l: 0 });
  if (w.shows.length > 1) lines.push(fitWidth(c.dim(`${UNDER}${row('all shows', String(totals.a), String(totals.h), String(totals.s), String(totals.l), '')}`), width));
  if (totals.l > 0) lines.push('', fitWidth(c.yellow(`${totals.l} held seat(s) lapse within ${w.lapsingWithinSeconds} s and come back on sale.`), width));
  // The API is away: these are the numbers of the last answer (the clock above says when).
  // When it gives up comes before the reason: a row too wide for the terminal is cut at its end, and
  // at 80 columns retryText's order lost the time (`… (ECONNREFUSED));…`).
  // A refresh that is late says so before the last failure's pause does: it is what is happening now.
  const lost = opts.lost;
  const notice = opts.stale
    ? ['', fitWidth(c.yellow(staleText(opts.stale)), width)]
    : lost
      ? ['', fitWidth(c.yellow(`Connection lost, retrying (${lost.attempt}) in ${duration(lost.delayMs)}; gives up at ${clockTime(lost.giveUpAt)} (${lost.error.message})`), width)]
      : [];
  const room = Math.max(1, (opts.rows ?? Infinity) - notice.length);
  const shown = lines.length <= room ? lines : [...lines.slice(0, room - 1), fitWidth(c.dim(`… ${lines.length - room + 1} more rows: a taller terminal shows them`), width)];
  return [...shown, ...notice].join('\n');
}
