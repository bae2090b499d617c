import type { Command } from 'commander';
import { won as wonArg } from '../args.ts';
import { act, man } from '../command.ts';
import type { Ctx } from '../context.ts';
import { won } from '../format.ts';
import type { ChargeResult } from '../types.ts';

export function register(program: Command): void {
  man(
    program
      .command('charge')
      .description('Top up your balance (at most ₩1,000,000 at a time and ₩5,000,000 a month by default).')
      .argument('<amount>', 'won: 50000, 50,000 or ₩50,000', wonArg())
      .option('--idempotency-key <key>', 'reuse a key to retry safely: the money is added once')
      .action(act(chargeCommand)),
    [['concert --user 1 charge 200,000', 'add ₩200,000']],
  );
}

/** `concert charge <amount>`: top up the wallet. */
export async function chargeCommand(ctx: Ctx, amount: number, opts: { idempotencyKey?: string } = {}): Promise<ChargeResult> {
  ctx.requireUser();
  const r = await ctx.client.balance.charge.mutate({ amount, idempotencyKey: await ctx.idempotencyKey(opts.idempotencyKey) });
  return ctx.print(r, (c) => `Charged ${c.bold(won(r.charged))}; balance ${c.bold(won(r.balance))}.`);
}
