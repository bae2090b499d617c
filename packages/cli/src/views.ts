import type { Ctx } from './context.ts';
import { type Colors, fields, localTime, statusColor, timeLeft, won } from './format.ts';
import type { AuditReport, PaymentResult, Reservation } from './types.ts';

// Renderings shared by several commands.

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
  // The advice only while it can be followed: a paid, refunded or lapsed offer read "pay it" too.
  if (r.source === 'WAITLIST') rows.push(['source', r.status === 'HELD' ? 'waitlist offer (pay it without a queue token)' : 'waitlist offer']);
  if (r.paidAt) rows.push(['paid', localTime(r.paidAt, { seconds: true })]);
  if (r.refundedAt) rows.push(['refunded', localTime(r.refundedAt, { seconds: true })]);
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

export function renderAudit(c: Colors, a: AuditReport): string {
  const lines = a.checks.map((k) => `  ${k.ok ? c.green('✓') : c.red('✗')} ${k.name}: ${k.ok ? c.dim(k.detail) : c.red(k.detail)}`);
  return `${a.ok ? c.green(c.bold('Audit clean')) : c.red(c.bold('Audit FAILED'))}\n${lines.join('\n')}`;
}
