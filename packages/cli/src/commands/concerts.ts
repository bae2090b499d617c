import type { Command } from 'commander';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { table } from '../format.ts';
import type { ConcertSummary } from '../types.ts';

export function register(program: Command): void {
  man(program.command('concerts').description('List the concerts on sale.').action(act(concertsCommand)), [['concert concerts', 'what is on sale']]);
}

/** `concert concerts`: what is on sale. */
export async function concertsCommand(ctx: Ctx): Promise<ConcertSummary[]> {
  const list = await ctx.client.concerts.list.query({});
  return ctx.print(list, (c) =>
    list.length === 0
      ? 'No concerts yet. An operator can add some: concert admin seed-demo'
      : table(c, ['id', 'title', 'venue', 'shows'], list.map((x) => [x.concertId, x.title, x.venue, x.scheduleCount]), { align: ['right', 'left', 'left', 'right'] }),
  );
}
