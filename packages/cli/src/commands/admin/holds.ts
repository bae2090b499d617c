import type { Command } from 'commander';
import { id, pageLimit } from '../../args.ts';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { localTime, table, timeLeft, won } from '../../format.ts';
import { allPages, onePage, type PageOpts, pageInput, morePage } from '../../pages.ts';
import type { HoldPage, HoldSummary } from '../../types.ts';

export function register(admin: Command): void {
  man(
    admin
      .command('holds')
      .description('Seats held right now, and how long each hold has left (all of them; --limit or --cursor for one page).')
      .option('--concert <id>', 'only this concert', id('--concert'))
      .option('--schedule <id>', 'only this show', id('--schedule'))
      .option('--limit <n>', 'one page of this many (1 to 100)', pageLimit)
      .option('--cursor <cursor>', 'the next page, from the previous answer')
      .action(act(adminHoldsCommand)),
    [
      ['concert --admin-key $KEY admin holds --concert 1', 'holds on concert 1'],
      ['watch -n 2 concert --admin-key $KEY admin holds', 'watch them'],
    ],
  );
}

/** `concert admin holds [--concert ID] [--schedule ID] [--limit N] [--cursor C]`: live holds and how long each has left. */
export async function adminHoldsCommand(ctx: Ctx, opts: { concert?: number; schedule?: number } & PageOpts = {}): Promise<HoldSummary[] | HoldPage> {
  ctx.requireAdmin();
  const filter = { ...(opts.concert ? { concertId: opts.concert } : {}), ...(opts.schedule ? { scheduleId: opts.schedule } : {}) };
  const page = onePage(opts) ? await ctx.client.admin.holds.list.query({ ...filter, ...pageInput(opts) }) : undefined;
  const holds = page ? page.items : await allPages((p) => ctx.client.admin.holds.list.query({ ...filter, ...p }));
  const now = ctx.now();
  const more = morePage(`admin holds${opts.concert ? ` --concert ${opts.concert}` : ''}${opts.schedule ? ` --schedule ${opts.schedule}` : ''}`, opts, page?.nextCursor);
  return ctx.print(page ?? holds, (c) =>
    holds.length === 0
      ? 'No seats are held right now.'
      : table(
          c,
          ['reservation', 'user', 'schedule', 'seats', 'total', 'expires', 'left'],
          holds.map((h) => [h.reservationId, h.userId, h.scheduleId, h.seatNumbers.join(' '), won(h.totalPrice), localTime(h.holdExpiresAt, { seconds: true, weekday: false }), timeLeft(h.holdExpiresAt, now)]),
          { align: ['left', 'right', 'right', 'left', 'right', 'left', 'right'] },
        ) + `\n${holds.length} hold(s), ${holds.reduce((n, h) => n + h.seatNumbers.length, 0)} seat(s)${page ? ' on this page' : ''}${more}`,
  );
}
