import type { Ctx } from '../context.ts';
import { localTime, table } from '../format.ts';
import { renderSeatMap } from '../seatmap.ts';
import type { ConcertSummary, Schedule, SeatMap } from '../types.ts';

/** `concert concerts`: what is on sale. */
export async function concertsCommand(ctx: Ctx): Promise<ConcertSummary[]> {
  const list = await ctx.client.concerts.list.query({});
  return ctx.print(list, (c) =>
    list.length === 0
      ? 'No concerts yet. An operator can add some: concert admin seed-demo'
      : table(c, ['id', 'title', 'venue', 'shows'], list.map((x) => [x.concertId, x.title, x.venue, x.scheduleCount]), { align: ['right', 'left', 'left', 'right'] }),
  );
}

/** `concert schedules <concertId>`: the shows of a concert with seats left (all of them with --all). */
export async function schedulesCommand(ctx: Ctx, concertId: number, opts: { all?: boolean } = {}): Promise<{ concertId: number; schedules: Schedule[] }> {
  const [concert, result] = await Promise.all([
    ctx.client.concerts.get.query({ concertId }),
    ctx.client.concerts.schedules.query({ concertId, includeSoldOut: opts.all === true }),
  ]);
  return ctx.print(result, (c) => {
    const head = `${c.bold(concert.title)}${concert.venue ? ` · ${concert.venue}` : ''}`;
    if (result.schedules.length === 0) return `${head}\n${opts.all ? 'No shows.' : 'Every show is sold out (see them all with --all).'}`;
    return `${head}\n${scheduleTable(ctx, result.schedules)}`;
  });
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
      s.availableSeats === 0 ? c.red(`sold out (${s.totalSeats})`) : `${s.availableSeats} of ${s.totalSeats}`,
    ]),
    { align: ['right', 'left', 'left', 'right'] },
  );
}

/** `concert seats <scheduleId>`: the seat map; needs an ACTIVE place in the concert's waiting room. */
export async function seatsCommand(ctx: Ctx, scheduleId: number, opts: { cols?: number } = {}): Promise<SeatMap> {
  ctx.requireUser();
  const schedule = await ctx.client.concerts.schedule.query({ scheduleId });
  const [map, concert] = await Promise.all([
    ctx.client.concerts.seats.query({ scheduleId }, ctx.tokenCall(schedule.concertId)),
    ctx.client.concerts.get.query({ concertId: schedule.concertId }),
  ]);
  return ctx.print(map, (c) => renderSeatMap(map, c, { title: concert.title, ...(opts.cols ? { cols: opts.cols } : {}) }));
}
