import type { Command } from 'commander';
import { reservationId } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { won } from '../format.ts';
import type { Reservation } from '../types.ts';
import { renderReservation } from '../views.ts';

export function register(program: Command): void {
  man(
    program
      .command('refund')
      .description('Give paid tickets back: the money returns to your balance and the seats go back on sale (the waitlist first).')
      .argument('<reservationId>', 'a PAID reservation', reservationId)
      .option('--idempotency-key <key>', 'reuse a key to retry safely: you are never refunded twice')
      .action(act(refundCommand)),
    [
      ['concert --user 1 refund 0b9d…', 'refund your tickets'],
      ['concert --user 1 reservations --status PAID', 'find what you can refund'],
    ],
    'Buyers can refund until REFUND_CUTOFF_HOURS (default 24) before the show (REFUND_WINDOW_CLOSED after).',
  );
}

/** `concert refund <reservationId>`: the buyer's refund of a PAID reservation. */
export async function refundCommand(ctx: Ctx, reservationId: string, opts: { idempotencyKey?: string } = {}): Promise<Reservation> {
  ctx.requireUser();
  const idempotencyKey = await ctx.idempotencyKey(opts.idempotencyKey);
  const r = await ctx.client.reservations.refund.mutate({ reservationId, idempotencyKey });
  return ctx.print(r, (c) => `${renderReservation(ctx, c, r)}\n${c.green(`Refunded ${won(r.totalPrice)} to your balance.`)}`);
}
