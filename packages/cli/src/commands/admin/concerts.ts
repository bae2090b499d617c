import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { act, defaultCommand, man } from '../../command.ts';
import type { Ctx } from '../../context.ts';
import { isServerError, UsageError } from '../../errors.ts';
import { id, pageLimit } from '../../args.ts';
import { parseJsonFile } from '../../json-file.ts';
import { type Colors, localTime, table, won } from '../../format.ts';
import type { AdminConcert, AdminConcertPage } from '../../types.ts';
import { morePage, pageInput } from '../../pages.ts';

export function register(admin: Command): void {
  const concerts = admin.command('concerts').description('Concerts: list with live counts and revenue, create, rename.');
  man(
    defaultCommand(concerts, 'list')
      .description('Concerts and their shows, a page at a time (20 by default; --limit, and --cursor from the line under the page): seats available, held and sold, net revenue, cancelled shows.')
      .option('--limit <n>', 'concerts per page (1-100)', pageLimit)
      .option('--cursor <c>', 'the next page (from the last page)')
      .action(act(adminConcertsListCommand)),
    [['concert --admin-key $KEY admin concerts', 'how every show is selling']],
  );
  man(
    concerts
      .command('rename')
      .description("Change a concert's title or venue.")
      .argument('<concertId>', 'the concert', id('concertId'))
      .option('--title <title>', 'the new title')
      .option('--venue <venue>', 'the new venue')
      .action(act(adminRenameConcertCommand)),
    [['concert --admin-key $KEY admin concerts rename 1 \\\n--title "Aurora Live in Seoul (added date)"', 'retitle concert 1']],
  );
  man(
    concerts
      .command('create')
      .description("Create a concert and its shows from a JSON file. The file is checked against the core's ZCreateConcertInput first: every problem names its field (schedules[0].tiers[1].price).")
      .requiredOption('--file <path>', 'the concert, as JSON')
      .action(act((ctx, o: { file: string }) => adminCreateConcertCommand(ctx, o.file))),
    [['concert --admin-key $KEY admin concerts create --file concert.json', 'create a concert']],
    `The file:
  {
    "title": "Aurora Live in Seoul",
    "venue": "Olympic Hall",
    "schedules": [
      {
        "startsAt": "2026-12-24T19:00:00+09:00",
        "bookingOpensAt": "2026-12-01T10:00:00+09:00",
        "seatCount": 50,
        "tiers": [
          { "grade": "VIP", "price": 150000, "fromSeat": 1, "toSeat": 10 },
          { "grade": "R", "price": 100000, "fromSeat": 11, "toSeat": 50 }
        ]
      }
    ]
  }
Tiers must cover every seat exactly once; without tiers every seat is grade R at ₩100,000.`,
  );
}

function renderAdminConcerts(c: Colors, concerts: AdminConcert[]): string {
  return table(
    c,
    ['concert', 'title', 'show', 'starts', 'available', 'held', 'sold', 'revenue'],
    concerts.flatMap((k) =>
      k.schedules.length === 0
        ? [[k.concertId, k.title, '', '', '', '', '', '']]
        : k.schedules.map((s, i) => [
            i === 0 ? k.concertId : '',
            i === 0 ? k.title : '',
            s.scheduleId,
            s.cancelled ? c.red(`${localTime(s.startsAt)} CANCELLED`) : localTime(s.startsAt),
            s.available,
            s.held,
            s.sold,
            won(s.revenue),
          ]),
    ),
    { align: ['right', 'left', 'right', 'left', 'right', 'right', 'right', 'right'] },
  );
}

/** `concert admin concerts [list]`: every show's live counts and net revenue (refunds taken off). */
export async function adminConcertsListCommand(ctx: Ctx, opts: { limit?: number; cursor?: string } = {}): Promise<AdminConcertPage> {
  ctx.requireAdmin();
  const page = await ctx.client.admin.concerts.list.query(pageInput(opts));
  return ctx.print(page, (c) =>
    page.items.length === 0
      ? 'No concerts yet.'
      : renderAdminConcerts(c, page.items) + morePage('admin concerts', opts, page.nextCursor),
  );
}

/** `concert admin concerts rename <concertId> [--title T] [--venue V]`. */
export async function adminRenameConcertCommand(ctx: Ctx, concertId: number, opts: { title?: string; venue?: string } = {}): Promise<AdminConcert> {
  ctx.requireAdmin();
  if (opts.title === undefined && opts.venue === undefined) throw new UsageError('Give --title or --venue (or both).');
  // Checked with the core's schema, as `admin users create` is: a blank or overlong title went to
  // the server and came back INVALID_INPUT (exit 1) where bad usage is exit 2.
  const { ZConcertUpdateInput } = await import('@concert/core/schemas');
  const parsed = ZConcertUpdateInput.safeParse({ concertId, ...(opts.title !== undefined ? { title: opts.title } : {}), ...(opts.venue !== undefined ? { venue: opts.venue } : {}) });
  if (!parsed.success) throw new UsageError(formatIssues(parsed.error.issues).map((i) => `--${i.path || 'title'}: ${i.message}`).join('; '));
  const k = await ctx.client.admin.concerts.update.mutate(parsed.data);
  return ctx.print(k, (c) => `Concert ${c.bold(String(k.concertId))} is now "${k.title}"${k.venue ? ` at ${k.venue}` : ''}.`);
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
    json = parseJsonFile(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const input = await validateConcertFile(json, file);
  let created: Awaited<ReturnType<typeof ctx.client.admin.concerts.create.mutate>>;
  try {
    created = await ctx.client.admin.concerts.create.mutate(input);
  } catch (err) {
    // What only the server can check (a show must start in the future, by its clock) is still a
    // problem of the file: bad usage naming the field as the local check does, not exit 1.
    if (isServerError(err) && err.data?.appCode === 'INVALID_INPUT' && err.data.issues?.length) {
      const issues = formatIssues(err.data.issues.map((i) => ({ path: Array.isArray(i.path) ? (i.path as PropertyKey[]) : [], message: i.message ?? '' })));
      // The server's message may start with the field itself ("schedules[0].startsAt must be in the
      // future"): named once, as the local check names it.
      throw invalidConcertFile(file, issues.map((i) => (i.path && i.message.startsWith(`${i.path} `) ? { ...i, message: i.message.slice(i.path.length + 1) } : i)));
    }
    throw err;
  }
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
  if (!parsed.success) throw invalidConcertFile(file, formatIssues(parsed.error.issues));
  return parsed.data;
}

function invalidConcertFile(file: string, issues: Array<{ path: string; message: string }>): UsageError {
  return new UsageError(
    `${file} is not a valid concert:\n${issues.map((i) => `  ${i.path || '(top level)'}: ${i.message}`).join('\n')}`,
    'See concert help admin concerts create for the format',
    issues,
  );
}

/** zod's issue paths as people write them: `schedules[0].tiers[1].price`. */
export function formatIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): Array<{ path: string; message: string }> {
  return issues.map((i) => ({
    path: i.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), ''),
    message: i.message,
  }));
}
