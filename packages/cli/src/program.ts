import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { adminAuditCommand, adminCreateConcertCommand, adminCreateUserCommand, adminHoldsCommand, adminQueueConfigCommand, adminQueueStatsCommand, adminReleaseCommand, adminSeedDemoCommand } from './commands/admin.ts';
import { bookCommand, parseSeatList } from './commands/book.ts';
import { concertsCommand, schedulesCommand, seatsCommand } from './commands/catalog.ts';
import { queueJoinCommand, queueLeaveCommand, queueStatusCommand } from './commands/queue.ts';
import { cancelCommand, holdCommand, payCommand, reservationCommand, reservationsCommand } from './commands/reservations.ts';
import { simulateCommand } from './commands/simulate.ts';
import { balanceCommand, chargeCommand, historyCommand, parseWon } from './commands/wallet.ts';
import { Ctx, DEFAULT_API, type GlobalOptions, type Io } from './context.ts';
import { describeError, EXIT, UsageError } from './errors.ts';
import { colorsFor } from './format.ts';

const id = (what: string) => (value: string) => {
  if (!/^[1-9]\d{0,14}$/.test(value.trim())) throw new InvalidArgumentError(`${what} must be a positive whole number.`);
  return Number(value);
};
const count = (what: string, min = 1) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min) throw new InvalidArgumentError(`${what} must be a whole number of at least ${min}.`);
  return n;
};
const fraction = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number from 0 to 1.');
  return n;
};

/** Examples and notes after commander's usage, arguments and options: `concert help hold` reads like a man page. */
function man(cmd: Command, examples: Array<[string, string]>, notes?: string): Command {
  // The command list shows the first sentence; `concert help <command>` shows it all.
  cmd.summary(cmd.description().split('\n')[0]!.replace(/:.*$|\. .*$/, '').replace(/\.$/, ''));
  const ex = examples.map(([line, what]) => `  # ${what}\n  $ ${line}`).join('\n\n');
  return cmd.addHelpText('after', `${notes ? `\nNotes:\n${notes.replace(/^/gm, '  ')}\n` : ''}\nExamples:\n${ex}\n`);
}

function seatNumbers(values: string[]): number[] {
  const seats = values.flatMap((v) => parseSeatList(v));
  if (seats.length === 0 || seats.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`Seats must be seat numbers such as 12 13 (or 12,13), not "${values.join(' ')}"`);
  return seats;
}

/**
 * The `concert` program. Registration is thin: each action builds a Ctx from the global options and
 * calls the plain async command function that tests call directly.
 */
export function buildProgram(io: Io, state: { exitCode: number }): Command {
  const program = new Command('concert');
  const act =
    <A extends unknown[]>(fn: (ctx: Ctx, ...args: A) => Promise<unknown>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const ctx = new Ctx(io, cmd.optsWithGlobals<GlobalOptions>());
      await fn(ctx, ...(args.slice(0, -1) as A));
      state.exitCode = ctx.exitCode;
    };

  program
    .description('Book concert tickets from the terminal, and run sales as an operator.')
    .usage('[global options] <command> [options]')
    .option('--api <url>', `the API's address (env CONCERT_API_URL; default ${DEFAULT_API})`)
    .option('--user <id>', 'act as this user, sent as x-user-id (env CONCERT_USER)')
    .option('--user-token <jwt>', 'act as the user of this token, sent as Authorization: Bearer (env CONCERT_USER_TOKEN)')
    .option('--admin-key <key>', 'the operator key for admin commands, sent as x-admin-key (env CONCERT_ADMIN_KEY)')
    .option('--queue-token <token>', 'present this waiting-room token instead of the one the session file remembers')
    .option('--json', 'print exactly one JSON document on stdout; errors as {"error":{code,appCode,message}} on stderr')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Usage errors are printed by run(), once, in the chosen output mode.
      outputError: () => {},
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .helpCommand(false);

  program.addHelpText(
    'after',
    `
Exit status:
  0  success
  1  the server answered with an error, or could not be reached (or an audit found a broken invariant)
  2  bad usage: an unknown command or option, a malformed argument, a missing --user or --admin-key
  130  interrupted with Ctrl-C

Environment:
  CONCERT_API_URL, CONCERT_USER, CONCERT_USER_TOKEN, CONCERT_ADMIN_KEY   defaults for the global options
  CONCERT_CONFIG_DIR   where the session file lives (else $XDG_CONFIG_HOME/concert, else ~/.config/concert)
  NO_COLOR             no colours (they are also off when output is not a terminal); FORCE_COLOR forces them

Files:
  session.json   queue tokens per API, user and concert, so queue join, seats, hold and pay chain in scripts

Examples:
  # the whole journey, asking at each step
  $ concert --user 1 book

  # the same journey in a script
  $ concert --user 1 --json queue join 1 --wait
  $ concert --user 1 --json hold 3 12 13 | jq -r .reservationId
  $ concert --user 1 --json pay <reservationId>
`,
  );

  // --- catalog
  man(program.command('concerts').description('List the concerts on sale.').action(act(concertsCommand)), [['concert concerts', 'what is on sale']]);

  man(
    program
      .command('schedules')
      .description('List the shows of a concert that still have seats (every show with --all).')
      .argument('<concertId>', 'the concert', id('concertId'))
      .option('--all', 'include sold-out shows')
      .action(act((ctx, concertId: number, o: { all?: boolean }) => schedulesCommand(ctx, concertId, o))),
    [
      ['concert schedules 1', "the shows of concert 1 you can still book"],
      ['concert schedules 1 --all --json', 'every show, as JSON'],
    ],
  );

  man(
    program
      .command('seats')
      .description(
        'Show the seat map of a show: rows of seats coloured by status (○ available, ◐ held, ● sold), each marked\nwith its grade, then a legend with the price of each grade and how many seats are left.\nNeeds an ACTIVE place in the concert\'s waiting room (concert queue join <concertId> --wait).',
      )
      .argument('<scheduleId>', 'the show', id('scheduleId'))
      .option('--cols <n>', 'seats per row of the map', count('--cols'), 10)
      .action(act((ctx, scheduleId: number, o: { cols: number }) => seatsCommand(ctx, scheduleId, o))),
    [
      ['concert --user 1 seats 3', 'the map of show 3'],
      ['concert --user 1 --json seats 3 | jq \'[.seats[] | select(.status == "AVAILABLE") | .seatNumber]\'', 'the free seats, for a script'],
    ],
  );

  // --- waiting room
  const queue = program.command('queue').description('The waiting room: one line per concert; booking needs an ACTIVE place.');
  man(
    queue
      .command('join')
      .description(
        "Take a place in a concert's waiting room. The token is saved in the session file for this API, user\nand concert, so seats, hold and pay find it. With --wait, a live line shows the position, the people\nahead, the ETA and a progress bar until you are ACTIVE (then the ticket is printed) or the place expires.\nCtrl-C stops waiting and keeps the place.",
      )
      .argument('<concertId>', 'the concert', id('concertId'))
      .option('--wait', 'wait, polling at the pace the server asks, until it is your turn')
      .action(act((ctx, concertId: number, o: { wait?: boolean }) => queueJoinCommand(ctx, concertId, o))),
    [
      ['concert --user 1 queue join 1 --wait', 'wait in line for concert 1'],
      ['concert --user 1 --json queue join 1 | jq .position', 'join and read the position'],
    ],
    'Joining again while the place is alive returns the same place; after it expires you join at the back.',
  );
  man(
    queue
      .command('status')
      .description('Where your saved place in the line of a concert stands.')
      .argument('<concertId>', 'the concert', id('concertId'))
      .action(act((ctx, concertId: number) => queueStatusCommand(ctx, concertId))),
    [['concert --user 1 queue status 1', 'position, people ahead, ETA; or how long the ACTIVE slot lasts']],
  );
  man(
    queue
      .command('leave')
      .description('Give up your place (or your ACTIVE slot) so the next person gets it.')
      .argument('<concertId>', 'the concert', id('concertId'))
      .action(act((ctx, concertId: number) => queueLeaveCommand(ctx, concertId))),
    [['concert --user 1 queue leave 1', 'leave the line of concert 1']],
  );

  // --- booking
  man(
    program
      .command('hold')
      .description(
        'Hold 1 to 4 seats of a show for a few minutes (HOLD_TTL_SECONDS on the server, 5 by default), all of them\nor none. Needs an ACTIVE place in the waiting room; pay before the hold lapses.',
      )
      .argument('<scheduleId>', 'the show', id('scheduleId'))
      .argument('<seat...>', 'seat numbers, separated by spaces or commas')
      .option('--idempotency-key <key>', 'reuse a key to retry safely: the same hold comes back, nothing is held twice')
      .action(act((ctx, scheduleId: number, seats: string[], o: { idempotencyKey?: string }) => holdCommand(ctx, scheduleId, seatNumbers(seats), o))),
    [
      ['concert --user 1 hold 3 12 13', 'hold seats 12 and 13 of show 3'],
      ['concert --user 1 --json hold 3 12,13 --idempotency-key my-retry-0001', 'a script that may retry'],
    ],
    'Fails with SEAT_UNAVAILABLE when any of the seats is taken, TICKET_LIMIT_EXCEEDED past 4 seats a show,\nTOKEN_INVALID without a place in line, QUEUE_NOT_ACTIVE while still waiting.',
  );
  man(
    program
      .command('pay')
      .description('Pay a hold from your balance. The seats become yours and your place in the waiting room is spent.')
      .argument('<reservationId>', 'the reservation from hold')
      .option('--idempotency-key <key>', 'reuse a key to retry safely: you are never charged twice')
      .action(act((ctx, reservationId: string, o: { idempotencyKey?: string }) => payCommand(ctx, reservationId, o))),
    [['concert --user 1 pay 0b9d…', 'pay a hold'], ['concert --user 1 charge 100000 && concert --user 1 pay 0b9d…', 'top up first when the balance is short']],
  );
  man(
    program
      .command('cancel')
      .description('Give a hold back; its seats are free again at once.')
      .argument('<reservationId>', 'the reservation')
      .action(act((ctx, reservationId: string) => cancelCommand(ctx, reservationId))),
    [['concert --user 1 cancel 0b9d…', 'release your hold']],
  );
  man(
    program
      .command('reservation')
      .description('One of your reservations: seats, total, status, and how long a hold has left.')
      .argument('<reservationId>', 'the reservation')
      .action(act((ctx, reservationId: string) => reservationCommand(ctx, reservationId))),
    [['concert --user 1 reservation 0b9d…', 'show a reservation']],
  );
  man(
    program
      .command('reservations')
      .description('Your reservations, newest first.')
      .addOption(new Option('--status <status>', 'only these').choices(['HELD', 'PAID', 'EXPIRED', 'CANCELLED']))
      .action(act((ctx, o: { status?: string }) => reservationsCommand(ctx, o))),
    [['concert --user 1 reservations --status PAID', 'your tickets']],
  );

  // --- wallet
  man(program.command('balance').description('Your prepaid balance, in won.').action(act(balanceCommand)), [['concert --user 1 balance', 'how much you can spend']]);
  man(
    program
      .command('charge')
      .description('Top up your balance (at most ₩1,000,000 at a time and ₩5,000,000 a month by default).')
      .argument('<amount>', 'won: 50000, 50,000 or ₩50,000', (v: string) => parseWon(v))
      .option('--idempotency-key <key>', 'reuse a key to retry safely: the money is added once')
      .action(act((ctx, amount: number, o: { idempotencyKey?: string }) => chargeCommand(ctx, amount, o))),
    [['concert --user 1 charge 200,000', 'add ₩200,000']],
  );
  man(
    program
      .command('history')
      .description("Your wallet's ledger: charges, payments and refunds, newest first.")
      .option('--limit <n>', 'entries per page (1 to 100)', count('--limit'))
      .option('--cursor <cursor>', 'the next page, from the previous answer')
      .action(act((ctx, o: { limit?: number; cursor?: string }) => historyCommand(ctx, o))),
    [['concert --user 1 history --limit 5', 'the last five entries']],
  );

  // --- the journey and the rehearsal
  man(
    program
      .command('book')
      .description(
        'The whole journey: pick a concert, wait in line (live position), pick a show, pick seats on the map,\nsee the total and how long the hold lasts, top up if the balance is short, pay, and see the confirmation.\nEvery choice can be given as a flag; without a terminal every choice must be (nothing waits for input).\nCtrl-C leaves at any step; a hold made on the way is released.',
      )
      .option('--concert <id>', 'the concert', id('--concert'))
      .option('--schedule <id>', 'the show', id('--schedule'))
      .option('--seats <n,n>', 'seat numbers, e.g. 12,13', (v: string) => seatNumbers([v]))
      .option('--top-up', 'top up the shortfall without asking when the balance is short')
      .option('-y, --yes', 'pay without asking')
      .option('--cols <n>', 'seats per row of the map', count('--cols'))
      .action(act((ctx, o: { concert?: number; schedule?: number; seats?: number[]; topUp?: boolean; yes?: boolean; cols?: number }) => bookCommand(ctx, o))),
    [
      ['concert --user 1 book', 'ask at every step'],
      ['concert --user 1 book --concert 1', 'skip the concert question'],
      ['concert --user 1 --json book --concert 1 --schedule 3 --seats 12,13 --top-up --yes', 'no questions at all (scripts, CI)'],
    ],
  );
  man(
    program
      .command('simulate')
      .description(
        'A sale rehearsal for operators: N new funded users (made with the admin key) enter the waiting room,\nwait their turn, hold random available seats, and pay or abandon, C at a time. A progress bar while it\nruns; then a report: admitted, held, paid, conflicts, errors by code, p50/p95/p99 per step, and\nadmin.audit (the headline: zero oversold seats). Exit status 1 when the audit is not clean.',
      )
      .requiredOption('--concert <id>', 'the concert', id('--concert'))
      .requiredOption('--users <n>', 'how many virtual users', count('--users'))
      .option('--concurrency <c>', 'users in flight at once', count('--concurrency'), 10)
      .option('--schedule <id>', 'the show (default: the first open one with seats)', id('--schedule'))
      .option('--pay-rate <p>', 'share of holders who pay, 0 to 1; the rest abandon', fraction, 0.7)
      .option('--max-seats <n>', 'each user holds 1 to n seats (at most 4)', count('--max-seats'), 2)
      .option('--balance <won>', "each user's starting balance", (v: string) => parseWon(v), 1_000_000)
      .option('--max-wait <s>', 'seconds a user waits in line before giving up', count('--max-wait'), 120)
      .option('--seed <n>', 'repeatable random choices', count('--seed', 0))
      .action(act((ctx, o: { concert: number; users: number; concurrency: number; schedule?: number; payRate: number; maxSeats: number; balance: number; maxWait: number; seed?: number }) => simulateCommand(ctx, o))),
    [
      ['concert --admin-key $KEY simulate --concert 1 --users 200 --concurrency 20', 'rehearse a 200-fan rush'],
      ['concert --admin-key $KEY admin queue config 1 --max-active 10 && concert --admin-key $KEY simulate --concert 1 --users 50', 'rehearse with a narrow gate'],
      ['concert --admin-key $KEY --json simulate --concert 1 --users 30 | jq .oversoldSeats', 'the headline, for CI'],
    ],
  );

  // --- operators
  const admin = program.command('admin').description('Operator commands (need --admin-key or CONCERT_ADMIN_KEY).');
  const users = admin.command('users').description('Users.');
  man(
    users
      .command('create')
      .description('Create a user, optionally with a starting balance.')
      .argument('<name>', "the user's name")
      .option('--balance <won>', 'starting balance', (v: string) => parseWon(v, { allowZero: true }))
      .action(act((ctx, name: string, o: { balance?: number }) => adminCreateUserCommand(ctx, name, o))),
    [['concert --admin-key $KEY admin users create "Kim Min-ji" --balance 500000', 'a fan with ₩500,000']],
  );
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
  man(admin.command('seed-demo').description('Three bookable demo concerts and five funded users (once per database).').action(act(adminSeedDemoCommand)), [
    ['concert --admin-key $KEY admin seed-demo', 'demo data'],
  ]);
  man(
    admin
      .command('holds')
      .description('Seats held right now, and how long each hold has left.')
      .option('--concert <id>', 'only this concert', id('--concert'))
      .option('--schedule <id>', 'only this show', id('--schedule'))
      .action(act((ctx, o: { concert?: number; schedule?: number }) => adminHoldsCommand(ctx, o))),
    [['concert --admin-key $KEY admin holds --concert 1', 'holds on concert 1'], ['watch -n 2 concert --admin-key $KEY admin holds', 'watch them']],
  );
  man(
    admin
      .command('release')
      .description("Cancel someone's hold; the seats are free at once.")
      .argument('<reservationId>', 'the reservation')
      .action(act((ctx, reservationId: string) => adminReleaseCommand(ctx, reservationId))),
    [['concert --admin-key $KEY admin release 0b9d…', 'free a stuck hold']],
  );
  man(admin.command('audit').description('Check the invariants: no seat sold twice, balances equal ledgers, and more. Exit status 1 when one fails.').action(act(adminAuditCommand)), [
    ['concert --admin-key $KEY admin audit', 'is everything consistent?'],
  ]);
  const aq = admin.command('queue').description("A concert's waiting room.");
  man(
    aq
      .command('stats')
      .description('Waiting, active, the limits, and the admission rate.')
      .argument('<concertId>', 'the concert', id('concertId'))
      .action(act((ctx, concertId: number) => adminQueueStatsCommand(ctx, concertId))),
    [['concert --admin-key $KEY admin queue stats 1', 'how the line is moving']],
  );
  man(
    aq
      .command('config')
      .description('Tune admission: how many are ACTIVE at once, for how long, when an idle waiter is dropped; pause and resume.')
      .argument('<concertId>', 'the concert', id('concertId'))
      .option('--max-active <n>', 'ACTIVE at once', count('--max-active'))
      .option('--active-ttl <s>', 'seconds an ACTIVE place lasts', count('--active-ttl'))
      .option('--idle-timeout <s>', 'seconds before a waiter who stopped polling is dropped', count('--idle-timeout'))
      .option('--pause', 'stop admitting (places are kept)')
      .option('--resume', 'admit again')
      .action(act((ctx, concertId: number, o: { maxActive?: number; activeTtl?: number; idleTimeout?: number; pause?: boolean; resume?: boolean }) => adminQueueConfigCommand(ctx, concertId, o))),
    [
      ['concert --admin-key $KEY admin queue config 1 --max-active 50 --active-ttl 300', 'a narrower, quicker gate'],
      ['concert --admin-key $KEY admin queue config 1 --pause', 'hold everyone where they are'],
    ],
  );
  // `concert help admin queue config` walks down to the command, however deep.
  program
    .command('help')
    .description('Show help for a command, e.g. concert help hold')
    .argument('[command...]', 'the command')
    .action((names: string[]) => {
      let target: Command = program;
      for (const name of names) {
        const next = target.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (!next) throw new UsageError(`No such command: concert ${names.join(' ')}`, 'See concert help');
        target = next;
      }
      target.outputHelp();
    });
  return program;
}

/** Runs the CLI and returns its exit status; nothing here calls process.exit, so tests can run it in-process. */
export async function run(argv: string[], io: Io): Promise<number> {
  const state = { exitCode: 0 };
  const json = argv.includes('--json');
  try {
    await buildProgram(io, state).parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0;
      if (err.code === 'commander.help' || err.code === 'commander.helpDisplayed') return EXIT.usage;
      return report(io, json, { payload: { code: 'USAGE', appCode: null, message: err.message.replace(/^error: /, '') }, exitCode: EXIT.usage, hint: 'See concert help <command>' });
    }
    return report(io, json, describeError(err));
  }
}

function report(io: Io, json: boolean, d: ReturnType<typeof describeError>): number {
  if (json) {
    io.stderr.write(`${JSON.stringify({ error: d.payload })}\n`);
  } else if (d.payload.code === 'INTERRUPTED') {
    io.stderr.write('\n');
  } else {
    const c = colorsFor(io.stderr, io.env);
    const code = d.payload.appCode ?? (d.payload.code === 'USAGE' ? '' : d.payload.code);
    io.stderr.write(`${c.red('error:')} ${d.payload.message}${code ? c.dim(` (${code})`) : ''}\n`);
    if (d.hint) io.stderr.write(`${c.dim(d.hint)}\n`);
  }
  return d.exitCode;
}
