import type { CountdownAnswer } from './countdown-confirm.ts';
import { Interrupted } from './errors.ts';
import type { Colors } from './format.ts';
import type { SeatMap } from './types.ts';

export interface Choice<T> {
  name: string;
  value: T;
  description?: string;
  disabled?: boolean | string;
}

/** The interactive parts, on the streams the command was given (a pseudo-terminal in tests). */
export interface Prompts {
  select<T>(message: string, choices: Array<Choice<T>>): Promise<T>;
  input(message: string, opts?: { validate?: (value: string) => true | string; default?: string }): Promise<string>;
  confirm(message: string, opts?: { default?: boolean }): Promise<boolean>;
  /** A yes/no question whose countdown to `deadline` ticks live; `lapsed` when nobody answered in time. */
  confirmBefore(message: (left: string) => string, deadline: Date, opts?: { default?: boolean; now?: () => Date }): Promise<CountdownAnswer>;
  /** Seats picked on the map with the arrow keys and space, at most `max`. */
  pickSeats(message: string, map: SeatMap, opts: { c: Colors; max: number; title?: string; cols?: number }): Promise<number[]>;
}

/** inquirer is loaded on the first question, so commands that ask nothing never load it. */
const inquirer = () => import('./inquirer.ts');

/**
 * `signal` (the command's: Ctrl-C or a kill sent as a signal) ends a question as Ctrl-C typed at
 * it does, so inquirer gives the terminal back (raw mode off, cursor shown) before the CLI leaves.
 */
export function inquirerPrompts(streams: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream; signal?: AbortSignal }): Prompts {
  const context = { input: streams.input, output: streams.output, ...(streams.signal ? { signal: streams.signal } : {}) };
  return {
    // The cursor starts on the first choice that can be picked: inquirer's select starts on the
    // first row, a disabled one too, where Enter only says it cannot be picked (an outside review:
    // a sold-out first show).
    select: async (message, choices) => {
      const first = choices.find((choice) => !choice.disabled);
      return quietly((await inquirer()).select({ message, choices, pageSize: 12, loop: false, ...(first ? { default: first.value } : {}) }, context));
    },
    input: async (message, opts = {}) =>
      quietly((await inquirer()).input({ message, ...(opts.validate ? { validate: opts.validate } : {}), ...(opts.default !== undefined ? { default: opts.default } : {}) }, context)),
    confirm: async (message, opts = {}) => quietly((await inquirer()).confirm({ message, default: opts.default ?? true }, context)),
    confirmBefore: async (message, deadline, opts = {}) => quietly((await inquirer()).countdownConfirm({ message, deadline, ...opts }, context)),
    pickSeats: async (message, map, opts) => {
      const tty = streams.output as { columns?: number; rows?: number };
      return quietly((await inquirer()).seatPicker({ message, map, ...opts, size: () => ({ columns: tty.columns, rows: tty.rows }) }, context));
    },
  };
}

/** Ctrl-C in a prompt is a quiet exit, never a stack trace. */
async function quietly<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof Error && (err.name === 'ExitPromptError' || err.name === 'AbortPromptError')) throw new Interrupted();
    throw err;
  }
}
