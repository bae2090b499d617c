import type { Command } from 'commander';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { fields, localTime, won } from '../format.ts';
import type { Balance } from '../types.ts';

export function register(program: Command): void {
  man(program.command('balance').description('Your prepaid balance, in won.').action(act(balanceCommand)), [['concert --user 1 balance', 'how much you can spend']]);
}

/** `concert balance`. */
export async function balanceCommand(ctx: Ctx): Promise<Balance> {
  ctx.requireUser();
  const b = await ctx.client.balance.get.query({});
  return ctx.print(b, (c) => fields(c, [['user', String(b.userId)], ['balance', c.bold(won(b.balance))], ['updated', localTime(b.updatedAt, { seconds: true })]]));
}
