import { type Command, Option } from 'commander';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { localTime, statusColor, table, timeLeft, won } from '../format.ts';
import type { Reservation } from '../types.ts';

const STATUSES = ['HELD', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'] as const;

export function register(program: Command): void {
  man(
    program
      .command('reservations')
      .description('Your reservations, newest first.')
      .addOption(new Option('--status <status>', 'only these').choices(STATUSES))
      .action(act(reservationsCommand)),
    [['concert --user 1 reservations --status PAID', 'your tickets']],
  );
}

/** `concert reservations [--status S]`: the caller's reservations, newest first. */
export async function reservationsCommand(ctx: Ctx, opts: { status?: (typeof STATUSES)[number] } = {}): Promise<Reservation[]> {
  ctx.requireUser();
  const list = await ctx.client.reservations.mine.query(opts.status ? { status: opts.status } : {});
  const now = ctx.now();
  return ctx.print(list, (c) =>
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
            r.status === 'HELD' ? timeLeft(r.holdExpiresAt, now) : r.paidAt ? `paid ${localTime(r.paidAt)}` : localTime(r.createdAt),
          ]),
          { align: ['left', 'left', 'left', 'left', 'right', 'left', 'left'] },
        ),
  );
}
