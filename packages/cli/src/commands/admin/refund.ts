import type { Command } from 'commander';
import { reservationId } from '../../args.ts';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { won } from '../../format.ts';
import type { Reservation } from '../../types.ts';
import { renderReservation } from '../../views.ts';

export function register(admin: Command): void {
  man(
    admin
      .command('refund')
      .description("Refund someone's paid reservation, at any time (no refund window for operators).")
      .argument('<reservationId>', 'a PAID reservation', reservationId)
      .action(act(adminRefundCommand)),
    [['concert --admin-key $KEY admin refund 0b9d…', 'refund a buyer']],
  );
}

/** `concert admin refund <reservationId>`. */
export async function adminRefundCommand(ctx: Ctx, reservationId: string): Promise<Reservation> {
  ctx.requireAdmin();
  const r = await ctx.client.admin.reservations.refund.mutate({ reservationId });
  return ctx.print(r, (c) => `${renderReservation(ctx, c, r)}\nRefunded ${won(r.totalPrice)}.`);
}
