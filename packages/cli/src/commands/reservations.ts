import { ZHoldInput, ZReservationStatus } from '@concert/core/schemas';
import type { Ctx } from '../context.ts';
import { UsageError } from '../errors.ts';
import { type Colors, fields, localTime, statusColor, table, timeLeft, won } from '../format.ts';
import type { PaymentResult, Reservation } from '../types.ts';

/** `concert hold <scheduleId> <seat...>`: hold 1 to 4 seats for HOLD_TTL_SECONDS; all or none. */
export async function holdCommand(ctx: Ctx, scheduleId: number, seatNumbers: number[], opts: { idempotencyKey?: string } = {}): Promise<Reservation> {
  ctx.requireUser();
  const input = { scheduleId, seatNumbers, idempotencyKey: ctx.idempotencyKey(opts.idempotencyKey) };
  const parsed = ZHoldInput.safeParse(input);
  if (!parsed.success) throw new UsageError(`Seats: ${parsed.error.issues[0]?.message ?? 'not valid'} (hold 1 to 4 distinct seats)`);
  const schedule = await ctx.client.concerts.schedule.query({ scheduleId });
  const r = await ctx.client.reservations.hold.mutate(input, ctx.tokenCall(schedule.concertId));
  return ctx.print(r, (c) => `${renderReservation(ctx, c, r)}\n${c.green(`Held. Pay before it lapses: concert pay ${r.reservationId}`)}`);
}

/** `concert pay <reservationId>`: pay a hold from the balance; the queue token is spent. */
export async function payCommand(ctx: Ctx, reservationId: string, opts: { idempotencyKey?: string } = {}): Promise<PaymentResult> {
  const user = ctx.requireUser();
  const idempotencyKey = ctx.idempotencyKey(opts.idempotencyKey);
  const reservation = await ctx.client.reservations.get.query({ reservationId: uuid(reservationId) });
  const payment = await ctx.client.payments.pay.mutate({ reservationId, idempotencyKey }, ctx.tokenCall(reservation.concertId));
  if (payment.queueTokenExpired) ctx.session.delete(ctx.api, user, reservation.concertId);
  return ctx.print(payment, (c) => renderPayment(c, payment, reservation));
}

/** `concert cancel <reservationId>`: give a hold back; its seats are free at once. */
export async function cancelCommand(ctx: Ctx, reservationId: string): Promise<Reservation> {
  ctx.requireUser();
  const r = await ctx.client.reservations.cancel.mutate({ reservationId: uuid(reservationId) });
  return ctx.print(r, (c) => `${renderReservation(ctx, c, r)}\nCancelled; the seats are free again.`);
}

/** `concert reservation <reservationId>`. */
export async function reservationCommand(ctx: Ctx, reservationId: string): Promise<Reservation> {
  ctx.requireUser();
  const r = await ctx.client.reservations.get.query({ reservationId: uuid(reservationId) });
  return ctx.print(r, (c) => renderReservation(ctx, c, r));
}

/** `concert reservations [--status S]`: the caller's reservations, newest first. */
export async function reservationsCommand(ctx: Ctx, opts: { status?: string } = {}): Promise<Reservation[]> {
  ctx.requireUser();
  let status;
  if (opts.status !== undefined) {
    const parsed = ZReservationStatus.safeParse(opts.status.toUpperCase());
    if (!parsed.success) throw new UsageError(`--status must be one of ${ZReservationStatus.options.join(', ')}`);
    status = parsed.data;
  }
  const list = await ctx.client.reservations.mine.query(status ? { status } : {});
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

export function renderReservation(ctx: Ctx, c: Colors, r: Reservation): string {
  const rows: Array<[string, string]> = [
    ['reservation', r.reservationId],
    ['concert', `${r.concertTitle} (concert ${r.concertId})`],
    ['show', `${localTime(r.startsAt)} (schedule ${r.scheduleId})`],
    ['seats', r.seats.map((s) => `${s.seatNumber} ${s.grade} ${won(s.price)}`).join(', ')],
    ['total', c.bold(won(r.totalPrice))],
    ['status', statusColor(c, r.status)],
  ];
  if (r.status === 'HELD') rows.push(['hold expires', `${localTime(r.holdExpiresAt, { seconds: true })} (${timeLeft(r.holdExpiresAt, ctx.now())})`]);
  if (r.paidAt) rows.push(['paid', localTime(r.paidAt, { seconds: true })]);
  return fields(c, rows);
}

export function renderPayment(c: Colors, p: PaymentResult, r: Reservation): string {
  return `${c.green(c.bold('Paid. Enjoy the show!'))}\n${fields(c, [
    ['payment', p.paymentId],
    ['reservation', p.reservationId],
    ['concert', `${r.concertTitle} · ${localTime(r.startsAt)}`],
    ['seats', r.seats.map((s) => `${s.seatNumber} ${s.grade}`).join(', ')],
    ['amount', won(p.amount)],
    ['balance', `${won(p.balanceBefore)} → ${won(p.balanceAfter)}`],
    ['paid at', localTime(p.paidAt, { seconds: true })],
  ])}`;
}

function uuid(id: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw new UsageError(`"${id}" is not a reservation id (a UUID)`);
  return id;
}
