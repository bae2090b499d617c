import type { Command } from 'commander';
import { won as wonArg } from '../../args.ts';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { UsageError } from '../../errors.ts';
import { won } from '../../format.ts';
import { formatIssues } from './concerts.ts';

export function register(admin: Command): void {
  const users = admin.command('users').description('Users.');
  man(
    users
      .command('create')
      .description('Create a user, optionally with a starting balance.')
      .argument('<name...>', "the user's name (several words need no quotes)")
      .option('--balance <won>', 'starting balance', wonArg({ allowZero: true }))
      .action(act((ctx, name: string[], o: { balance?: number }) => adminCreateUserCommand(ctx, name.join(' '), o))),
    [
      ['concert --admin-key $KEY admin users create Kim Min-ji --balance 500000', 'a fan with ₩500,000'],
      ['concert --admin-key $KEY --json admin users create "Lee Ji-eun" | jq .userId', 'the new id, for a script'],
    ],
  );
}

/** `concert admin users create <name...> [--balance N]`. */
export async function adminCreateUserCommand(ctx: Ctx, name: string, opts: { balance?: number } = {}) {
  ctx.requireAdmin();
  const input = { name, ...(opts.balance !== undefined ? { initialBalance: opts.balance } : {}) };
  const { ZCreateUserInput } = await import('@concert/core/schemas');
  const parsed = ZCreateUserInput.safeParse(input);
  if (!parsed.success) throw new UsageError(`User: ${formatIssues(parsed.error.issues).map((i) => `${i.path || 'name'}: ${i.message}`).join('; ')}`);
  const u = await ctx.client.admin.users.create.mutate(parsed.data);
  return ctx.print(u, (c) => `Created user ${c.bold(String(u.userId))} (${u.name}) with ${won(u.balance)}.`);
}
