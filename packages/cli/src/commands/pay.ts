import type { Command } from 'commander';
import { reservationId } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { CliFailure } from '../errors.ts';
import { localTime } from '../format.ts';
import { renderPayment } from '../views.ts';
import type { PaymentResult, Reservation } from '../types.ts';

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
    'A reservation that is no longer a hold gets the server’s answer at once, with no place in line needed: ALREADY_PAID (paid, or paid and refunded), RESERVATION_CANCELLED (SCHEDULE_CANCELLED when the show’s cancellation released it), HOLD_EXPIRED. With --idempotency-key the server is asked, so a retry of a payment that went through answers that payment.',
  );
}

/** `concert pay <reservationId>`: pay a hold from the balance; the queue token is spent. */
export async function payCommand(ctx: Ctx, reservationId: string, opts: { idempotencyKey?: string } = {}): Promise<PaymentResult> {
  ctx.requireUser();
  const idempotencyKey = await ctx.idempotencyKey(opts.idempotencyKey);
  const reservation = await ctx.client.reservations.get.query({ reservationId });
  ctx.know({ concertId: reservation.concertId, scheduleId: reservation.scheduleId, seats: reservation.seats.map((s) => s.seatNumber) });
  // The server checks the place in line before the reservation, so paying what is no longer a hold
  // answered TOKEN_INVALID ("Join the waiting room first") once the turn was spent, and the fan who
  // joined again was then told ALREADY_PAID. Without a key of the caller's, nothing could be
  // replayed: say what the reservation is. (With one, the server answers: it may be a replay.)
  if (opts.idempotencyKey === undefined && reservation.status !== 'HELD') throw notAHold(reservation, reservation.status === 'CANCELLED' && (await ctx.showCancelled(reservation.scheduleId)));
  const payment = await ctx.client.payments.pay.mutate({ reservationId, idempotencyKey }, ctx.tokenCall(reservation.concertId));
  if (payment.queueTokenExpired) ctx.forgetTicketSpentAt(reservation.concertId, payment.paidAt);
  return ctx.print(payment, (c) => renderPayment(c, payment, reservation));
}

/** The server's own answer for paying a reservation in this state (payments.service), given before it is asked. */
function notAHold(r: Reservation, showWasCancelled: boolean): CliFailure {
  const look = `See it: concert reservation ${r.reservationId}`;
  if (r.status === 'PAID') return new CliFailure('CONFLICT', 'ALREADY_PAID', `This reservation is already paid${r.paidAt ? ` (at ${localTime(r.paidAt, { seconds: true })})` : ''}`, look);
  if (r.status === 'REFUNDED') return new CliFailure('CONFLICT', 'ALREADY_PAID', 'This reservation was paid and then refunded; book its seats again', look);
  if (r.status === 'CANCELLED' && showWasCancelled) {
    return new CliFailure('PRECONDITION_FAILED', 'SCHEDULE_CANCELLED', `Schedule ${r.scheduleId} has been cancelled; this hold was released`, look);
  }
  if (r.status === 'CANCELLED') return new CliFailure('PRECONDITION_FAILED', 'RESERVATION_CANCELLED', 'This reservation was cancelled', look);
  // A lapsed waitlist offer's seats went to the next in line (or back on sale), not simply free.
  if (r.source === 'WAITLIST') return new CliFailure('PRECONDITION_FAILED', 'HOLD_EXPIRED', 'This waitlist offer is no longer open', 'See your waitlist: concert waitlist');
  const seats = r.seats.map((s) => s.seatNumber).join(' ');
  return new CliFailure('PRECONDITION_FAILED', 'HOLD_EXPIRED', 'The hold expired before payment; its seats are free again', `Hold the seats again: concert hold ${r.scheduleId} ${seats}`);
}
