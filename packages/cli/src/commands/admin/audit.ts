import type { Command } from 'commander';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import type { AuditReport } from '../../types.ts';
import { renderAudit } from '../../views.ts';

export function register(admin: Command): void {
  man(admin.command('audit').description('Check the invariants: no seat sold twice, balances equal ledgers, and more. Exit status 1 when one fails.').action(act(adminAuditCommand)), [
    ['concert --admin-key $KEY admin audit', 'is everything consistent?'],
  ]);
}

/** `concert admin audit`: the invariants; exit status 1 when any is broken. */
export async function adminAuditCommand(ctx: Ctx): Promise<AuditReport> {
  ctx.requireAdmin();
  const a = await ctx.client.admin.audit.query({});
  ctx.print(a, (c) => renderAudit(c, a));
  if (!a.ok) ctx.exitCode = 1;
  return a;
}
