import type { Command } from 'commander';
import { count, id, pageLimit } from '../args.ts';
import { act, defaultCommand, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { type Colors, localTime, statusColor, table, timeLeft } from '../format.ts';
import type { WaitlistEntry, WaitlistPage } from '../types.ts';
import { morePage, pageInput } from '../pages.ts';

export function register(program: Command): void {
  const waitlist = program.command('waitlist').description('Wait for seats of a sold-out show: seats that come back are offered in turn.');
  man(
    defaultCommand(waitlist, 'list')
      .description('Your waitlist entries, and any open offer.')
      .option('--limit <n>', 'entries per page (1-100)', pageLimit)
      .option('--cursor <c>', 'the next page (from the last page)')
      .action(act(waitlistListCommand)),
    [['concert --user 1 waitlist', 'your entries and offers']],
  );
  man(
    waitlist
      .command('join')
      .description('Join a sold-out show’s waitlist (joining again shows your entry).')
      .argument('<scheduleId>', 'the show', id('scheduleId'))
      .option('--seats <n>', 'how many seats you want together (1-4)', count('--seats', 1, 4), 1)
      .action(act(waitlistJoinCommand)),
    [
      ['concert --user 1 waitlist join 3 --seats 2', 'wait for two seats together'],
      ['concert --user 1 pay <reservationId>', 'pay an offer: no queue token needed'],
    ],
    'An offer is a hold for WAITLIST_OFFER_SECONDS (default 600); pay it with `concert pay`, or it passes to the next in line.',
  );
  man(
    waitlist
      .command('leave')
      .description('Leave a waitlist; an open offer is declined and passes to the next in line.')
      .argument('<entryId>', 'the entry', id('entryId'))
      .action(act(waitlistLeaveCommand)),
    [['concert --user 1 waitlist leave 12', 'stop waiting']],
  );
}

function renderEntries(ctx: Ctx, c: Colors, entries: WaitlistEntry[]): string {
  const now = ctx.now();
  return table(
    c,
    ['entry', 'show', 'seats', 'status', 'place', 'offer'],
    entries.map((e) => [
      e.entryId,
      e.scheduleId,
      e.seatCount,
      statusColor(c, e.status),
      e.position ?? '',
      e.offer ? `${e.offer.reservationId} seats ${e.offer.seatNumbers.join(' ')}${e.status === 'OFFERED' ? ` (${timeLeft(e.offer.expiresAt, now)})` : ''}` : '',
    ]),
    { align: ['right', 'right', 'right', 'left', 'right', 'left'] },
  );
}

/** `concert waitlist [list]`. */
export async function waitlistListCommand(ctx: Ctx, opts: { limit?: number; cursor?: string } = {}): Promise<WaitlistPage> {
  ctx.requireUser();
  const page = await ctx.client.waitlist.mine.query(pageInput(opts));
  return ctx.print(page, (c) =>
    page.items.length === 0
      ? 'You are on no waitlist.'
      : renderEntries(ctx, c, page.items) + morePage('waitlist', opts, page.nextCursor),
  );
}

/** `concert waitlist join <scheduleId> [--seats N]`. */
export async function waitlistJoinCommand(ctx: Ctx, scheduleId: number, opts: { seats?: number } = {}): Promise<WaitlistEntry> {
  ctx.requireUser();
  const e = await ctx.client.waitlist.join.mutate({ scheduleId, seatCount: opts.seats ?? 1 });
  return ctx.print(e, (c) => {
    const lead =
      e.status === 'OFFERED' && e.offer
        ? c.green(`Seats ${e.offer.seatNumbers.join(' ')} are offered to you until ${localTime(e.offer.expiresAt, { seconds: true })}: concert pay ${e.offer.reservationId}`)
        : `You are number ${e.position ?? '?'} on the waitlist of show ${e.scheduleId}.`;
    return `${lead}\n${renderEntries(ctx, c, [e])}`;
  });
}

/** `concert waitlist leave <entryId>`. */
export async function waitlistLeaveCommand(ctx: Ctx, entryId: number): Promise<WaitlistEntry> {
  ctx.requireUser();
  const e = await ctx.client.waitlist.leave.mutate({ entryId });
  // Leaving an entry that had already ended (ACCEPTED, LAPSED) changes nothing: the server answers it as it is.
  return ctx.print(e, (c) => `${renderEntries(ctx, c, [e])}\n${e.status === 'LEFT' ? 'You left the waitlist.' : `This entry had already ended (${e.status}): nothing changed.`}`);
}
