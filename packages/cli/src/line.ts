import type { ApiClient } from './client.ts';
import { type Ctx, sleep, withToken } from './context.ts';
import { CliFailure, Interrupted } from './errors.ts';
import { bar, type Colors, duration, fitWidth, localTime } from './format.ts';
import type { QueueTicket } from './types.ts';

// The waiting line, drawn live while `queue join --wait` and `book` wait for their turn.

export function liveLine(c: Colors, t: QueueTicket, startPosition: number, frame: number, now = new Date()): string {
  const spin = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[frame % 10]!;
  if (t.status === 'PRE_QUEUE') {
    const opensAt = t.opensAt ?? now;
    const left = opensAt.getTime() - now.getTime();
    return `${c.cyan(spin)} Pre-queued for concert ${t.concertId} · opens ${left > 0 ? `in ${c.bold(duration(left))}` : c.bold('now')} (${localTime(opensAt, { seconds: true, weekday: false })}) · places are drawn at random at the opening`;
  }
  const pos = t.position ?? 1;
  const progress = startPosition <= 1 ? 0 : (startPosition - pos) / (startPosition - 1);
  const eta = t.paused ? c.yellow('sale paused by the organiser, your place is kept') : t.etaSeconds === null ? 'ETA unknown' : `ETA ~${duration(t.etaSeconds * 1000)}`;
  return `${c.cyan(spin)} In line for concert ${t.concertId} · position ${c.bold(String(pos))} · ${t.aheadCount} ahead · ${eta}  ${c.cyan(bar(progress))} ${Math.round(progress * 100)}%`;
}

/** Still in line: waiting for a turn, or pre-queued for the opening. */
export const inLine = (t: { status: string }) => t.status === 'WAITING' || t.status === 'PRE_QUEUE';

/** The line has nothing left to sell; the place is kept in case seats come back. */
export function soldOut(concertId: number): CliFailure {
  return new CliFailure(
    'SOLD_OUT',
    null,
    `Concert ${concertId} is sold out: no seat is available or held`,
    `Your place is kept: if seats come back (a cancellation or a refund) the line reopens in its order. Check with: concert queue status ${concertId}`,
  );
}

/**
 * Polls `queue.status` at the server's `pollAfterMs` until the ticket is ACTIVE, EXPIRED or SOLD_OUT,
 * redrawing one line on stderr when it is a terminal (a countdown to the opening while pre-queued; a
 * line per change of position otherwise). Ctrl-C stops waiting and keeps the place: the token stays
 * in the session file for `queue status` or a later `--wait`.
 */
export async function waitInLine(ctx: Ctx, first: QueueTicket, client: ApiClient = ctx.client): Promise<QueueTicket> {
  let t = first;
  // The progress bar counts from the first place the fan was told (after the opening, for the pre-queued).
  let firstPosition: number | null = first.position;
  const startOf = (x: QueueTicket) => (firstPosition ??= x.position) ?? 1;
  let frame = 0;
  let last: string | null = null;
  const stderr = ctx.io.stderr;
  const draw = () => {
    const start = startOf(t);
    // One cell short of the width: a line that wraps (or sits in the last column) is not wholly
    // cleared by the next redraw, and the screen fills with copies of it.
    if (ctx.live) stderr.write(`\r\x1b[2K${fitWidth(liveLine(ctx.ce, t, start, frame++, ctx.now()), (stderr.columns || 80) - 1)}`);
    else if (!ctx.json && `${t.status}:${t.position}:${t.paused}` !== last) ctx.io.stderr.write(`${liveLine(ctx.ce, t, start, 0, ctx.now()).slice(2)}\n`);
    last = `${t.status}:${t.position}:${t.paused}`;
  };
  const clear = () => ctx.live && stderr.write('\r\x1b[2K');
  const onResize = () => draw();
  if (ctx.live) stderr.on('resize', onResize);
  try {
    while (inLine(t)) {
      draw();
      // Redraw the spinner every quarter second while honouring the server's pace for polling.
      const due = Date.now() + t.pollAfterMs;
      while (Date.now() < due) {
        await sleep(Math.min(250, Math.max(0, due - Date.now())), ctx.io.signal);
        if (ctx.live) draw();
      }
      t = await client.queue.status.query({}, withToken(t.token));
      ctx.rememberTicket(t);
    }
  } catch (err) {
    clear();
    if (ctx.io.signal.aborted || (err instanceof Error && err.name === 'AbortError')) {
      ctx.note(`Stopped waiting; your place is kept. Check it with: concert queue status ${t.concertId} (or leave: concert queue leave ${t.concertId})`);
      throw new Interrupted();
    }
    throw err;
  } finally {
    if (ctx.live) stderr.off('resize', onResize);
  }
  clear();
  return t;
}
