import type { Command } from 'commander';
import { id } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { localTime, table } from '../format.ts';
import type { Schedule } from '../types.ts';

export function register(program: Command): void {
  man(
    program
      .command('schedules')
      .description('List the shows of a concert that still have seats (every show with --all).')
      .argument('<concertId>', 'the concert', id('concertId'))
      .option('--all', 'include sold-out shows')
      .action(act(schedulesCommand)),
    [
      ['concert schedules 1', 'the shows of concert 1 you can still book'],
      ['concert schedules 1 --all --json', 'every show, as JSON'],
    ],
  );
}

/** `concert schedules <concertId>`: the shows of a concert with seats left (all of them with --all). */
export async function schedulesCommand(ctx: Ctx, concertId: number, opts: { all?: boolean } = {}): Promise<{ concertId: number; schedules: Schedule[] }> {
  ctx.know({ concertId });
  const [concert, result] = await Promise.all([
    ctx.client.concerts.get.query({ concertId }),
    ctx.client.concerts.schedules.query({ concertId, includeSoldOut: opts.all === true }),
  ]);
  return ctx.print(result, (c) => {
    const head = `${c.bold(concert.title)}${concert.venue ? ` · ${concert.venue}` : ''}`;
    if (result.schedules.length === 0) return `${head}\n${opts.all ? 'No shows.' : noneBookable(ctx, concert.schedules, concertId)}`;
    return `${head}\n${scheduleTable(ctx, result.schedules)}`;
  });
}

/**
 * Why no show is listed: `concerts.get` still lists the sold-out and started ones (not the
 * cancelled). A concert whose every show was cancelled was said to be sold out, and --all then
 * listed nothing.
 */
function noneBookable(ctx: Ctx, all: Schedule[], concertId: number): string {
  if (all.length === 0) return 'No shows.';
  const now = ctx.now();
  const started = all.filter((s) => s.startsAt <= now).length;
  const why = started === 0 ? 'is sold out' : started === all.length ? 'has started' : 'is sold out or has started';
  return `Every show ${why} (see them all: concert schedules ${concertId} --all).`;
}

export function scheduleTable(ctx: Ctx, schedules: Schedule[]): string {
  const now = ctx.now();
  const c = ctx.c;
  return table(
    c,
    ['schedule', 'starts', 'booking', 'seats left'],
    schedules.map((s) => [
      s.scheduleId,
      localTime(s.startsAt),
      s.bookingOpensAt > now ? c.yellow(`opens ${localTime(s.bookingOpensAt)}`) : s.startsAt <= now ? c.red('closed') : c.green('open'),
      // A started show has nothing to sell (the server counts 0 available), sold out or not: it
      // read "sold out (5)" with four seats unsold (an outside review).
      s.startsAt <= now ? c.dim('-') : s.availableSeats === 0 ? c.red(`sold out (${s.totalSeats})`) : `${s.availableSeats} of ${s.totalSeats}`,
    ]),
    { align: ['right', 'left', 'left', 'right'] },
  );
}
