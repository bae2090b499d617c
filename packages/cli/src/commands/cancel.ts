import type { Command } from 'commander';
import { reservationId } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { renderReservation } from '../views.ts';
import type { Reservation } from '../types.ts';

export function register(program: Command): void {
  man(
    program
      .command('cancel')
      .description('Give a hold back; its seats are free again at once.')
      .argument('<reservationId>', 'the reservation', reservationId)
      .action(act(cancelCommand)),
    [['concert --user 1 cancel 0b9d…', 'release your hold']],
  );
}

/** `concert cancel <reservationId>`: give a hold back; its seats are free at once. */
export async function cancelCommand(ctx: Ctx, reservationId: string): Promise<Reservation> {
  ctx.requireUser();
  ctx.know({ reservationId });
  const r = await ctx.client.reservations.cancel.mutate({ reservationId });
  // A hold its show's cancellation released is CANCELLED too, and its seats are not on sale.
  const outcome = (await ctx.showCancelled(r.scheduleId))
    ? `Schedule ${r.scheduleId} has been cancelled; this hold was released with it.`
    : 'Cancelled; the seats are free again.';
  return ctx.print(r, (c) => `${renderReservation(ctx, c, r)}\n${outcome}`);
}
