import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { count, id, seats } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { appCodeOf, CliFailure, Interrupted, isServerError, UsageError } from '../errors.ts';
import { localTime, timeLeft, won } from '../format.ts';
import { inLine, noShowLeft, soldOut, waitInLine } from '../line.ts';
import type { PaymentResult, Reservation } from '../types.ts';
import { allPages } from '../pages.ts';
import { renderPayment, renderReservation } from '../views.ts';

export function register(program: Command): void {
  man(
    program
      .command('book')
      .description(
        'The whole journey: pick a concert, wait in line (live position), pick a show, pick seats on the map, see the total and how long the hold lasts, top up if the balance is short, pay, and see the confirmation. Every choice can be given as a flag; without a terminal, or with --json, every choice must be (nothing waits for input). Ctrl-C leaves at any step; a hold made on the way is released.',
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
      ['concert --user 1 --json book --concert 1 --schedule 3 --seats 12,13 \\\n--top-up --yes', 'no questions at all (scripts, CI)'],
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
  /** null when the buyer declined to pay (the hold is then released: `reservation.status` says CANCELLED). */
  payment: PaymentResult | null;
}

/**
 * `concert book`: the fan's whole journey. Each step asks only when its flag is missing, and asks only
 * with a terminal: without one, the missing flags are named and nothing is left hanging.
 */
export async function bookCommand(ctx: Ctx, opts: BookOptions = {}): Promise<BookResult> {
  ctx.requireUser();
  if (!ctx.interactive) {
    // --schedule alone names its concert too (the show is looked up below).
    const missing = [opts.concert === undefined && opts.schedule === undefined && '--concert ID', opts.schedule === undefined && '--schedule ID', opts.seats === undefined && '--seats N,N', !opts.yes && '--yes'].filter(Boolean);
    if (missing.length) {
      throw new UsageError(
        `${ctx.json ? 'With --json, concert book asks no questions' : 'concert book asks questions, but there is no terminal to ask them on'}; pass ${missing.join(', ')}`,
        // What was not given is a placeholder, never a made-up id: "--concert 3 --schedule 3" named
        // a show of another concert (an outside review); the shows of a concert given are a command away.
        `For example: concert book --concert ${opts.concert ?? '<concertId>'} --schedule ${opts.schedule ?? '<scheduleId>'} --seats ${opts.seats?.join(',') ?? '<n,n>'} --yes [--top-up]${opts.concert !== undefined && opts.schedule === undefined ? ` (its shows: concert schedules ${opts.concert})` : ''}`,
      );
    }
  }
  // What the flags name is checked before a place in line is taken: a wait of minutes ended in
  // INVALID_INPUT (`--seats 12,12`, five seats) or in TOKEN_WRONG_CONCERT (a show of another concert),
  // the turn spent, where `hold` refuses the same seats at once (exit 2).
  if (opts.seats !== undefined) {
    const { ZHoldInput } = await import('@concert/core/schemas');
    const parsed = ZHoldInput.shape.seatNumbers.safeParse(opts.seats);
    if (!parsed.success) throw new UsageError(`--seats: ${parsed.error.issues[0]?.message ?? 'not valid'} (book 1 to 4 distinct seats)`);
  }
  const c = ctx.c;
  const say = (s: string) => {
    if (!ctx.json) ctx.io.stdout.write(`${s}\n`);
  };
  const api = ctx.client;
  const prompts = ctx.prompts;
  // A show names its concert: with --schedule alone, the concert question is not asked.
  const show = opts.schedule === undefined ? undefined : await api.concerts.schedule.query({ scheduleId: opts.schedule });
  const showOf = show?.concertId;
  if (opts.concert !== undefined && showOf !== undefined && showOf !== opts.concert) {
    throw new UsageError(`Show ${opts.schedule} is of concert ${showOf}, not of concert ${opts.concert}`, `Book it with: concert book --concert ${showOf} --schedule ${opts.schedule}`);
  }
  // A show whose booking opens later than a moment from now, or that has started, refuses the hold
  // (BOOKING_NOT_OPEN, BOOKING_CLOSED): say so before a place in line is taken. It took one, and
  // the turn stood unused for its whole length (an outside review). The second of slack leaves the
  // server, whose clock decides, the last word at the opening itself.
  if (show && show.bookingOpensAt.getTime() > ctx.now().getTime() + 1_000) {
    throw new CliFailure('PRECONDITION_FAILED', 'BOOKING_NOT_OPEN', `Booking for show ${show.scheduleId} opens at ${show.bookingOpensAt.toISOString()}`, `Try again then: concert book --concert ${show.concertId} --schedule ${show.scheduleId}`);
  }
  if (show && show.startsAt.getTime() <= ctx.now().getTime()) {
    throw new CliFailure('PRECONDITION_FAILED', 'BOOKING_CLOSED', `Show ${show.scheduleId} has started; booking is closed`, `Its other shows: concert schedules ${show.concertId}`);
  }

  // 1. The concert.
  let concertId = opts.concert ?? showOf;
  if (concertId === undefined) {
    const concerts = await allPages((p) => api.concerts.list.query(p));
    // A concert whose every show was cancelled is offered disabled, as a sold-out show is below: picked,
    // it took a place in a line that answered SOLD_OUT.
    if (!concerts.some((x) => x.scheduleCount > 0)) throw new CliFailure('NOTHING_ON_SALE', null, 'No concerts are on sale');
    concertId = await prompts.select(
      'Which concert?',
      concerts.map((x) => ({ name: `${x.title}${x.venue ? ` · ${x.venue}` : ''}`, value: x.concertId, description: `${x.scheduleCount} show(s)`, ...(x.scheduleCount === 0 ? { disabled: 'no shows' } : {}) })),
    );
  }
  ctx.know({ concertId });

  // 2. The waiting room.
  let ticket = await api.queue.enter.mutate({ concertId });
  ctx.rememberTicket(ticket);
  if (ticket.status === 'PRE_QUEUE' && ticket.opensAt) {
    say(c.dim(`The line opens at ${localTime(ticket.opensAt, { seconds: true, weekday: false })}; your place is drawn at random then, ahead of everyone who comes later.`));
  } else if (ticket.status === 'WAITING') say(c.dim(`You are number ${ticket.position} in line.`));
  if (inLine(ticket)) ticket = await waitInLine(ctx, ticket);
  if (ticket.status === 'SOLD_OUT') throw soldOut(ticket, ctx.now(), await noShowLeft(ctx, ticket));
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
        // A disabled row shows its reason after its name: "sold out" once (it read twice).
        name: `${localTime(s.startsAt)}${s.availableSeats === 0 ? '' : ` · ${s.availableSeats} of ${s.totalSeats} seats left`}`,
        value: s.scheduleId,
        ...(s.availableSeats === 0 ? { disabled: '· sold out' } : {}),
      })),
    );
  }
  ctx.know({ scheduleId });

  // 4. The seats, picked on the map; a seat taken meanwhile is named, and a fresh map comes back.
  let reservation: Reservation | undefined;
  // The top-up was refused (a shortfall over CHARGE_MAX_PER_TX, the monthly limit): the balance is as short as without --top-up.
  let topUpFailed = false;
  try {
    const title = opts.seats === undefined ? (await api.concerts.get.query({ concertId })).title : undefined;
    for (let attempt = 0; !reservation; attempt++) {
      let seats = opts.seats;
      if (seats === undefined) {
        const map = await api.concerts.seats.query({ scheduleId }, call);
        seats = await prompts.pickSeats('Pick your seats on the map:', map, { c, max: 4, ...(title ? { title } : {}), ...(opts.cols ? { cols: opts.cols } : {}) });
      }
      ctx.know({ seats });
      try {
        reservation = await api.reservations.hold.mutate({ scheduleId, seatNumbers: seats, idempotencyKey: randomUUID() }, call);
      } catch (err) {
        if (opts.seats === undefined && appCodeOf(err) === 'SEAT_UNAVAILABLE' && attempt < 5) {
          const gone = await seatsTaken(ctx, err, seats, scheduleId, call);
          say(c.yellow(`Someone was quicker: ${gone.length ? `seat${gone.length === 1 ? '' : 's'} ${gone.join(', ')} ${gone.length === 1 ? 'is' : 'are'}` : 'one of those seats is'} no longer available. Here is the map again.`));
          continue;
        }
        throw err;
      }
    }

    // 5. The total, the countdown, the wallet. Each question ticks down with the hold, or with the
    // turn in line when that ends first: paying takes an ACTIVE place in line, and a fan let in
    // late in their turn would otherwise see the hold's five minutes and be refused at pay.
    const held = reservation;
    const seatList = held.seats.map((s) => s.seatNumber).join(', ');
    const turnEndsFirst = ticket.activeUntil !== null && ticket.activeUntil < held.holdExpiresAt;
    const deadline = turnEndsFirst ? ticket.activeUntil! : held.holdExpiresAt;
    const until = `${turnEndsFirst ? 'Your turn ends' : 'The hold lapses'} at ${localTime(deadline, { seconds: true, weekday: false })}`;
    const ask = (message: (left: string) => string) => prompts.confirmBefore(message, deadline, { default: true, now: () => ctx.now() });
    const lapsed = async () => {
      // Our clock and the server's may differ by a little: make sure the seats are free when we say so.
      await release(ctx, held.reservationId);
      if (turnEndsFirst) {
        return new CliFailure('QUEUE_EXPIRED', 'TOKEN_EXPIRED', `Your turn in line ended before you paid; the hold on seat(s) ${seatList} was released, the seats are free again`, `Start again: concert book --concert ${concertId} --schedule ${scheduleId}`);
      }
      return new CliFailure('PRECONDITION_FAILED', 'HOLD_EXPIRED', `The hold on seat(s) ${seatList} lapsed before you answered; the seats are free again`, `Start again: concert book --concert ${concertId} --schedule ${scheduleId}`);
    };
    say(`\n${renderReservation(ctx, c, held)}\n`);
    if (turnEndsFirst) say(c.yellow(`Pay by ${localTime(deadline, { seconds: true, weekday: false })}: your turn in line ends then, before the hold does, and paying needs it.`));
    const { balance } = await api.balance.get.query({});
    if (balance < held.totalPrice) {
      const short = held.totalPrice - balance;
      const answer = opts.topUp ? true : ctx.interactive ? await ask((left) => `Your balance is ${won(balance)}, ${won(short)} short. Top up ${won(short)}? (${turnEndsFirst ? 'turn' : 'hold'}: ${left})`) : false;
      if (answer === 'lapsed') throw await lapsed();
      if (!answer && ctx.interactive) return declined(ctx, held, 'Not topped up and not paid');
      if (!answer) throw new CliFailure('PAYMENT_REQUIRED', 'INSUFFICIENT_BALANCE', `Your balance of ${won(balance)} is ${won(short)} short of ${won(held.totalPrice)}`, `Top up with --top-up, or first: concert charge ${short}`);
      const charged = await topUp(ctx, short).catch((err: unknown) => {
        topUpFailed = !(err instanceof Interrupted);
        throw err;
      });
      say(c.green(`✓ Topped up ${won(charged.charged)}${charged.parts > 1 ? ` in ${charged.parts} charges` : ''}; balance ${won(charged.balance)}.`));
    }

    // 6. Pay.
    if (!opts.yes) {
      const answer = await ask((left) => `Pay ${won(held.totalPrice)} for seat(s) ${seatList}? ${until} (${left})`);
      if (answer === 'lapsed') throw await lapsed();
      if (!answer) return declined(ctx, held, 'Not paid');
    }
    const payment = await api.payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: randomUUID() }, call).catch(async (err: unknown) => {
      if (!(err instanceof Interrupted)) await sayHoldStands(ctx, held, err);
      throw err;
    });
    if (payment.queueTokenExpired) ctx.forgetTicket(concertId);
    const paid = { ...held, status: 'PAID' as const, paidAt: payment.paidAt };
    return ctx.print({ reservation: paid, payment }, (pc) => renderPayment(pc, payment, paid));
  } catch (err) {
    // Leaving half-way (Ctrl-C, a short balance without --top-up or whose top-up was refused) gives
    // the seats back rather than sitting on them: a refused top-up left the hold standing, unsaid.
    if (reservation && (err instanceof Interrupted || topUpFailed || (err instanceof CliFailure && err.appCode === 'INSUFFICIENT_BALANCE'))) {
      await release(ctx, reservation.reservationId);
      ctx.note(`Released the hold on seat(s) ${reservation.seats.map((s) => s.seatNumber).join(', ')}.`);
    }
    throw err;
  }
}

/**
 * Tops the wallet up by `amount`: in one charge, or, when the server says one charge may be at
 * most maxPerTx (CHARGE_LIMIT_EXCEEDED with details.maxPerTx), in charges of at most that. A
 * shortfall over it was refused whole and the hold released, with a hint to charge in parts and
 * then pay a hold already gone (an outside review). The server still judges each charge (the
 * monthly limit among them); a part refused after others leaves those in the wallet, and says so.
 */
async function topUp(ctx: Ctx, amount: number): Promise<{ charged: number; balance: number; parts: number }> {
  const charge = (n: number) => ctx.client.balance.charge.mutate({ amount: n, idempotencyKey: randomUUID() });
  try {
    const r = await charge(amount);
    return { charged: r.charged, balance: r.balance, parts: 1 };
  } catch (err) {
    const max = isServerError(err) && appCodeOf(err) === 'CHARGE_LIMIT_EXCEEDED' ? err.data?.details?.maxPerTx : undefined;
    if (typeof max !== 'number' || !(max > 0) || max >= amount) throw err;
    let charged = 0;
    let balance = 0;
    let parts = 0;
    while (charged < amount) {
      try {
        const r = await charge(Math.min(max, amount - charged));
        charged += r.charged;
        balance = r.balance;
        parts++;
      } catch (e) {
        if (charged > 0) ctx.note(`Topped up ${won(charged)} of ${won(amount)} before a charge was refused; the balance keeps it.`);
        throw e;
      }
    }
    return { charged, balance, parts };
  }
}

/**
 * Saying no is a choice, not an error (exit status 0): the hold is released at once so the seats go
 * back on sale, and the answer says so (or says when the hold lapses by itself if the release failed).
 */
async function declined(ctx: Ctx, held: Reservation, what: string): Promise<BookResult> {
  const seatList = held.seats.map((s) => s.seatNumber).join(', ');
  const released = await release(ctx, held.reservationId);
  const text = released
    ? `${what}. The hold on seat(s) ${seatList} was released; the seats are free again.`
    : `${what}. The hold on seat(s) ${seatList} could not be released just now; it lapses by itself at ${localTime(held.holdExpiresAt, { seconds: true, weekday: false })}.`;
  return ctx.print({ reservation: released ?? held, payment: null }, () => text);
}

/** Which of the seats are gone: the server names them (details.seatNumbers); else the map says. */
async function seatsTaken(ctx: Ctx, err: unknown, wanted: number[], scheduleId: number, call: { context: { queueToken: string } }): Promise<number[]> {
  const named = isServerError(err) ? err.data?.details?.seatNumbers : undefined;
  if (Array.isArray(named) && named.every((n) => typeof n === 'number')) return named as number[];
  const map = await ctx.client.concerts.seats.query({ scheduleId }, call).catch(() => undefined);
  return map ? map.seats.filter((s) => wanted.includes(s.seatNumber) && s.status !== 'AVAILABLE').map((s) => s.seatNumber) : [];
}

/**
 * After a payment that failed (a balance spent meanwhile, a place in line that lapsed, the API
 * out of reach): a hold that still stands is the buyer's until it lapses, so it is kept, and the
 * buyer is told how to pay it or let it go (the error itself follows). Nothing is said when the
 * hold is gone or cannot be read.
 */
async function sayHoldStands(ctx: Ctx, held: Reservation, err: unknown): Promise<void> {
  const now = await ctx.client.reservations.get.query({ reservationId: held.reservationId }).catch(() => undefined);
  if (now?.status !== 'HELD') return;
  const seats = now.seats.map((s) => s.seatNumber).join(', ');
  // Paying takes an ACTIVE place in line (the error's own advice says how to get one back).
  const readmit = ['TOKEN_EXPIRED', 'QUEUE_NOT_ACTIVE', 'TOKEN_INVALID', 'TOKEN_WRONG_CONCERT'].includes(appCodeOf(err) ?? '');
  ctx.note(
    `Not paid. Your hold on seat(s) ${seats} stands until ${localTime(now.holdExpiresAt, { seconds: true, weekday: false })}: concert pay ${now.reservationId} pays it${readmit ? ' once you are let in again' : ''}, concert cancel ${now.reservationId} gives the seats back.`,
  );
}

/** Cancels a hold; the cancelled reservation, or undefined when that failed (it then lapses by itself). */
async function release(ctx: Ctx, reservationId: string): Promise<Reservation | undefined> {
  // The command's own client is tied to Ctrl-C's signal, which may have fired: use one that is not.
  const api = ctx.clientFor({ ...(ctx.userId !== undefined ? { userId: ctx.userId } : {}), ...(ctx.userToken ? { userToken: ctx.userToken } : {}) }, { timeoutMs: 5_000 });
  return api.reservations.cancel.mutate({ reservationId }).catch(() => undefined);
}
