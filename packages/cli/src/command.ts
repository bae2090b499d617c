import { type AddHelpTextContext, type Command, Help } from 'commander';
import { Ctx, type GlobalOptions, type Io, type OutStream } from './context.ts';
import type { Known } from './errors.ts';

/** One run of the program: its streams, the exit status a command sets, and what the command learned (for hints). */
export interface RunState {
  io: Io;
  exitCode: number;
  known: Known;
}

const runs = new WeakMap<Command, RunState>();

export function attachRun(program: Command, state: RunState): void {
  runs.set(program, state);
}

function runOf(cmd: Command): RunState {
  for (let c: Command | null = cmd; c; c = c.parent) {
    const state = runs.get(c);
    if (state) return state;
  }
  throw new Error(`concert ${cmd.name()} is not part of a program`);
}

/**
 * Commander's action for a plain async command function: builds a Ctx from the global options and
 * calls `fn(ctx, ...arguments, options)`, the same call a test makes.
 */
export function act<A extends unknown[]>(fn: (ctx: Ctx, ...args: A) => Promise<unknown>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const state = runOf(cmd);
    state.known.command = commandPath(cmd);
    const ctx = await Ctx.create(state.io, cmd.optsWithGlobals<GlobalOptions>());
    ctx.know(state.known);
    state.known = ctx.known;
    await fn(ctx, ...(args.slice(0, -1) as A));
    state.exitCode = ctx.exitCode;
  };
}

/**
 * The width help is laid out for: the terminal it is printed on (else $COLUMNS, else 80), and never
 * more than 100 columns, past which a line of prose is hard to follow. Commander wraps its own parts
 * to it; the notes and lists after them (`man`, `helpItems`) are wrapped to it too.
 */
export function helpWidth(stream: OutStream, env: NodeJS.ProcessEnv): number {
  const columns = stream.isTTY === true && stream.columns ? stream.columns : Number(env.COLUMNS);
  return Math.min(100, Number.isInteger(columns) && columns > 0 ? columns : 80);
}

/**
 * Descriptions are wrapped into a column as narrow as this (commander's default, 40, left them
 * unwrapped beside long terms on a narrow terminal, running past its edge).
 */
export const MIN_WIDTH_TO_WRAP = 24;

/** A commander Help laid out as `concert`'s is, for the sections commander does not write itself. */
function helper(width: number): Help {
  return Object.assign(new Help(), { helpWidth: width, minWidthToWrap: MIN_WIDTH_TO_WRAP });
}

/** The width of the help being printed (on stdout, or on stderr after a usage error). */
export function helpWidthOf({ command, error }: AddHelpTextContext): number {
  const out = command.configureOutput();
  return (error ? out.getErrHelpWidth?.() : out.getOutHelpWidth?.()) ?? 80;
}

/** A section of terms and their descriptions (`Exit status:`), laid out and wrapped as commander lays out options. */
export function helpItems(title: string, items: Array<[string, string]>, width: number): string {
  const help = helper(width);
  const termWidth = Math.max(...items.map(([term]) => help.displayWidth(term)));
  return [title, ...items.map(([term, text]) => help.formatItem(term, termWidth, text, help))].join('\n');
}

/** Each line of `text` a paragraph wrapped to `width` under a two-space indent; a line that starts with a space is kept as written (a file's example). */
function paragraphs(text: string, width: number): string {
  const help = helper(width);
  return text
    .split('\n')
    .map((line) => (/^\s/.test(line) ? `  ${line}` : help.boxWrap(line, width - 2).replace(/^/gm, '  ')))
    .join('\n');
}

/**
 * Examples and notes after commander's usage, arguments and options: `concert help hold` reads like a
 * man page. An example is one or more commands (each `$ …`); a command too long for 80 columns is
 * broken by hand with ` \` and a newline, as a shell reads it.
 */
export function man(cmd: Command, examples: Array<[string | string[], string]>, notes?: string): Command {
  // The command list shows the first sentence; `concert help <command>` shows it all.
  cmd.summary(cmd.description().split('\n')[0]!.replace(/:.*$|\. .*$/, '').replace(/\.$/, ''));
  const ex = examples
    .map(([lines, what]) => [`  # ${what}`, ...[lines].flat().map((line) => `  $ ${line.replace(/\n/g, '\n      ')}`)].join('\n'))
    .join('\n\n');
  return cmd.addHelpText('after', (context) => `${notes ? `\nNotes:\n${paragraphs(notes, helpWidthOf(context))}\n` : ''}\nExamples:\n${ex}\n`);
}

/**
 * `group.command(name, { isDefault: true })`, but a word that names no command of the group is
 * commander's unknown command, as in a group without a default: commander hands it to the default
 * as its arguments, so `admin webhooks delete 2` said "too many arguments for 'list'" and
 * `admin concerts crate --file x` "unknown option '--file'".
 */
export function defaultCommand(group: Command, name: string): Command {
  const cmd = group.command(name, { isDefault: true });
  group.hook('preSubcommand', (self) => {
    const word = self.args[0];
    // commander's own error, with its "(Did you mean create?)"; it is not in its typings.
    if (word !== undefined && !word.startsWith('-') && !self.commands.some((c) => c.name() === word || c.aliases().includes(word))) {
      (self as Command & { unknownCommand(): never }).unknownCommand();
    }
  });
  return cmd;
}

/** The command's words after `concert`, e.g. `admin queue config`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
