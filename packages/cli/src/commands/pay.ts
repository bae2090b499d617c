import type { Command } from 'commander';
import { reservationId } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { renderPayment } from '../views.ts';
import type { PaymentResult } from '../types.ts';

export function register(program: Command): void {
  man(
    program
      .command('pay')
      .description('Pay a hold from your balance. The seats become yours and your place in the waiting room is spent.')
      .argument('<reservationId>', 'the reservation from hold', reservationId)
      .option('--idempotency-key <key>', 'reuse a key to retry safely: you are never charged twice')
      .action(act(payCommand)),
    [
      ['concert --user 1 pay 0b9d…', 'pay a hold'],
      ['concert --user 1 charge 100000 && concert --user 1 pay 0b9d…', 'top up first when the balance is short'],
    ],
  );
}

/** `concert pay <reservationId>`: pay a hold from the balance; the queue token is spent. */
export async function payCommand(ctx: Ctx, reservationId: string, opts: { idempotencyKey?: string } = {}): Promise<PaymentResult> {
  const user = ctx.requireUser();
  const idempotencyKey = await ctx.idempotencyKey(opts.idempotencyKey);
  const reservation = await ctx.client.reservations.get.query({ reservationId });
  ctx.know({ concertId: reservation.concertId, scheduleId: reservation.scheduleId, seats: reservation.seats.map((s) => s.seatNumber) });
  const payment = await ctx.client.payments.pay.mutate({ reservationId, idempotencyKey }, ctx.tokenCall(reservation.concertId));
  if (payment.queueTokenExpired) ctx.session.delete(ctx.api, user, reservation.concertId);
  return ctx.print(payment, (c) => renderPayment(c, payment, reservation));
}
