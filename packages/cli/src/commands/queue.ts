import type { Command } from 'commander';
import { id } from '../args.ts';
import { act, man } from '../command.ts';
import { type Ctx, sleep, withToken } from '../context.ts';
import { CliFailure, Interrupted, retryAfterOf, UsageError } from '../errors.ts';
import { type Colors, duration, fields, localTime, statusColor, timeLeft } from '../format.ts';
import { allHeld, inLine, type NoShowLeft, noShowLeft, soldOut, soldOutAdvice, soldOutText, waitInLine } from '../line.ts';
import type { QueueTicket } from '../types.ts';

export function register(program: Command): void {
  const queue = program.command('queue').description('The waiting room: one line per concert; booking needs an ACTIVE place.');
  man(
    queue
      .command('join')
      .description(
        "Take a place in a concert's waiting room. The token is saved in the session file for this API, user and concert, so seats, hold and pay find it. With --wait, a live line shows the position, the people ahead, the ETA and a progress bar until you are ACTIVE (then the ticket is printed) or the place expires. If the place expires or the concert sells out first, that final ticket (EXPIRED or SOLD_OUT) is printed and the exit status is 1 (without --wait, a SOLD_OUT ticket is a plain answer: exit status 0). Ctrl-C stops waiting and keeps the place.",
      )
      .argument('<concertId>', 'the concert', id('concertId'))
      .option('--wait', 'wait, polling at the pace the server asks, until it is your turn')
      .action(act(queueJoinCommand)),
    [
      ['concert --user 1 queue join 1 --wait', 'wait in line for concert 1'],
      ['concert --user 1 --json queue join 1 | jq .position', 'join and read the position'],
    ],
    'Joining again while the place is alive returns the same place; after it expires you join at the back.',
  );
  man(
    queue.command('status').description('Where your saved place in the line of a concert stands.').argument('<concertId>', 'the concert', id('concertId')).action(act(queueStatusCommand)),
    [['concert --user 1 queue status 1', 'position, people ahead, ETA; or how long the ACTIVE slot lasts']],
  );
  man(
    queue
      .command('leave')
      .description('Give up your place (or your ACTIVE slot) so the next person gets it.')
      .argument('<concertId>', 'the concert', id('concertId'))
      .action(act(queueLeaveCommand)),
    [['concert --user 1 queue leave 1', 'leave the line of concert 1']],
  );
}

/** `concert queue join <concertId> [--wait]`: take a place in the waiting room; the token goes to the session file. */
export async function queueJoinCommand(ctx: Ctx, concertId: number, opts: { wait?: boolean } = {}): Promise<QueueTicket> {
  ctx.requireUser();
  ctx.know({ concertId });
  let ticket = await ctx.client.queue.enter.mutate({ concertId });
  ctx.rememberTicket(ticket);
  if (!opts.wait) {
    const ended = await noShowLeft(ctx, ticket);
    return ctx.print(ticket, (c) => renderTicket(ctx, c, ticket, { noShowLeft: ended }));
  }
  // With --wait the command's goal is a turn: ending without one is a failure (exit 1), but the
  // server answered, so the final ticket still goes to stdout for a script to read.
  if (inLine(ticket)) ticket = await waitInLine(ctx, ticket);
  const final = ticket;
  // Sold out or expired, the same way: the final ticket on stdout, then the failure on stderr. The
  // failure says what to do next with its hint, so the ticket is its fields alone (the advice was
  // printed twice, under the ticket and as the hint). EXPIRED printed no ticket at all.
  const failure = final.status === 'SOLD_OUT' ? soldOut(final, ctx.now(), await noShowLeft(ctx, final)) : final.status === 'EXPIRED' ? expired(concertId) : undefined;
  ctx.print(final, (c) => renderTicket(ctx, c, final, { next: failure === undefined }));
  if (failure) throw failure;
  return final;
}

/**
 * How long `queue status` waits for the line's pace rather than fail. The server turns away a poll
 * sooner than half the ticket's pollAfterMs (RATE_LIMITED, with how long to wait), so a second
 * `queue status` right after another was an error; the user asked where they stand, and the answer
 * is a few seconds away. Ctrl-C during the wait is INTERRUPTED (exit 130), like Ctrl-C in every
 * other command. A live ticket is asked to wait at most 15 s (half of pollAfterMs, at most 30 s);
 * a SOLD_OUT or EXPIRED ticket's 30 s is still the error at once, with its hint.
 */
export const STATUS_PATIENCE_MS = 16_000;

/** `concert queue status <concertId>`: where the remembered token stands. */
export async function queueStatusCommand(ctx: Ctx, concertId: number): Promise<QueueTicket> {
  ctx.know({ concertId });
  const token = savedToken(ctx, concertId);
  const giveUpAt = ctx.now().getTime() + STATUS_PATIENCE_MS;
  let ticket: QueueTicket | undefined;
  while (ticket === undefined) {
    try {
      ticket = await ctx.client.queue.status.query({}, withToken(token));
    } catch (err) {
      const wait = retryAfterOf(err);
      if (wait === undefined || ctx.now().getTime() + wait > giveUpAt) throw err;
      ctx.note((c) => c.dim(`The line's pace asks for a moment between looks; asking again in ${Math.max(1, Math.ceil(wait / 1000))} s…`));
      // A little past the moment named, so the next look is not turned away by the clocks' rounding.
      await sleep(wait + 25, ctx.io.signal).catch(() => {
        throw new Interrupted();
      });
    }
  }
  ctx.rememberTicket(ticket);
  const ended = await noShowLeft(ctx, ticket);
  return ctx.print(ticket, (c) => renderTicket(ctx, c, ticket, { noShowLeft: ended }));
}

/** `concert queue leave <concertId>`: give up the place (or the ACTIVE slot) so the next in line gets it. */
export async function queueLeaveCommand(ctx: Ctx, concertId: number): Promise<{ left: true; concertId: number }> {
  ctx.know({ concertId });
  const token = savedToken(ctx, concertId);
  await ctx.client.queue.leave.mutate({}, withToken(token));
  ctx.forgetTicket(concertId);
  return ctx.print({ left: true as const, concertId }, () => `Left the waiting room of concert ${concertId}.`);
}

function savedToken(ctx: Ctx, concertId: number): string {
  const token = ctx.tokenFor(concertId);
  if (!token) throw new UsageError(`No queue token saved for concert ${concertId} and this user`, `Join first: concert queue join ${concertId}`);
  // A --queue-token of another concert: the server acts on the token's own line, so `queue leave 1`
  // left concert 2's line, answered {"left":true,"concertId":1} and forgot concert 1's saved place,
  // still ACTIVE (an outside review). The concert a token names is readable (its MAC is the server's).
  const named = tokenConcert(token);
  if (named !== undefined && named !== concertId) {
    throw new UsageError(`The queue token given is for concert ${named}, not concert ${concertId}`, `Use it with that concert: concert --queue-token … queue status ${named}`);
  }
  return token;
}

/** The concert a queue token names (`q1.<base64url of concertId.userId.tokenId.enteredAtMs>.<mac>`), if it reads as one. */
export function tokenConcert(token: string): number | undefined {
  const [prefix, payload] = token.split('.');
  if (prefix !== 'q1' || !payload) return undefined;
  const m = /^(\d+)\./.exec(Buffer.from(payload, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : undefined;
}

function expired(concertId: number): CliFailure {
  return new CliFailure('QUEUE_EXPIRED', 'TOKEN_EXPIRED', `Your place in the waiting room of concert ${concertId} expired`, `Join again: concert queue join ${concertId} --wait`);
}

/** The ticket's fields, then (unless `next` is false) what to do next. */
export function renderTicket(ctx: Ctx, c: Colors, t: QueueTicket, opts: { next?: boolean; noShowLeft?: NoShowLeft } = {}): string {
  const now = ctx.now();
  const rows: Array<[string, string]> = [
    ['concert', String(t.concertId)],
    ['status', statusColor(c, t.status)],
  ];
  if (t.status === 'WAITING') {
    rows.push(['position', `${t.position} (${t.aheadCount} ahead)`]);
    rows.push([
      'eta',
      t.paused
        ? c.yellow('none while the sale is paused: the organiser stopped admitting for now; your place is kept')
        : allHeld(t)
          ? c.yellow('none for now: no seat is free (all held, or booking not open yet)')
          : `about ${duration(t.etaSeconds! * 1000)}`,
    ]);
  }
  if (t.status === 'PRE_QUEUE' && t.opensAt) {
    rows.push(['opens', `${localTime(t.opensAt, { seconds: true })} (${t.opensAt > now ? `in ${duration(t.opensAt.getTime() - now.getTime())}` : 'now'})`]);
    rows.push(['place', 'drawn at random at the opening, ahead of everyone who comes later']);
  }
  if (t.activeUntil) rows.push(['active until', `${localTime(t.activeUntil, { seconds: true })} (${timeLeft(t.activeUntil, now)})`]);
  rows.push(['entered', localTime(t.enteredAt, { seconds: true })]);
  if (opts.next === false) return fields(c, rows);
  const next =
    t.status === 'ACTIVE'
      ? c.green(`You're in. Pick a show: concert schedules ${t.concertId}`)
      : inLine(t)
        ? `${allHeld(t) ? 'The line moves again when a seat frees up (a hold lapses or is released) or booking opens; your place is kept.\n' : ''}Wait for your turn: concert queue join ${t.concertId} --wait`
        : t.status === 'SOLD_OUT'
          ? `${c.red(`${soldOutText(t, opts.noShowLeft)}.`)}\n${soldOutAdvice(t, now, opts.noShowLeft)}`
          : `Join again: concert queue join ${t.concertId}`;
  return `${fields(c, rows)}\n${next}`;
}

