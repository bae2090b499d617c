import type { Command } from 'commander';
import { reservationId } from '../../args.ts';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import type { Reservation } from '../../types.ts';
import { renderReservation } from '../../views.ts';

export function register(admin: Command): void {
  man(
    admin
      .command('release')
      .description("Cancel someone's hold; the seats are free at once.")
      .argument('<reservationId>', 'the reservation', reservationId)
      .action(act(adminReleaseCommand)),
    [['concert --admin-key $KEY admin release 0b9d…', 'free a stuck hold']],
  );
}

/** `concert admin release <reservationId>`: cancel someone's hold; the seats are free at once. */
export async function adminReleaseCommand(ctx: Ctx, reservationId: string): Promise<Reservation> {
  ctx.requireAdmin();
  ctx.know({ reservationId });
  const r = await ctx.client.admin.holds.release.mutate({ reservationId });
  return ctx.print(r, (c) => `${renderReservation(ctx, c, r)}\nReleased.`);
}
