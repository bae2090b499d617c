import type { Command } from 'commander';
import { count, id } from '../../args.ts';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { UsageError } from '../../errors.ts';
import { type Colors, fields } from '../../format.ts';
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
      .option('--max-active <n>', 'ACTIVE at once', count('--max-active'))
      .option('--active-ttl <s>', 'seconds an ACTIVE place lasts', count('--active-ttl'))
      .option('--idle-timeout <s>', 'seconds before a waiter who stopped polling is dropped', count('--idle-timeout'))
      .option('--pause', 'stop admitting (places are kept)')
      .option('--resume', 'admit again')
      .action(act(adminQueueConfigCommand)),
    [
      ['concert --admin-key $KEY admin queue config 1 --max-active 50 --active-ttl 300', 'a narrower, quicker gate'],
      ['concert --admin-key $KEY admin queue config 1 --pause', 'hold everyone where they are'],
    ],
  );
}

/** `concert admin queue stats <concertId>`. */
export async function adminQueueStatsCommand(ctx: Ctx, concertId: number): Promise<QueueStats> {
  ctx.requireAdmin();
  const s = await ctx.client.admin.queue.stats.query({ concertId });
  return ctx.print(s, (c) => renderQueueStats(c, s));
}

export interface QueueConfigOptions {
  maxActive?: number;
  activeTtl?: number;
  idleTimeout?: number;
  pause?: boolean;
  resume?: boolean;
}

/** `concert admin queue config <concertId> [...]`: tune admission; with no flag it shows the settings. */
export async function adminQueueConfigCommand(ctx: Ctx, concertId: number, opts: QueueConfigOptions = {}): Promise<QueueStats> {
  ctx.requireAdmin();
  if (opts.pause && opts.resume) throw new UsageError('Pass --pause or --resume, not both');
  const patch = {
    ...(opts.maxActive !== undefined ? { maxActive: opts.maxActive } : {}),
    ...(opts.activeTtl !== undefined ? { activeTtlSeconds: opts.activeTtl } : {}),
    ...(opts.idleTimeout !== undefined ? { idleTimeoutSeconds: opts.idleTimeout } : {}),
    ...(opts.pause ? { paused: true } : opts.resume ? { paused: false } : {}),
  };
  const s = await ctx.client.admin.queue.configure.mutate({ concertId, ...patch });
  return ctx.print(s, (c) => renderQueueStats(c, s));
}

export function renderQueueStats(c: Colors, s: QueueStats): string {
  return fields(c, [
    ['concert', String(s.concertId)],
    ['admission', s.paused ? c.yellow('PAUSED') : c.green('running')],
    ['waiting', String(s.waiting)],
    ['active', `${s.active} of ${s.maxActive}`],
    ['active ttl', `${s.activeTtlSeconds}s`],
    ['idle timeout', `${s.idleTimeoutSeconds}s`],
    ['admitted', `${s.admittedTotal} in all, ${s.admittedLastMinute} in the last minute`],
  ]);
}
