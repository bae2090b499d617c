import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ZCreateConcertInput, ZCreateUserInput } from '@concert/core/schemas';
import type { Ctx } from '../context.ts';
import { UsageError } from '../errors.ts';
import { type Colors, fields, localTime, table, timeLeft, won } from '../format.ts';
import type { AuditReport, HoldSummary, QueueStats, Reservation } from '../types.ts';
import { renderReservation } from './reservations.ts';

/** `concert admin users create <name> [--balance N]`. */
export async function adminCreateUserCommand(ctx: Ctx, name: string, opts: { balance?: number } = {}) {
  ctx.requireAdmin();
  const input = { name, ...(opts.balance !== undefined ? { initialBalance: opts.balance } : {}) };
  const parsed = ZCreateUserInput.safeParse(input);
  if (!parsed.success) throw new UsageError(`User: ${formatIssues(parsed.error.issues).map((i) => `${i.path || 'name'}: ${i.message}`).join('; ')}`);
  const u = await ctx.client.admin.users.create.mutate(parsed.data);
  return ctx.print(u, (c) => `Created user ${c.bold(String(u.userId))} (${u.name}) with ${won(u.balance)}.`);
}

/**
 * `concert admin concerts create --file concert.json`: the file is checked against the core's
 * ZCreateConcertInput before anything is sent, and every problem names its field
 * (`schedules[1].tiers[0].price`).
 */
export async function adminCreateConcertCommand(ctx: Ctx, file: string) {
  ctx.requireAdmin();
  const full = path.resolve(ctx.io.cwd, file);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (err) {
    throw new UsageError(`Cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const input = validateConcertFile(json, file);
  const created = await ctx.client.admin.concerts.create.mutate(input);
  return ctx.print(created, (c) =>
    [
      `Created concert ${c.bold(String(created.concertId))} "${input.title}".`,
      table(c, ['schedule', 'starts', 'seats'], created.schedules.map((s) => [s.scheduleId, localTime(s.startsAt), s.seatCount]), { align: ['right', 'left', 'right'] }),
    ].join('\n'),
  );
}

export function validateConcertFile(json: unknown, file = 'the file') {
  const parsed = ZCreateConcertInput.safeParse(json);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error.issues);
    throw new UsageError(
      `${file} is not a valid concert:\n${issues.map((i) => `  ${i.path || '(top level)'}: ${i.message}`).join('\n')}`,
      'See concert help admin concerts create for the format',
      issues,
    );
  }
  return parsed.data;
}

/** zod's issue paths as people write them: `schedules[0].tiers[1].price`. */
export function formatIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): Array<{ path: string; message: string }> {
  return issues.map((i) => ({
    path: i.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), ''),
    message: i.message,
  }));
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

/** `concert admin holds [--concert ID] [--schedule ID]`: live holds and how long each has left. */
export async function adminHoldsCommand(ctx: Ctx, opts: { concert?: number; schedule?: number } = {}): Promise<HoldSummary[]> {
  ctx.requireAdmin();
  const holds = await ctx.client.admin.holds.list.query({ ...(opts.concert ? { concertId: opts.concert } : {}), ...(opts.schedule ? { scheduleId: opts.schedule } : {}) });
  const now = ctx.now();
  return ctx.print(holds, (c) =>
    holds.length === 0
      ? 'No seats are held right now.'
      : table(
          c,
          ['reservation', 'user', 'schedule', 'seats', 'total', 'expires', 'left'],
          holds.map((h) => [h.reservationId, h.userId, h.scheduleId, h.seatNumbers.join(' '), won(h.totalPrice), localTime(h.holdExpiresAt, { seconds: true, weekday: false }), timeLeft(h.holdExpiresAt, now)]),
          { align: ['left', 'right', 'right', 'left', 'right', 'left', 'right'] },
        ) + `\n${holds.length} hold(s), ${holds.reduce((n, h) => n + h.seatNumbers.length, 0)} seat(s)`,
  );
}

/** `concert admin release <reservationId>`: cancel someone's hold; the seats are free at once. */
export async function adminReleaseCommand(ctx: Ctx, reservationId: string): Promise<Reservation> {
  ctx.requireAdmin();
  const r = await ctx.client.admin.holds.release.mutate({ reservationId });
  return ctx.print(r, (c) => `${renderReservation(ctx, c, r)}\nReleased.`);
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

/** `concert admin audit`: the invariants; exit status 1 when any is broken. */
export async function adminAuditCommand(ctx: Ctx): Promise<AuditReport> {
  ctx.requireAdmin();
  const a = await ctx.client.admin.audit.query({});
  ctx.print(a, (c) => renderAudit(c, a));
  if (!a.ok) ctx.exitCode = 1;
  return a;
}

export function renderAudit(c: Colors, a: AuditReport): string {
  const lines = a.checks.map((k) => `  ${k.ok ? c.green('✓') : c.red('✗')} ${k.name}: ${k.ok ? c.dim(k.detail) : c.red(k.detail)}`);
  return `${a.ok ? c.green(c.bold('Audit clean')) : c.red(c.bold('Audit FAILED'))}\n${lines.join('\n')}`;
}
