import type { ApiClient } from './client.ts';
import { type Ctx, sleep, withToken } from './context.ts';
import { Interrupted } from './errors.ts';
import { bar, type Colors, duration } from './format.ts';
import type { QueueTicket } from './types.ts';

// The waiting line, drawn live while `queue join --wait` and `book` wait for their turn.

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
