import type { Command } from 'commander';
import { reservationId } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { renderReservation } from '../views.ts';
import type { Reservation } from '../types.ts';

export function register(program: Command): void {
  man(
    program
      .command('reservation')
      .description('One of your reservations: seats, total, status, and how long a hold has left.')
      .argument('<reservationId>', 'the reservation', reservationId)
      .action(act(reservationCommand)),
    [['concert --user 1 reservation 0b9d…', 'show a reservation']],
  );
}

/** `concert reservation <reservationId>`. */
export async function reservationCommand(ctx: Ctx, reservationId: string): Promise<Reservation> {
  ctx.requireUser();
  const r = await ctx.client.reservations.get.query({ reservationId });
  return ctx.print(r, (c) => renderReservation(ctx, c, r));
}
