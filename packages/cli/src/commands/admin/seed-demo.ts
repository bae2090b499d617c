import type { Command } from 'commander';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { fields } from '../../format.ts';

export function register(admin: Command): void {
  man(admin.command('seed-demo').description('Three bookable demo concerts and five funded users (once per database).').action(act(adminSeedDemoCommand)), [
    ['concert --admin-key $KEY admin seed-demo', 'demo data'],
  ]);
}

/** `concert admin seed-demo`: three bookable concerts and five funded users, once per database. */
export async function adminSeedDemoCommand(ctx: Ctx) {
  ctx.requireAdmin();
  const seeded = await ctx.client.admin.seedDemo.mutate({});
  return ctx.print(seeded, (c) =>
    fields(c, [
      ['concerts', seeded.concertIds.join(', ')],
      ['users', seeded.userIds.join(', ')],
    ]) + `\nTry: concert --user ${seeded.userIds[0]} book --concert ${seeded.concertIds[0]}`,
  );
}
