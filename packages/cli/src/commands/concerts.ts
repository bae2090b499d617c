import type { Command } from 'commander';
import { pageLimit } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { table } from '../format.ts';
import { allPages, onePage, type PageOpts, pageInput, morePage } from '../pages.ts';
import type { ConcertPage, ConcertSummary } from '../types.ts';

export function register(program: Command): void {
  man(
    program
      .command('concerts')
      .description('List the concerts on sale (all of them; --limit or --cursor for one page).')
      .option('--limit <n>', 'one page of this many (1 to 100)', pageLimit)
      .option('--cursor <cursor>', 'the next page, from the previous answer')
      .action(act(concertsCommand)),
    [
      ['concert concerts', 'what is on sale'],
      ['concert --json concerts --limit 20', 'one page: { items, nextCursor }'],
    ],
  );
}

/** `concert concerts [--limit N] [--cursor C]`: what is on sale; every page unless one is asked for. */
export async function concertsCommand(ctx: Ctx, opts: PageOpts = {}): Promise<ConcertSummary[] | ConcertPage> {
  const page = onePage(opts) ? await ctx.client.concerts.list.query(pageInput(opts)) : undefined;
  const list = page ? page.items : await allPages((p) => ctx.client.concerts.list.query(p));
  return ctx.print(page ?? list, (c) =>
    list.length === 0
      ? 'No concerts yet. An operator can add some: concert admin seed-demo'
      : table(c, ['id', 'title', 'venue', 'shows'], list.map((x) => [x.concertId, x.title, x.venue, x.scheduleCount]), { align: ['right', 'left', 'left', 'right'] }) +
        morePage('concerts', opts, page?.nextCursor),
  );
}
