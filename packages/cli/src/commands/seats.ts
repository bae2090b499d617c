import type { Command } from 'commander';
import { count, id } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { renderSeatMap } from '../seatmap.ts';
import type { SeatMap } from '../types.ts';

export function register(program: Command): void {
  man(
    program
      .command('seats')
      .description(
        "Show the seat map of a show: rows of seats coloured by status (○ available, ◐ held, ● sold), each marked with its grade, then a legend with the price of each grade and how many seats are left. Needs an ACTIVE place in the concert's waiting room (concert queue join <concertId> --wait).",
      )
      .argument('<scheduleId>', 'the show', id('scheduleId'))
      .option('--cols <n>', 'seats per row of the map', count('--cols'), 10)
      .action(act(seatsCommand)),
    [
      ['concert --user 1 seats 3', 'the map of show 3'],
      ['concert --user 1 --json seats 3 \\\n| jq \'[.seats[] | select(.status == "AVAILABLE") | .seatNumber]\'', 'the free seats, for a script'],
    ],
  );
}

/** `concert seats <scheduleId>`: the seat map; needs an ACTIVE place in the concert's waiting room. */
export async function seatsCommand(ctx: Ctx, scheduleId: number, opts: { cols?: number } = {}): Promise<SeatMap> {
  ctx.requireUser();
  ctx.know({ scheduleId });
  const schedule = await ctx.client.concerts.schedule.query({ scheduleId });
  ctx.know({ concertId: schedule.concertId });
  const [map, concert] = await Promise.all([
    ctx.client.concerts.seats.query({ scheduleId }, ctx.tokenCall(schedule.concertId)),
    ctx.client.concerts.get.query({ concertId: schedule.concertId }),
  ]);
  return ctx.print(map, (c) => renderSeatMap(map, c, { title: concert.title, ...(opts.cols ? { cols: opts.cols } : {}) }));
}
