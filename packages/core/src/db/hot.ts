import { CompiledQuery, type RawBuilder, sql } from 'kysely';
import type { QueryResult } from 'kysely';
import type { Db, Tx } from './database.ts';

/**
 * The write path's statements, compiled once per shape.
 *
 * Kysely builds an operation tree for every statement it sends and compiles it to text on every
 * call, even a `sql` template whose text never changes. Under the bench's holds and payments that
 * was 11% of the API's CPU (its own frames: node visits, frozen objects, parsers) and a share of
 * the garbage collector's 18% (a CPU profile, 2026-12-05); a statement's text depends only on its
 * shape, which for these statements is fixed by the code. `hot` is a template tag of the same form
 * as Kysely's `sql` (a value is a parameter; a nested `hot` fragment is SQL), whose text is made
 * once per shape: the call sites' template objects (the same object every time a tagged template
 * runs) and where fragments sit among the values. A call then only gathers its parameters.
 *
 * No library does this for the Kysely this project uses: `kysely-params` (the one that does it
 * for Kysely's builders) depends on Kysely 0.24 and works on builders only.
 *
 * A Kysely `RawBuilder` may stand among the values only if it is registered with its fragment
 * (`registerHot`): the database's time (`statement_timestamp()`) and a time after it
 * (clock.ts). Any other one is refused, since its text cannot be known without compiling it.
 */
export class HotFragment<R = unknown> {
  /** Only for the row type a statement returns. */
  declare readonly __rows?: R;
  constructor(
    readonly strings: ReadonlyArray<string>,
    readonly values: ReadonlyArray<unknown>,
  ) {}
}

export function hot<R = unknown>(strings: TemplateStringsArray, ...values: unknown[]): HotFragment<R> {
  return new HotFragment<R>(strings, values);
}

const rawTexts = new Map<string, HotFragment>();

/** Constant SQL text as a fragment (one object per text, so it is one shape). For texts from the code, never from input. */
export function hotRaw(text: string): HotFragment {
  let f = rawTexts.get(text);
  if (!f) rawTexts.set(text, (f = new HotFragment(Object.freeze([text]), [])));
  return f;
}

const registered = new WeakMap<object, HotFragment>();

/** Lets a Kysely RawBuilder stand in a hot statement as `fragment` (the same SQL). Returns the builder. */
export function registerHot<T>(builder: RawBuilder<T>, fragment: HotFragment): RawBuilder<T> {
  registered.set(builder, fragment);
  return builder;
}

function fragmentOf(value: unknown): HotFragment | undefined {
  if (value instanceof HotFragment) return value;
  if (value !== null && typeof value === 'object' && !(value instanceof Date) && !Array.isArray(value)) {
    const f = registered.get(value);
    if (f) return f;
    if (typeof (value as { toOperationNode?: unknown }).toOperationNode === 'function') {
      throw new Error('a Kysely expression in a hot statement must be registered with registerHot (its text is not known without compiling it)');
    }
  }
  return undefined;
}

const ids = new WeakMap<object, number>();
let nextId = 0;
const idOf = (strings: ReadonlyArray<string>) => {
  let id = ids.get(strings);
  if (id === undefined) ids.set(strings, (id = nextId++));
  return id;
};

/** Shapes compiled, by key; past MAX_SHAPES a statement is compiled on every call (nothing here should come near it). */
const texts = new Map<string, string>();
export const MAX_SHAPES = 1000;

/** Counts of shapes compiled and found, for tests. */
export const hotStats = { compiled: 0, found: 0 };

/** The statement's text and parameters: the text made once per shape. */
export function compileHot(f: HotFragment): { sql: string; parameters: unknown[] } {
  const parameters: unknown[] = [];
  const key: Array<string | number> = [];
  gather(f, parameters, key);
  const k = key.join(',');
  let text = texts.get(k);
  if (text === undefined) {
    text = write(f, { n: 0 });
    hotStats.compiled++;
    if (texts.size < MAX_SHAPES) texts.set(k, text);
  } else {
    hotStats.found++;
  }
  return { sql: text, parameters };
}

function gather(f: HotFragment, parameters: unknown[], key: Array<string | number>): void {
  key.push(idOf(f.strings));
  for (const v of f.values) {
    const nested = fragmentOf(v);
    if (nested) {
      key.push('(');
      gather(nested, parameters, key);
      key.push(')');
    } else {
      parameters.push(v);
      key.push('$');
    }
  }
}

function write(f: HotFragment, at: { n: number }): string {
  let text = f.strings[0]!;
  for (let i = 0; i < f.values.length; i++) {
    const nested = fragmentOf(f.values[i]);
    text += nested ? write(nested, at) : `$${++at.n}`;
    text += f.strings[i + 1]!;
  }
  return text;
}

/** Runs a hot statement on the database or inside a transaction, as Kysely would run its text and parameters. */
export function runHot<R>(executor: Db | Tx, f: HotFragment<R>): Promise<QueryResult<R>> {
  const { sql: text, parameters } = compileHot(f);
  return executor.executeQuery<R>(CompiledQuery.raw(text, parameters));
}

/** `statement_timestamp()` as a Kysely expression and a hot fragment alike (clock.ts's dbNow). */
export const STATEMENT_TIME = registerHot(sql<Date>`statement_timestamp()`, hotRaw('statement_timestamp()'));
/** `clock_timestamp()`, likewise (dbNowAfterLocks). */
export const CLOCK_TIME = registerHot(sql<Date>`clock_timestamp()`, hotRaw('clock_timestamp()'));
