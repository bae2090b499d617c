import type { Command } from 'commander';
import { id } from '../../args.ts';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { localTime, table, timeLeft, won } from '../../format.ts';
import type { HoldSummary } from '../../types.ts';

export function register(admin: Command): void {
  man(
    admin
      .command('holds')
      .description('Seats held right now, and how long each hold has left.')
      .option('--concert <id>', 'only this concert', id('--concert'))
      .option('--schedule <id>', 'only this show', id('--schedule'))
      .action(act(adminHoldsCommand)),
    [
      ['concert --admin-key $KEY admin holds --concert 1', 'holds on concert 1'],
      ['watch -n 2 concert --admin-key $KEY admin holds', 'watch them'],
    ],
  );
}

/** `concert admin holds [--concert ID] [--schedule ID]`: live holds and how long each has left. */
export async function adminHoldsCommand(ctx: Ctx, opts: { concert?: number; schedule?: number } = {}): Promise<HoldSummary[]> {
  ctx.requireAdmin();
  const holds = await ctx.client.admin.holds.list.query({ ...(opts.concert ? { concertId: opts.concert } : {}), ...(opts.schedule ? { scheduleId: opts.schedule } : {}) });
  const now = ctx.now();
  return ctx.print(holds, (c) =>
    holds.length === 0
      ? 'No seats are held right now.'
      : table(
          c,
          ['reservation', 'user', 'schedule', 'seats', 'total', 'expires', 'left'],
          holds.map((h) => [h.reservationId, h.userId, h.scheduleId, h.seatNumbers.join(' '), won(h.totalPrice), localTime(h.holdExpiresAt, { seconds: true, weekday: false }), timeLeft(h.holdExpiresAt, now)]),
          { align: ['left', 'right', 'right', 'left', 'right', 'left', 'right'] },
        ) + `\n${holds.length} hold(s), ${holds.reduce((n, h) => n + h.seatNumbers.length, 0)} seat(s)`,
  );
}
