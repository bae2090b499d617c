import { type Command, Option } from 'commander';
import { pageLimit } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { localTime, statusColor, table, timeLeft, won } from '../format.ts';
import { allPages, onePage, type PageOpts, pageInput, morePage } from '../pages.ts';
import type { Reservation, ReservationPage } from '../types.ts';

const STATUSES = ['HELD', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'] as const;

export function register(program: Command): void {
  man(
    program
      .command('reservations')
      .description('Your reservations, newest first (all of them; --limit or --cursor for one page).')
      .addOption(new Option('--status <status>', 'only these').choices(STATUSES))
      .option('--limit <n>', 'one page of this many (1 to 100)', pageLimit)
      .option('--cursor <cursor>', 'the next page, from the previous answer')
      .action(act(reservationsCommand)),
    [
      ['concert --user 1 reservations --status PAID', 'your tickets'],
      ['concert --user 1 --json reservations --limit 10', 'one page: { items, nextCursor }'],
    ],
  );
}

/** `concert reservations [--status S] [--limit N] [--cursor C]`: the caller's reservations, newest first. */
export async function reservationsCommand(ctx: Ctx, opts: { status?: (typeof STATUSES)[number] } & PageOpts = {}): Promise<Reservation[] | ReservationPage> {
  ctx.requireUser();
  const status = opts.status ? { status: opts.status } : {};
  const page = onePage(opts) ? await ctx.client.reservations.mine.query({ ...status, ...pageInput(opts) }) : undefined;
  const list = page ? page.items : await allPages((p) => ctx.client.reservations.mine.query({ ...status, ...p }));
  const now = ctx.now();
  return ctx.print(page ?? list, (c) =>
    list.length === 0
      ? 'No reservations.'
      : table(
          c,
          ['reservation', 'concert', 'show', 'seats', 'total', 'status', 'when'],
          list.map((r) => [
            r.reservationId,
            r.concertTitle,
            localTime(r.startsAt),
            r.seats.map((s) => s.seatNumber).join(' '),
            won(r.totalPrice),
            statusColor(c, r.status),
            r.status === 'HELD' ? timeLeft(r.holdExpiresAt, now) : r.refundedAt ? `refunded ${localTime(r.refundedAt)}` : r.paidAt ? `paid ${localTime(r.paidAt)}` : localTime(r.createdAt),
          ]),
          { align: ['left', 'left', 'left', 'left', 'right', 'left', 'left'] },
        ) + morePage(`reservations${opts.status ? ` --status ${opts.status}` : ''}`, opts, page?.nextCursor),
  );
}
