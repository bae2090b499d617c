import type { Command } from 'commander';
import { Ctx, type GlobalOptions, type Io } from './context.ts';
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

/** Examples and notes after commander's usage, arguments and options: `concert help hold` reads like a man page. */
export function man(cmd: Command, examples: Array<[string, string]>, notes?: string): Command {
  // The command list shows the first sentence; `concert help <command>` shows it all.
  cmd.summary(cmd.description().split('\n')[0]!.replace(/:.*$|\. .*$/, '').replace(/\.$/, ''));
  const ex = examples.map(([line, what]) => `  # ${what}\n  $ ${line}`).join('\n\n');
  return cmd.addHelpText('after', `${notes ? `\nNotes:\n${notes.replace(/^/gm, '  ')}\n` : ''}\nExamples:\n${ex}\n`);
}

/** The command's words after `concert`, e.g. `admin queue config`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
