import type { Command } from 'commander';
import { count, id, isoTime } from '../../args.ts';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { UsageError } from '../../errors.ts';
import { type Colors, duration, fields, localTime } from '../../format.ts';
import type { QueueStats } from '../../types.ts';

export function register(admin: Command): void {
  const queue = admin.command('queue').description("A concert's waiting room.");
  man(
    queue
      .command('stats')
      .description('Waiting, active, the limits, and the admission rate.')
      .argument('<concertId>', 'the concert', id('concertId'))
      .action(act(adminQueueStatsCommand)),
    [['concert --admin-key $KEY admin queue stats 1', 'how the line is moving']],
  );
  man(
    queue
      .command('config')
      .description('Tune admission: how many are ACTIVE at once, for how long, when an idle waiter is dropped; pause and resume.')
      .argument('<concertId>', 'the concert', id('concertId'))
      // The server's ranges (ZQueueConfigureInput), checked here whole: past the top they came back INVALID_INPUT, exit 1.
      .option('--max-active <n>', 'ACTIVE at once (1 to 1000000)', count('--max-active', 1, 1_000_000))
      .option('--active-ttl <s>', 'seconds an ACTIVE place lasts (1 to 86400)', count('--active-ttl', 1, 86_400))
      .option('--idle-timeout <s>', 'seconds before a waiter who stopped polling is dropped (1 to 86400)', count('--idle-timeout', 1, 86_400))
      .option('--pause', 'stop admitting (places are kept)')
      .option('--resume', 'admit again')
      .option('--opens-at <iso>', 'open the line at this time; whoever enters before it is pre-queued, then shuffled at the opening', isoTime)
      .option('--open-now', 'remove the opening time: the line opens now (a pre-queue is shuffled ahead of later arrivals)')
      .option('--by-seats', 'admit a fan only while a seat is left for it: the last seats, and refunded ones, go to the head of the line')
      .option('--by-slots', 'admit whenever a slot is free (the default)')
      .action(act(adminQueueConfigCommand)),
    [
      ['concert --admin-key $KEY admin queue config 1 --max-active 50 \\\n--active-ttl 300', 'a narrower, quicker gate'],
      ['concert --admin-key $KEY admin queue config 1 --pause', 'hold everyone where they are'],
      ['concert --admin-key $KEY admin queue config 1 --by-seats', 'the last seats go in line order'],
      ['concert --admin-key $KEY admin queue config 1 \\\n--opens-at 2026-12-24T20:00:00+09:00', 'a pre-queue until 8 pm in Seoul'],
    ],
  );
}

/** `concert admin queue stats <concertId>`. */
export async function adminQueueStatsCommand(ctx: Ctx, concertId: number): Promise<QueueStats> {
  ctx.requireAdmin();
  const s = await ctx.client.admin.queue.stats.query({ concertId });
  return ctx.print(s, (c) => renderQueueStats(c, s, ctx.now()));
}

export interface QueueConfigOptions {
  maxActive?: number;
  activeTtl?: number;
  idleTimeout?: number;
  pause?: boolean;
  resume?: boolean;
  opensAt?: Date;
  openNow?: boolean;
  bySeats?: boolean;
  bySlots?: boolean;
}

/** `concert admin queue config <concertId> [...]`: tune admission; with no flag it shows the settings. */
export async function adminQueueConfigCommand(ctx: Ctx, concertId: number, opts: QueueConfigOptions = {}): Promise<QueueStats> {
  ctx.requireAdmin();
  if (opts.pause && opts.resume) throw new UsageError('Pass --pause or --resume, not both');
  if (opts.opensAt && opts.openNow) throw new UsageError('Pass --opens-at or --open-now, not both');
  if (opts.bySeats && opts.bySlots) throw new UsageError('Pass --by-seats or --by-slots, not both');
  const patch = {
    ...(opts.maxActive !== undefined ? { maxActive: opts.maxActive } : {}),
    ...(opts.activeTtl !== undefined ? { activeTtlSeconds: opts.activeTtl } : {}),
    ...(opts.idleTimeout !== undefined ? { idleTimeoutSeconds: opts.idleTimeout } : {}),
    ...(opts.pause ? { paused: true } : opts.resume ? { paused: false } : {}),
    ...(opts.opensAt ? { opensAt: opts.opensAt } : opts.openNow ? { opensAt: null } : {}),
    ...(opts.bySeats ? { admitBySeats: true } : opts.bySlots ? { admitBySeats: false } : {}),
  };
  const s = await ctx.client.admin.queue.configure.mutate({ concertId, ...patch });
  return ctx.print(s, (c) => renderQueueStats(c, s, ctx.now()));
}

const STATES: Record<QueueStats['state'], (c: Colors) => string> = {
  PRE_QUEUE: (c) => c.yellow('PRE_QUEUE: not open yet; entrants are pre-queued'),
  OPEN: (c) => c.green('OPEN: admitting'),
  PAUSED: (c) => c.yellow('PAUSED by an operator'),
  ALL_HELD: (c) => c.yellow('ALL_HELD: no seat available (all held, or booking not open yet); admitting again when one frees up or booking opens'),
  SOLD_OUT: (c) => c.red('SOLD_OUT: nothing available or held'),
};

/**
 * A pause under a state that outranks it (SOLD_OUT, PRE_QUEUE): the state alone hid it, and an
 * operator who paused a pre-queue saw nothing of it until the opening did not admit anyone.
 */
export function alsoPaused(c: Colors, s: Pick<QueueStats, 'state' | 'paused'>): string {
  return s.paused && s.state !== 'PAUSED' ? c.yellow(' · paused: nobody is admitted until resumed') : '';
}

/**
 * The opening time as it stands at `now`: to come (and in how long), or passed ("opens 2020-01-01"
 * read as one to come). `opens` puts the word before a time to come, where no label says it.
 */
export function opening(opensAt: Date, now: Date, opts: { weekday?: boolean; opens?: boolean } = {}): string {
  const at = localTime(opensAt, { seconds: true, weekday: opts.weekday ?? true });
  return opensAt > now ? `${opts.opens ? 'opens ' : ''}${at} (in ${duration(opensAt.getTime() - now.getTime())})` : `opened ${at}`;
}

export function renderQueueStats(c: Colors, s: QueueStats, now: Date = new Date()): string {
  return fields(c, [
    ['concert', String(s.concertId)],
    ['state', `${STATES[s.state](c)}${alsoPaused(c, s)}`],
    ['opens', s.opensAt ? opening(s.opensAt, now) : 'open'],
    ['pre-queued', String(s.preQueued)],
    ['waiting', String(s.waiting)],
    ['active', `${s.active} of ${s.maxActive}`],
    ['admits', s.admitBySeats ? 'while a seat is left for each fan (--by-seats)' : 'whenever a slot is free'],
    ['active ttl', `${s.activeTtlSeconds}s`],
    ['idle timeout', `${s.idleTimeoutSeconds}s`],
    ['admitted', `${s.admittedTotal} in all, ${s.admittedLastMinute} in the last minute`],
    ['dropped idle', String(s.droppedIdleTotal)],
  ]);
}
