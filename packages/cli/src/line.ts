import type { ApiClient } from './client.ts';
import { type Ctx, sleep, withToken } from './context.ts';
import { CliFailure, Interrupted, retryAfterOf } from './errors.ts';
import { bar, clockTime, type Colors, displayWidth, duration, fitWidth, inAbout, localTime } from './format.ts';
import { Outage, type Retry, retryJson, retryText } from './retry.ts';
import type { QueueTicket } from './types.ts';

// The waiting line, drawn live while `queue join --wait` and `book` wait for their turn.

/**
 * The line has stopped because no seat is free (the line's state ALL_HELD: every seat held, or
 * the seats of a show whose booking has not opened yet): nobody is admitted until a hold lapses
 * or is released, or booking opens. The ticket carries no line state, but the server gives a
 * WAITING ticket no ETA only while nobody is being admitted, and a pause is flagged on its own.
 */
export const allHeld = (t: Pick<QueueTicket, 'status' | 'paused' | 'etaSeconds'>) => t.status === 'WAITING' && !t.paused && t.etaSeconds === null;

/**
 * The live line. `width` (the terminal's): where the line would not fit, a shorter wording is
 * chosen before anything is cut, so the reason for a stopped line stays readable at 80 columns.
 */
export function liveLine(c: Colors, t: QueueTicket, startPosition: number, frame: number, now = new Date(), width = Infinity): string {
  const spin = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[frame % 10]!;
  if (t.status === 'PRE_QUEUE') {
    const opensAt = t.opensAt ?? now;
    const left = opensAt.getTime() - now.getTime();
    // The countdown is what a pre-queued fan waits on: the shorter wordings keep it to the last.
    const opens = `opens ${left > 0 ? `in ${c.bold(duration(left))}` : c.bold('now')}`;
    const wordings = [
      `${c.cyan(spin)} Pre-queued for concert ${t.concertId} · ${opens} (${localTime(opensAt, { seconds: true, weekday: false })}) · places are drawn at random at the opening`,
      `${c.cyan(spin)} Pre-queued for concert ${t.concertId} · ${opens} (${localTime(opensAt, { seconds: true, weekday: false })})`,
      `${c.cyan(spin)} Pre-queued for concert ${t.concertId} · ${opens}`,
      `${c.cyan(spin)} Pre-queued · ${opens}`,
      `${c.cyan(spin)} ${opens}`,
    ];
    return wordings.find((w) => displayWidth(w) <= width) ?? wordings.at(-1)!;
  }
  const pos = t.position ?? 1;
  if (allHeld(t)) {
    // No progress to show: the line stands still until a seat comes back.
    const where = `position ${c.bold(String(pos))} · ${t.aheadCount} ahead`;
    const wordings = [
      `${c.cyan(spin)} In line for concert ${t.concertId} · ${where} · ${c.yellow('no seat is free right now (all held, or booking not open yet); the line moves when one frees up')}`,
      `${c.cyan(spin)} In line for concert ${t.concertId} · ${where} · ${c.yellow('no seat free (held or not on sale yet); moves when one frees up')}`,
      `${c.cyan(spin)} Position ${c.bold(String(pos))} · ${t.aheadCount} ahead · ${c.yellow('no seat free now (held or not on sale yet)')}`,
      `${c.cyan(spin)} Position ${c.bold(String(pos))} · ${c.yellow('no seat free now (held or not on sale yet)')}`,
      `${c.cyan(spin)} Position ${c.bold(String(pos))} · ${c.yellow('no seat free now')}`,
    ];
    return wordings.find((w) => displayWidth(w) <= width) ?? wordings.at(-1)!;
  }
  const progress = startPosition <= 1 ? 0 : (startPosition - pos) / (startPosition - 1);
  const progressBar = `${c.cyan(bar(progress))} ${Math.round(progress * 100)}%`;
  if (t.paused) {
    // The pause is why the line stands still: shorter wordings keep it rather than cut it off
    // (cut at 60 columns it read "sale paus…", and below 50 it was gone).
    const where = `position ${c.bold(String(pos))} · ${t.aheadCount} ahead`;
    const wordings = [
      `${c.cyan(spin)} In line for concert ${t.concertId} · ${where} · ${c.yellow('sale paused by the organiser, your place is kept')}  ${progressBar}`,
      `${c.cyan(spin)} In line for concert ${t.concertId} · ${where} · ${c.yellow('sale paused by the organiser, your place is kept')}`,
      `${c.cyan(spin)} Position ${c.bold(String(pos))} · ${t.aheadCount} ahead · ${c.yellow('sale paused by the organiser, your place is kept')}`,
      `${c.cyan(spin)} Position ${c.bold(String(pos))} · ${t.aheadCount} ahead · ${c.yellow('sale paused, place kept')}`,
      `${c.cyan(spin)} Position ${c.bold(String(pos))} · ${c.yellow('sale paused, place kept')}`,
      `${c.cyan(spin)} ${c.yellow('Sale paused, place kept')}`,
      `${c.cyan(spin)} ${c.yellow('Sale paused')}`,
    ];
    return wordings.find((w) => displayWidth(w) <= width) ?? wordings.at(-1)!;
  }
  const eta = t.etaSeconds === null ? 'ETA unknown' : `ETA ~${duration(t.etaSeconds * 1000)}`;
  return `${c.cyan(spin)} In line for concert ${t.concertId} · position ${c.bold(String(pos))} · ${t.aheadCount} ahead · ${eta}  ${progressBar}`;
}

/**
 * The live line while the API is away (a restart): the place is kept server-side as long as the
 * fan polls within the line's idle timeout, so the wait goes on and says so.
 */
export function lostLine(c: Colors, t: QueueTicket, lost: Retry, frame: number, width = Infinity): string {
  const spin = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[frame % 10]!;
  const retrying = c.yellow(`Connection lost, retrying (${lost.attempt})…`);
  const wordings = [
    `${c.cyan(spin)} ${retrying} · your place in line for concert ${t.concertId} is kept`,
    `${c.cyan(spin)} ${retrying} · your place is kept`,
    `${c.cyan(spin)} ${retrying}`,
    `${c.cyan(spin)} ${c.yellow(`Retrying (${lost.attempt})…`)}`,
  ];
  return wordings.find((w) => displayWidth(w) <= width) ?? wordings.at(-1)!;
}

/** Still in line: waiting for a turn, or pre-queued for the opening. */
export const inLine = (t: { status: string }) => t.status === 'WAITING' || t.status === 'PRE_QUEUE';

/**
 * What a fan told SOLD_OUT can do. The place is kept, and a refund reopens the line in its order
 * (API.md, the queue); but the server turns away a poll sooner than the ticket's pollAfterMs asks
 * (RATE_LIMITED), so the advice names when asking again is worth it. A concert with no show left
 * to come (every show cancelled or started) is SOLD_OUT too, and no refund brings its seats back:
 * it was told to keep checking for a line that could never reopen.
 */
export function soldOutAdvice(t: Pick<QueueTicket, 'concertId' | 'pollAfterMs'>, now: Date, noShowLeft: NoShowLeft = false): string {
  // A cancelled show is listed nowhere, --all included: there is nothing to send the fan to see.
  if (noShowLeft === 'cancelled') return 'Nothing more will go on sale for it.';
  if (noShowLeft) return `Nothing more will go on sale for it: see its shows with concert schedules ${t.concertId} --all`;
  const at = new Date(now.getTime() + t.pollAfterMs);
  return [
    'Your place is kept: if seats come back (a refund), the line reopens in order.',
    `Check again after ${clockTime(at)} (${inAbout(t.pollAfterMs)}): concert queue status ${t.concertId}`,
  ].join('\n');
}

/** Why the line has nothing left to sell, in a sentence. */
export function soldOutText(t: Pick<QueueTicket, 'concertId'>, noShowLeft: NoShowLeft = false): string {
  return noShowLeft ? `Concert ${t.concertId} has no show left to sell: every show was cancelled or has started` : `Concert ${t.concertId} is sold out: no seat is available or held`;
}

/** The line has nothing left to sell; the place is kept in case seats come back (unless no show is left). */
export function soldOut(t: Pick<QueueTicket, 'concertId' | 'pollAfterMs'>, now: Date, noShowLeft: NoShowLeft = false): CliFailure {
  return new CliFailure('SOLD_OUT', null, soldOutText(t, noShowLeft), soldOutAdvice(t, now, noShowLeft));
}

/** No show left to come: every show cancelled (none listed), or some started and the rest cancelled. */
export type NoShowLeft = false | 'cancelled' | 'started';

/** Whether a SOLD_OUT line's concert has no show left to come (asked once, when the line says SOLD_OUT; unknown reads as "has"). */
export async function noShowLeft(ctx: Ctx, t: Pick<QueueTicket, 'concertId' | 'status'>): Promise<NoShowLeft> {
  if (t.status !== 'SOLD_OUT') return false;
  try {
    const concert = await ctx.client.concerts.get.query({ concertId: t.concertId });
    const now = ctx.now();
    if (concert.schedules.length === 0) return 'cancelled';
    return concert.schedules.some((s) => s.startsAt > now) ? false : 'started';
  } catch {
    return false;
  }
}

/**
 * Polls `queue.status` at the server's `pollAfterMs` until the ticket is ACTIVE, EXPIRED or SOLD_OUT,
 * redrawing one line on stderr when it is a terminal (a countdown to the opening while pre-queued; a
 * line per change of position otherwise). Ctrl-C stops waiting and keeps the place: the token stays
 * in the session file for `queue status` or a later `--wait`. A lost API (a restart) is ridden
 * through: the wait goes on, saying so, and the poll is retried (Outage) for up to RIDE_THROUGH_MS.
 */
export async function waitInLine(ctx: Ctx, first: QueueTicket, client: ApiClient = ctx.client): Promise<QueueTicket> {
  let t = first;
  // The progress bar counts from the first place the fan was told (after the opening, for the pre-queued).
  let firstPosition: number | null = first.position;
  const startOf = (x: QueueTicket) => (firstPosition ??= x.position) ?? 1;
  let frame = 0;
  let last: string | null = null;
  // While the API is away (a restart), the last failure: the wait goes on, and says so.
  let lost: Retry | null = null;
  const outage = new Outage({
    hint: `Your place is kept until the line's idle timeout (60 s by default) passes without a poll: join again to keep it (concert queue join ${t.concertId} --wait)`,
  });
  const stderr = ctx.io.stderr;
  const draw = () => {
    const start = startOf(t);
    // One cell short of the width: a line that wraps (or sits in the last column) is not wholly
    // cleared by the next redraw, and the screen fills with copies of it.
    const width = (stderr.columns || 80) - 1;
    const state = `${t.status}:${t.position}:${t.paused}:${allHeld(t)}`;
    const line = lost ? lostLine(ctx.ce, t, lost, frame++, width) : liveLine(ctx.ce, t, start, frame++, ctx.now(), width);
    if (ctx.live) stderr.write(`\r\x1b[2K${fitWidth(line, width)}`);
    // The line without its spinner (the first word): cut as two characters, it left half of the
    // spinner's colour code behind when FORCE_COLOR coloured output that is not a terminal.
    else if (!ctx.json && state !== last) ctx.io.stderr.write(`${liveLine(ctx.ce, t, start, 0, ctx.now()).replace(/^\S+ /, '')}\n`);
    last = state;
  };
  const clear = () => ctx.live && stderr.write('\r\x1b[2K');
  const onResize = () => draw();
  if (ctx.live) stderr.on('resize', onResize);
  try {
    while (inLine(t)) {
      if (!lost) draw();
      // Redraw the spinner every quarter second while honouring the server's pace for polling
      // (after a failure, the retry's pause, which is never shorter than that pace).
      const due = Date.now() + (lost ? lost.delayMs : t.pollAfterMs);
      while (Date.now() < due) {
        await sleep(Math.min(250, Math.max(0, due - Date.now())), ctx.io.signal);
        if (ctx.live) draw();
      }
      try {
        t = await client.queue.status.query({}, withToken(t.token));
      } catch (err) {
        // Turned away as too soon: the fan looked at the same place just before, from elsewhere
        // (`concert queue status` in another terminal), and the wait ended RATE_LIMITED, exit 1.
        // The API answered and the place is not in doubt: ask again after a whole pollAfterMs.
        if (retryAfterOf(err) !== undefined) {
          lost = null;
          outage.over();
          continue;
        }
        // Transient: wait and ask again (the place is kept server-side); otherwise, or after
        // RIDE_THROUGH_MS of failures, failed() throws and the wait ends as it always has.
        lost = outage.failed(err, t.pollAfterMs);
        if (ctx.live) draw();
        else if (ctx.json) stderr.write(retryJson(lost));
        else stderr.write(`${retryText(lost)}; your place is kept\n`);
        // The next answer is printed again, even if the place has not moved: the API is back.
        last = null;
        continue;
      }
      lost = null;
      outage.over();
      ctx.rememberTicket(t);
    }
  } catch (err) {
    clear();
    if (ctx.io.signal.aborted || (err instanceof Error && err.name === 'AbortError')) {
      // Kept only while looked at: a place not polled for the line's idle timeout is dropped (a
      // fan told only "kept" lost it a second later under a 1 s timeout, seen from outside).
      ctx.note(
        `Stopped waiting; your place is kept while you look in: concert queue status ${t.concertId} (a place not looked at for the line's idle timeout, 60 s by default, is dropped; or leave: concert queue leave ${t.concertId})`,
      );
      throw new Interrupted();
    }
    throw err;
  } finally {
    if (ctx.live) stderr.off('resize', onResize);
  }
  clear();
  return t;
}
