import type { Command } from 'commander';
import { id, seats } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { UsageError } from '../errors.ts';
import { localTime } from '../format.ts';
import { renderReservation } from '../views.ts';
import type { Reservation } from '../types.ts';

export function register(program: Command): void {
  man(
    program
      .command('hold')
      .description(
        'Hold 1 to 4 seats of a show, all of them or none, for a few minutes: HOLD_TTL_SECONDS on the server, 300 seconds (5 minutes) by default. Pay before the hold lapses, or its seats go back on sale. Needs an ACTIVE place in the waiting room.',
      )
      .argument('<scheduleId>', 'the show', id('scheduleId'))
      .argument('<seat...>', 'seat numbers, separated by spaces or commas', seats)
      .option('--idempotency-key <key>', 'reuse a key to retry safely: the same hold comes back, nothing is held twice')
      .action(act(holdCommand)),
    [
      ['concert --user 1 hold 3 12 13', 'hold seats 12 and 13 of show 3'],
      ['concert --user 1 --json hold 3 12,13 --idempotency-key my-retry-0001', 'a script that may retry'],
    ],
    'Fails with SEAT_UNAVAILABLE when any of the seats is taken, TICKET_LIMIT_EXCEEDED past 4 seats a show, TOKEN_INVALID without a place in line, QUEUE_NOT_ACTIVE while still waiting.',
  );
}

/** `concert hold <scheduleId> <seat...>`: hold 1 to 4 seats for HOLD_TTL_SECONDS (seconds; 300 by default); all or none. */
export async function holdCommand(ctx: Ctx, scheduleId: number, seatNumbers: number[], opts: { idempotencyKey?: string } = {}): Promise<Reservation> {
  ctx.requireUser();
  ctx.know({ scheduleId, seats: seatNumbers });
  const input = { scheduleId, seatNumbers, idempotencyKey: await ctx.idempotencyKey(opts.idempotencyKey) };
  const { ZHoldInput } = await import('@concert/core/schemas');
  const parsed = ZHoldInput.safeParse(input);
  if (!parsed.success) throw new UsageError(`Seats: ${parsed.error.issues[0]?.message ?? 'not valid'} (hold 1 to 4 distinct seats)`);
  const schedule = await ctx.client.concerts.schedule.query({ scheduleId });
  ctx.know({ concertId: schedule.concertId });
  const r = await ctx.client.reservations.hold.mutate(input, ctx.tokenCall(schedule.concertId));
  // Paying takes an ACTIVE place in line: when the turn ends before the hold, that is the deadline.
  const turnEnds = ctx.turnEndsAt(schedule.concertId);
  const next =
    turnEnds && turnEnds < r.holdExpiresAt
      ? `Held. Pay by ${localTime(turnEnds, { seconds: true, weekday: false })}: your turn in line ends then, before the hold does, and paying needs it: concert pay ${r.reservationId}`
      : `Held. Pay before it lapses: concert pay ${r.reservationId}`;
  return ctx.print(r, (c) => `${renderReservation(ctx, c, r)}\n${c.green(next)}`);
}
