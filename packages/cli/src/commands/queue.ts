import { type ApiClient, withToken } from '../client.ts';
import { type Ctx, sleep } from '../context.ts';
import { CliFailure, Interrupted, UsageError } from '../errors.ts';
import { bar, type Colors, duration, fields, localTime, statusColor, timeLeft } from '../format.ts';
import type { QueueTicket } from '../types.ts';

/** `concert queue join <concertId> [--wait]`: take a place in the waiting room; the token goes to the session file. */
export async function queueJoinCommand(ctx: Ctx, concertId: number, opts: { wait?: boolean } = {}): Promise<QueueTicket> {
  ctx.requireUser();
  let ticket = await ctx.client.queue.enter.mutate({ concertId });
  ctx.rememberTicket(ticket);
  if (opts.wait && ticket.status === 'WAITING') ticket = await waitInLine(ctx, ticket);
  if (ticket.status === 'EXPIRED') throw expired(concertId);
  return ctx.print(ticket, (c) => renderTicket(ctx, c, ticket));
}

/** `concert queue status <concertId>`: where the remembered token stands. */
export async function queueStatusCommand(ctx: Ctx, concertId: number): Promise<QueueTicket> {
  const token = savedToken(ctx, concertId);
  const ticket = await ctx.client.queue.status.query({}, withToken(token));
  ctx.rememberTicket(ticket);
  return ctx.print(ticket, (c) => renderTicket(ctx, c, ticket));
}

/** `concert queue leave <concertId>`: give up the place (or the ACTIVE slot) so the next in line gets it. */
export async function queueLeaveCommand(ctx: Ctx, concertId: number): Promise<{ left: true; concertId: number }> {
  const token = savedToken(ctx, concertId);
  await ctx.client.queue.leave.mutate({}, withToken(token));
  ctx.forgetTicket(concertId);
  return ctx.print({ left: true as const, concertId }, () => `Left the waiting room of concert ${concertId}.`);
}

function savedToken(ctx: Ctx, concertId: number): string {
  const token = ctx.tokenFor(concertId);
  if (!token) throw new UsageError(`No queue token saved for concert ${concertId} and this user`, `Join first: concert queue join ${concertId}`);
  return token;
}

function expired(concertId: number): CliFailure {
  return new CliFailure('QUEUE_EXPIRED', 'TOKEN_EXPIRED', `Your place in the waiting room of concert ${concertId} expired`, `Join again: concert queue join ${concertId} --wait`);
}

export function renderTicket(ctx: Ctx, c: Colors, t: QueueTicket): string {
  const now = ctx.now();
  const rows: Array<[string, string]> = [
    ['concert', String(t.concertId)],
    ['status', statusColor(c, t.status)],
  ];
  if (t.status === 'WAITING') {
    rows.push(['position', `${t.position} (${t.aheadCount} ahead)`]);
    rows.push(['eta', t.etaSeconds === null ? 'unknown (nobody admitted lately)' : `about ${duration(t.etaSeconds * 1000)}`]);
  }
  if (t.activeUntil) rows.push(['active until', `${localTime(t.activeUntil, { seconds: true })} (${timeLeft(t.activeUntil, now)})`]);
  rows.push(['entered', localTime(t.enteredAt, { seconds: true })]);
  const next =
    t.status === 'ACTIVE'
      ? c.green(`You're in. Pick a show: concert schedules ${t.concertId}`)
      : t.status === 'WAITING'
        ? `Wait for your turn: concert queue join ${t.concertId} --wait`
        : `Join again: concert queue join ${t.concertId}`;
  return `${fields(c, rows)}\n${next}`;
}

export function liveLine(c: Colors, t: QueueTicket, startPosition: number, frame: number): string {
  const spin = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[frame % 10]!;
  const pos = t.position ?? 1;
  const progress = startPosition <= 1 ? 0 : (startPosition - pos) / (startPosition - 1);
  const eta = t.etaSeconds === null ? 'ETA unknown' : `ETA ~${duration(t.etaSeconds * 1000)}`;
  return `${c.cyan(spin)} In line for concert ${t.concertId} · position ${c.bold(String(pos))} · ${t.aheadCount} ahead · ${eta}  ${c.cyan(bar(progress))} ${Math.round(progress * 100)}%`;
}

/**
 * Polls `queue.status` at the server's `pollAfterMs` until the ticket is ACTIVE or EXPIRED, redrawing one
 * line on stderr when it is a terminal (a line per change of position otherwise). Ctrl-C stops waiting
 * and keeps the place: the token stays in the session file for `queue status` or a later `--wait`.
 */
export async function waitInLine(ctx: Ctx, first: QueueTicket, client: ApiClient = ctx.client): Promise<QueueTicket> {
  let t = first;
  const start = first.position ?? 1;
  let frame = 0;
  let lastPosition: number | null = null;
  const draw = () => {
    if (ctx.live) ctx.io.stderr.write(`\r\x1b[2K${liveLine(ctx.ce, t, start, frame++)}`);
    else if (!ctx.json && t.position !== lastPosition) ctx.io.stderr.write(`${liveLine(ctx.ce, t, start, 0).slice(2)}\n`);
    lastPosition = t.position;
  };
  const clear = () => ctx.live && ctx.io.stderr.write('\r\x1b[2K');
  try {
    while (t.status === 'WAITING') {
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
  }
  clear();
  return t;
}
