import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { act, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { UsageError } from '../../errors.ts';
import { localTime, table } from '../../format.ts';

export function register(admin: Command): void {
  const concerts = admin.command('concerts').description('Concerts.');
  man(
    concerts
      .command('create')
      .description("Create a concert and its shows from a JSON file, checked against the core's ZCreateConcertInput first;\nevery problem names its field (schedules[0].tiers[1].price).")
      .requiredOption('--file <path>', 'the concert, as JSON')
      .action(act((ctx, o: { file: string }) => adminCreateConcertCommand(ctx, o.file))),
    [['concert --admin-key $KEY admin concerts create --file concert.json', 'create a concert']],
    `The file:
{
  "title": "Aurora Live in Seoul",
  "venue": "Olympic Hall",
  "schedules": [
    { "startsAt": "2026-12-24T19:00:00+09:00", "bookingOpensAt": "2026-12-01T10:00:00+09:00", "seatCount": 50,
      "tiers": [ { "grade": "VIP", "price": 150000, "fromSeat": 1, "toSeat": 10 },
                 { "grade": "R", "price": 100000, "fromSeat": 11, "toSeat": 50 } ] }
  ]
}
Tiers must cover every seat exactly once; without tiers every seat is grade R at ₩100,000.`,
  );
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
  const input = await validateConcertFile(json, file);
  const created = await ctx.client.admin.concerts.create.mutate(input);
  return ctx.print(created, (c) =>
    [
      `Created concert ${c.bold(String(created.concertId))} "${input.title}".`,
      table(c, ['schedule', 'starts', 'seats'], created.schedules.map((s) => [s.scheduleId, localTime(s.startsAt), s.seatCount]), { align: ['right', 'left', 'right'] }),
    ].join('\n'),
  );
}

export async function validateConcertFile(json: unknown, file = 'the file') {
  const { ZCreateConcertInput } = await import('@concert/core/schemas');
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
