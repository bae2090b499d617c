import type { Command } from 'commander';
import { id } from '../../args.ts';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import type { ScheduleCancelResult } from '../../types.ts';

export function register(admin: Command): void {
  const schedules = admin.command('schedules').description('Shows.');
  man(
    schedules
      .command('cancel')
      .description('Cancel a show: every paid reservation is refunded, every hold released, the show is no longer listed or bookable.')
      .argument('<scheduleId>', 'the show', id('scheduleId'))
      .action(act(adminCancelScheduleCommand)),
    [['concert --admin-key $KEY admin schedules cancel 3', 'cancel show 3 and refund its buyers']],
    'Safe to run again (after a crash, or by two operators at once): each reservation is refunded once; a rerun reports only what it did.',
  );
}

/** `concert admin schedules cancel <scheduleId>`. */
export async function adminCancelScheduleCommand(ctx: Ctx, scheduleId: number): Promise<ScheduleCancelResult> {
  ctx.requireAdmin();
  const r = await ctx.client.admin.schedules.cancel.mutate({ scheduleId });
  return ctx.print(r, (c) => `${c.bold(`Show ${r.scheduleId} is cancelled.`)} Refunded ${r.refunded} reservation(s), released ${r.released} hold(s).`);
}
