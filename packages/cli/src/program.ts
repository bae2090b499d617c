import { Command, CommanderError } from 'commander';
import { attachRun, commandPath, helpItems, helpWidth, helpWidthOf, MIN_WIDTH_TO_WRAP, type RunState } from './command.ts';
import * as admin from './commands/admin/index.ts';
import * as balance from './commands/balance.ts';
import * as book from './commands/book.ts';
import * as cancel from './commands/cancel.ts';
import * as charge from './commands/charge.ts';
import * as concerts from './commands/concerts.ts';
import * as history from './commands/history.ts';
import * as hold from './commands/hold.ts';
import * as pay from './commands/pay.ts';
import * as queue from './commands/queue.ts';
import * as refund from './commands/refund.ts';
import * as reservation from './commands/reservation.ts';
import * as reservations from './commands/reservations.ts';
import * as schedules from './commands/schedules.ts';
import * as seats from './commands/seats.ts';
import * as simulate from './commands/simulate.ts';
import * as waitlist from './commands/waitlist.ts';
import { DEFAULT_API, type Io } from './context.ts';
import { describeError, EXIT, UsageError } from './errors.ts';
import { colorsFor } from './format.ts';
import pkg from '../package.json' with { type: 'json' };

/**
 * Every command of `concert`, in the order `concert help` lists them. A command lives in
 * `commands/<name>.ts` (a group in `commands/<group>/index.ts`), which exports `register(program)`
 * and the plain async function that does the work; adding a command is adding its module here.
 */
const COMMANDS: Array<{ register(program: Command): void }> = [
  concerts, schedules, seats, // the catalog
  queue, // the waiting room
  hold, pay, cancel, refund, reservation, reservations, // booking
  waitlist, // sold-out shows
  balance, charge, history, // the wallet
  book, simulate, // the journey and the rehearsal
  admin, // operators
];

/** The `concert` program: global options, help, and each command module's registration. */
export function buildProgram(io: Io, state: Omit<RunState, 'io'>, opts: { json?: boolean } = {}): Command {
  const program = new Command('concert');
  attachRun(program, Object.assign(state, { io }));
  program
    .description('Book concert tickets from the terminal, and run sales as an operator.')
    .usage('[global options] <command> [options]')
    // With --json, a JSON document too (`0.1.0` alone is not one: jq refused it).
    .version(opts.json ? JSON.stringify({ version: pkg.version }) : pkg.version, '-V, --version', 'print the version of concert')
    .option('--api <url>', `the API's address (env CONCERT_API_URL; default ${DEFAULT_API})`)
    .option('--user <id>', 'act as this user, sent as x-user-id (env CONCERT_USER)')
    .option('--user-token <jwt>', 'act as the user of this token, sent as Authorization: Bearer (env CONCERT_USER_TOKEN)')
    .option('--admin-key <key>', 'the operator key for admin commands, sent as x-admin-key (env CONCERT_ADMIN_KEY)')
    .option('--queue-token <token>', 'present this waiting-room token instead of the one the session file remembers')
    .option('--json', 'print exactly one JSON document on stdout; errors as {"error":{code,appCode,message}} on stderr')
    .configureHelp({
      showGlobalOptions: true,
      sortSubcommands: false,
      minWidthToWrap: MIN_WIDTH_TO_WRAP,
      // A command list names each command and its arguments; its options are in its own help. With
      // ` [options]` the longest entry left commander less than the 40 columns it needs to wrap the
      // descriptions beside it, and at 80 columns every one ran past the edge.
      subcommandTerm: (cmd) => [cmd.name(), ...cmd.registeredArguments.map((a) => `${a.required ? '<' : '['}${a.name()}${a.variadic ? '...' : ''}${a.required ? '>' : ']'}`)].join(' '),
    })
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      // Help on stderr is the answer to a missing command; with --json, run() prints the envelope instead.
      writeErr: (s) => (opts.json ? true : io.stderr.write(s)),
      getOutHelpWidth: () => helpWidth(io.stdout, io.env),
      getErrHelpWidth: () => helpWidth(io.stderr, io.env),
      // Usage errors are printed by run(), once, in the chosen output mode.
      outputError: () => {},
    })
    // Inherited by every command registered below; `this` is the command that failed, so the hint
    // can name it (`See concert help hold`).
    .exitOverride(function (this: Command, err: CommanderError) {
      throw Object.assign(err, { command: this });
    } as (err: CommanderError) => never)
    .showSuggestionAfterError(true)
    .helpCommand(false);

  program.addHelpText('after', (context) => {
    const width = helpWidthOf(context);
    return [
      '',
      helpItems(
        'Exit status:',
        [
          ['0', 'success'],
          ['1', 'the server answered with an error, or could not be reached (or an audit found a broken invariant)'],
          ['2', 'bad usage: an unknown command or option, a malformed argument, a missing --user or --admin-key'],
          ['130', 'interrupted with Ctrl-C'],
          ['141', 'the reader of the output went away (`concert … | head`): the CLI stops quietly'],
          ['143', 'stopped by SIGTERM (kill, timeout): it leaves as after Ctrl-C, the terminal given back'],
        ],
        width,
      ),
      '',
      helpItems(
        'Environment:',
        [
          ['CONCERT_API_URL', 'the default of --api'],
          ['CONCERT_USER', 'the default of --user'],
          ['CONCERT_USER_TOKEN', 'the default of --user-token'],
          ['CONCERT_ADMIN_KEY', 'the default of --admin-key'],
          ['CONCERT_CONFIG_DIR', 'where the session file lives (else $XDG_CONFIG_HOME/concert, else ~/.config/concert)'],
          ['NO_COLOR', 'no colours (they are also off when output is not a terminal); FORCE_COLOR forces them'],
        ],
        width,
      ),
      '',
      helpItems('Files:', [['session.json', 'queue tokens per API, user and concert, so queue join, seats, hold and pay chain in scripts']], width),
      '',
      `Examples:
  # the whole journey, asking at each step
  $ concert --user 1 book

  # the same journey in a script
  $ concert --user 1 --json queue join 1 --wait
  $ concert --user 1 --json hold 3 12 13 | jq -r .reservationId
  $ concert --user 1 --json pay <reservationId>
`,
    ].join('\n');
  });

  for (const command of COMMANDS) command.register(program);

  // `concert help admin queue config` walks down to the command, however deep.
  program
    .command('help')
    .description('Show help for a command, e.g. concert help hold')
    .argument('[command...]', 'the command')
    .action((names: string[]) => {
      let target: Command = program;
      for (const name of names) {
        const next = target.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (!next) throw new UsageError(`No such command: concert ${names.join(' ')}`, target === program ? 'See concert help' : `See concert help ${commandPath(target)}`);
        target = next;
      }
      target.outputHelp();
    });
  return program;
}

/** Runs the CLI and returns its exit status; nothing here calls process.exit, so tests can run it in-process. */
export async function run(argv: string[], io: Io): Promise<number> {
  const state: Omit<RunState, 'io'> = { exitCode: 0, known: {} };
  const json = argv.includes('--json');
  try {
    await buildProgram(io, state, { json }).parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0;
      if (err.code === 'commander.helpDisplayed') return EXIT.usage;
      const command = (err as CommanderError & { command?: Command }).command ?? new Command();
      const failed = commandPath(command);
      // A group without its command (`concert admin queue`): people got its help on stderr; a
      // script asking for --json gets the envelope alone (it got the page of help).
      if (err.code === 'commander.help') {
        if (!json) return EXIT.usage;
        const names = command.commands.map((c) => c.name()).filter((name) => name !== 'help');
        const message = failed ? `concert ${failed} needs a command: ${names.join(', ')}` : 'concert needs a command: see concert help';
        return report(io, json, { payload: { code: 'USAGE', appCode: null, message }, exitCode: EXIT.usage });
      }
      return report(io, json, { payload: { code: 'USAGE', appCode: null, message: err.message.replace(/^error: /, '') }, exitCode: EXIT.usage, hint: failed ? `See concert help ${failed}` : 'See concert help' });
    }
    return report(io, json, describeError(err, state.known));
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
