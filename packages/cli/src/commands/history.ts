import type { Command } from 'commander';
import { pageLimit } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { localTime, table, won } from '../format.ts';
import type { History } from '../types.ts';
import { morePage, pageInput } from '../pages.ts';

export function register(program: Command): void {
  man(
    program
      .command('history')
      .description("Your wallet's ledger: charges, payments and refunds, newest first.")
      .option('--limit <n>', 'entries per page (1 to 100)', pageLimit)
      .option('--cursor <cursor>', 'the next page, from the previous answer')
      .action(act(historyCommand)),
    [['concert --user 1 history --limit 5', 'the last five entries']],
  );
}

/** `concert history [--limit N] [--cursor C]`: the wallet's ledger, newest first. */
export async function historyCommand(ctx: Ctx, opts: { limit?: number; cursor?: string } = {}): Promise<History> {
  ctx.requireUser();
  const h = await ctx.client.balance.history.query(pageInput(opts));
  return ctx.print(h, (c) => {
    if (h.entries.length === 0) return 'No wallet activity yet.';
    const t = table(
      c,
      ['when', 'kind', 'amount', 'balance after', 'reservation'],
      h.entries.map((e) => [localTime(e.createdAt, { seconds: true }), e.kind, e.amount < 0 ? c.red(won(e.amount)) : c.green(`+${won(e.amount)}`), won(e.balanceAfter), e.reservationId ?? '']),
      { align: ['left', 'left', 'right', 'right', 'left'] },
    );
    return t + morePage('history', opts, h.nextCursor);
  });
}
