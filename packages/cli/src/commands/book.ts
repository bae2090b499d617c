import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { count, id, parseSeatList, seats } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { appCodeOf, CliFailure, Interrupted, UsageError } from '../errors.ts';
import { localTime, timeLeft, won } from '../format.ts';
import { inLine, soldOut, waitInLine } from '../line.ts';
import { renderSeatMap } from '../seatmap.ts';
import type { PaymentResult, Reservation, SeatMap } from '../types.ts';
import { renderPayment, renderReservation } from '../views.ts';

export function register(program: Command): void {
  man(
    program
      .command('book')
      .description(
        'The whole journey: pick a concert, wait in line (live position), pick a show, pick seats on the map,\nsee the total and how long the hold lasts, top up if the balance is short, pay, and see the confirmation.\nEvery choice can be given as a flag; without a terminal every choice must be (nothing waits for input).\nCtrl-C leaves at any step; a hold made on the way is released.',
      )
      .option('--concert <id>', 'the concert', id('--concert'))
      .option('--schedule <id>', 'the show', id('--schedule'))
      .option('--seats <seat...>', 'seat numbers, e.g. 12,13 or 12 13', seats)
      .option('--top-up', 'top up the shortfall without asking when the balance is short')
      .option('-y, --yes', 'pay without asking')
      .option('--cols <n>', 'seats per row of the map', count('--cols'))
      .action(act(bookCommand)),
    [
      ['concert --user 1 book', 'ask at every step'],
      ['concert --user 1 book --concert 1', 'skip the concert question'],
      ['concert --user 1 --json book --concert 1 --schedule 3 --seats 12,13 --top-up --yes', 'no questions at all (scripts, CI)'],
    ],
  );
}

export interface BookOptions {
  concert?: number;
  schedule?: number;
  seats?: number[];
  /** Pay without asking. */
  yes?: boolean;
  /** Top the wallet up by the shortfall without asking. */
  topUp?: boolean;
  cols?: number;
}

export interface BookResult {
  reservation: Reservation;
  payment: PaymentResult;
}

/**
 * `concert book`: the fan's whole journey. Each step asks only when its flag is missing, and asks only
 * with a terminal: without one, the missing flags are named and nothing is left hanging.
 */
export async function bookCommand(ctx: Ctx, opts: BookOptions = {}): Promise<BookResult> {
  ctx.requireUser();
  if (!ctx.interactive) {
    const missing = [opts.concert === undefined && '--concert ID', opts.schedule === undefined && '--schedule ID', opts.seats === undefined && '--seats N,N', !opts.yes && '--yes'].filter(Boolean);
    if (missing.length) {
      throw new UsageError(
        `concert book asks questions, but there is no terminal to ask them on; pass ${missing.join(', ')}`,
        'For example: concert book --concert 1 --schedule 3 --seats 12,13 --yes [--top-up]',
      );
    }
  }
  const out = ctx.json ? ctx.io.stderr : ctx.io.stdout;
  const c = ctx.json ? ctx.ce : ctx.c;
  const say = (s: string) => {
    if (!ctx.json || ctx.interactive) out.write(`${s}\n`);
  };
  const api = ctx.client;
  const prompts = ctx.prompts;

  // 1. The concert.
  let concertId = opts.concert;
  if (concertId === undefined) {
    const concerts = await api.concerts.list.query({});
    if (concerts.length === 0) throw new CliFailure('NOTHING_ON_SALE', null, 'No concerts are on sale');
    concertId = await prompts.select(
      'Which concert?',
      concerts.map((x) => ({ name: `${x.title}${x.venue ? ` · ${x.venue}` : ''}`, value: x.concertId, description: `${x.scheduleCount} show(s)` })),
    );
  }

  // 2. The waiting room.
  let ticket = await api.queue.enter.mutate({ concertId });
  ctx.rememberTicket(ticket);
  if (ticket.status === 'PRE_QUEUE' && ticket.opensAt) {
    say(c.dim(`The line opens at ${localTime(ticket.opensAt, { seconds: true, weekday: false })}; your place is drawn at random then, ahead of everyone who comes later.`));
  } else if (ticket.status === 'WAITING') say(c.dim(`You are number ${ticket.position} in line.`));
  if (inLine(ticket)) ticket = await waitInLine(ctx, ticket);
  if (ticket.status === 'SOLD_OUT') throw soldOut(concertId);
  if (ticket.status !== 'ACTIVE') throw new CliFailure('QUEUE_EXPIRED', 'TOKEN_EXPIRED', 'Your place in line expired', `Try again: concert book --concert ${concertId}`);
  const call = { context: { queueToken: ticket.token } };
  say(c.green(`✓ It's your turn${ticket.activeUntil ? ` until ${localTime(ticket.activeUntil, { seconds: true, weekday: false })} (${timeLeft(ticket.activeUntil, ctx.now())})` : ''}.`));

  // 3. The show.
  let scheduleId = opts.schedule;
  if (scheduleId === undefined) {
    const { schedules } = await api.concerts.schedules.query({ concertId, includeSoldOut: true });
    if (!schedules.some((s) => s.availableSeats > 0)) throw new CliFailure('SOLD_OUT', null, `Every show of concert ${concertId} is sold out`);
    scheduleId = await prompts.select(
      'Which show?',
      schedules.map((s) => ({
        name: `${localTime(s.startsAt)} · ${s.availableSeats === 0 ? 'sold out' : `${s.availableSeats} of ${s.totalSeats} seats left`}`,
        value: s.scheduleId,
        ...(s.availableSeats === 0 ? { disabled: 'sold out' } : {}),
      })),
    );
  }

  // 4. The seats, on the map; a seat taken meanwhile sends us back to a fresh map.
  let reservation: Reservation | undefined;
  try {
    for (let attempt = 0; !reservation; attempt++) {
      const map = await api.concerts.seats.query({ scheduleId }, call);
      let seats = opts.seats;
      if (seats === undefined) {
        const title = (await api.concerts.get.query({ concertId })).title;
        say(`\n${renderSeatMap(map, c, { title, ...(opts.cols ? { cols: opts.cols } : {}) })}\n`);
        const answer = await prompts.input('Seats to hold (1 to 4, e.g. 12 13):', { validate: (v) => checkSeats(v, map) });
        seats = parseSeatList(answer);
      }
      try {
        reservation = await api.reservations.hold.mutate({ scheduleId, seatNumbers: seats, idempotencyKey: randomUUID() }, call);
      } catch (err) {
        if (opts.seats === undefined && appCodeOf(err) === 'SEAT_UNAVAILABLE' && attempt < 5) {
          say(c.yellow('Someone was quicker for one of those seats; here is the map again.'));
          continue;
        }
        throw err;
      }
    }

    // 5. The total, the countdown, the wallet.
    const held = reservation;
    say(`\n${renderReservation(ctx, c, held)}\n`);
    const { balance } = await api.balance.get.query({});
    if (balance < held.totalPrice) {
      const short = held.totalPrice - balance;
      const topUp = opts.topUp || (ctx.interactive && (await prompts.confirm(`Your balance is ${won(balance)}, ${won(short)} short. Top up ${won(short)}?`, { default: true })));
      if (!topUp) throw new CliFailure('INSUFFICIENT_BALANCE', 'INSUFFICIENT_BALANCE', `Your balance of ${won(balance)} is ${won(short)} short of ${won(held.totalPrice)}`, 'Top up with --top-up or: concert charge <amount>');
      const charged = await api.balance.charge.mutate({ amount: short, idempotencyKey: randomUUID() });
      say(c.green(`✓ Topped up ${won(charged.charged)}; balance ${won(charged.balance)}.`));
    }

    // 6. Pay.
    if (!opts.yes) {
      const ok = await prompts.confirm(`Pay ${won(held.totalPrice)} for seat(s) ${held.seats.map((s) => s.seatNumber).join(', ')}? The hold lapses at ${localTime(held.holdExpiresAt, { seconds: true, weekday: false })} (${timeLeft(held.holdExpiresAt, ctx.now())})`, { default: true });
      if (!ok) {
        await releaseQuietly(ctx, held.reservationId);
        throw new CliFailure('CANCELLED', null, 'Not paid; the hold was released');
      }
    }
    const payment = await api.payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: randomUUID() }, call);
    if (payment.queueTokenExpired) ctx.forgetTicket(concertId);
    const paid = { ...held, status: 'PAID' as const, paidAt: payment.paidAt };
    return ctx.print({ reservation: paid, payment }, (pc) => renderPayment(pc, payment, paid));
  } catch (err) {
    // Leaving half-way (Ctrl-C, a declined top-up) gives the seats back rather than sitting on them.
    if (reservation && (err instanceof Interrupted || (err instanceof CliFailure && err.code === 'INSUFFICIENT_BALANCE'))) {
      await releaseQuietly(ctx, reservation.reservationId);
      ctx.note(`Released the hold on seat(s) ${reservation.seats.map((s) => s.seatNumber).join(', ')}.`);
    }
    throw err;
  }
}

export function checkSeats(text: string, map: SeatMap): true | string {
  const seats = parseSeatList(text);
  if (seats.length === 0) return 'Type one to four seat numbers';
  if (seats.some((n) => !Number.isInteger(n))) return 'Seat numbers are whole numbers, separated by spaces or commas';
  if (seats.length > 4) return 'At most 4 seats';
  if (new Set(seats).size !== seats.length) return 'Each seat once';
  for (const n of seats) {
    const seat = map.seats.find((s) => s.seatNumber === n);
    if (!seat) return `There is no seat ${n}`;
    if (seat.status !== 'AVAILABLE') return `Seat ${n} is ${seat.status.toLowerCase()}`;
  }
  return true;
}

async function releaseQuietly(ctx: Ctx, reservationId: string): Promise<void> {
  // The command's own client is tied to Ctrl-C's signal, which has fired: use one that is not.
  const api = ctx.clientFor({ ...(ctx.userId !== undefined ? { userId: ctx.userId } : {}), ...(ctx.userToken ? { userToken: ctx.userToken } : {}) }, { timeoutMs: 5_000 });
  await api.reservations.cancel.mutate({ reservationId }).catch(() => undefined);
}
