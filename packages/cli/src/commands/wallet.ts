import type { Ctx } from '../context.ts';
import { UsageError } from '../errors.ts';
import { fields, localTime, table, won } from '../format.ts';
import type { Balance, ChargeResult, History } from '../types.ts';

/** `concert balance`. */
export async function balanceCommand(ctx: Ctx): Promise<Balance> {
  ctx.requireUser();
  const b = await ctx.client.balance.get.query({});
  return ctx.print(b, (c) => fields(c, [['user', String(b.userId)], ['balance', c.bold(won(b.balance))], ['updated', localTime(b.updatedAt, { seconds: true })]]));
}

/** `concert charge <amount>`: top up the wallet; `50000`, `50,000` and `₩50,000` all mean fifty thousand won. */
export async function chargeCommand(ctx: Ctx, amount: number, opts: { idempotencyKey?: string } = {}): Promise<ChargeResult> {
  ctx.requireUser();
  const r = await ctx.client.balance.charge.mutate({ amount, idempotencyKey: ctx.idempotencyKey(opts.idempotencyKey) });
  return ctx.print(r, (c) => `Charged ${c.bold(won(r.charged))}; balance ${c.bold(won(r.balance))}.`);
}

export function parseWon(text: string, opts: { allowZero?: boolean } = {}): number {
  const cleaned = text.trim().replace(/^₩/, '').replace(/원$/, '').replace(/[,_\s]/g, '');
  const min = opts.allowZero ? 0 : 1;
  if (!/^\d+$/.test(cleaned) || Number(cleaned) < min || !Number.isSafeInteger(Number(cleaned))) {
    throw new UsageError(`The amount must be a ${opts.allowZero ? 'non-negative' : 'positive'} whole number of won, not "${text}"`);
  }
  return Number(cleaned);
}

/** `concert history [--limit N] [--cursor C]`: the wallet's ledger, newest first. */
export async function historyCommand(ctx: Ctx, opts: { limit?: number; cursor?: string } = {}): Promise<History> {
  ctx.requireUser();
  const h = await ctx.client.balance.history.query({ ...(opts.limit ? { limit: opts.limit } : {}), ...(opts.cursor ? { cursor: opts.cursor } : {}) });
  return ctx.print(h, (c) => {
    if (h.entries.length === 0) return 'No wallet activity yet.';
    const t = table(
      c,
      ['when', 'kind', 'amount', 'balance after', 'reservation'],
      h.entries.map((e) => [localTime(e.createdAt, { seconds: true }), e.kind, e.amount < 0 ? c.red(won(e.amount)) : c.green(`+${won(e.amount)}`), won(e.balanceAfter), e.reservationId ?? '']),
      { align: ['left', 'left', 'right', 'right', 'left'] },
    );
    return h.nextCursor ? `${t}\nMore: concert history --cursor ${h.nextCursor}` : t;
  });
}
