import { createRequire } from 'node:module';
import pg, { type QueryResult } from 'pg';

/**
 * Sending a transaction's BEGIN with its first statement, and its COMMIT with its last, in one
 * write and one round trip each (PostgreSQL's extended protocol runs every message up to a Sync in
 * order: a BEGIN executed there opens a transaction block that outlives the Sync, and a COMMIT
 * there ends it). node-postgres sends one statement per round trip and has no pipeline mode, so
 * this is a node-postgres `Submittable`: the same messages its own `Query` sends (Parse once per
 * connection for a named statement, Bind, Describe, Execute, Sync), with BEGIN's Parse, Bind and
 * Execute before the statement's Bind and COMMIT's after its Execute. Each round trip costs the
 * API about 100 µs of CPU (write, wake-up, parse of the answer) and PostgreSQL a wake-up of its
 * backend; a hold took 6 of them and a payment 8.
 *
 * The answer is the statement's own: BEGIN's and COMMIT's CommandComplete are consumed here. A
 * COMMIT that answers ROLLBACK (the block had failed) or fails (a deferred check) fails the
 * query, so a caller never takes a rolled-back statement for a committed one.
 */

interface Connection {
  parsedStatements: Record<string, string>;
  submittedNamedStatements: Record<string, string>;
  stream: { cork?: () => void; uncork?: () => void };
  parse(q: { text: string; name?: string; types?: unknown[] }): void;
  bind(c: { portal?: string; statement?: string; values?: unknown[]; binary?: boolean; valueMapper?: (v: unknown) => unknown }): void;
  describe(m: { type: 'P' | 'S'; name?: string }): void;
  execute(c: { portal?: string; rows?: number }): void;
  close(m: { type: 'P' | 'S'; name?: string }): void;
  sync(): void;
}

interface QueryInternals {
  text: string;
  name?: string;
  values?: unknown[];
  binary?: boolean;
  _canceledDueToError: Error | false;
  hasBeenParsed(connection: Connection): boolean;
  handleCommandComplete(msg: { text: string }, connection: Connection): void;
  handleReadyForQuery(connection: Connection): void;
  handleError(err: Error, connection: Connection): void;
}

const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (v: unknown) => unknown };
const Query = pg.Query as unknown as new (config: object) => QueryInternals;

export interface PipelineConfig {
  text: string;
  name?: string | undefined;
  values: unknown[];
  /** Sent before the statement: BEGIN (or START TRANSACTION …). */
  before?: string | undefined;
  /** Sent after it: COMMIT. */
  after?: string | undefined;
  callback: (err: Error | null, result: QueryResult) => void;
}

export class PipelinedQuery extends Query {
  readonly before: string | undefined;
  readonly after: string | undefined;
  #beginPending: boolean;
  #statementDone = false;
  #afterTag: string | undefined;

  constructor(config: PipelineConfig) {
    super({ text: config.text, name: config.name, values: config.values, callback: config.callback });
    this.before = config.before;
    this.after = config.after;
    this.#beginPending = config.before !== undefined;
  }

  submit(connection: Connection): Error | null {
    if (this.values !== undefined && !Array.isArray(this.values)) return new Error('Query values must be an array');
    const name = this.name;
    const previous = name ? (connection.parsedStatements[name] ?? connection.submittedNamedStatements[name]) : undefined;
    if (previous !== undefined && previous !== this.text) return new Error(`Prepared statements must be unique - '${name}' was used for a different statement`);
    connection.stream.cork?.();
    try {
      this.#send(connection, name);
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  #send(connection: Connection, name: string | undefined): void {
    // A named statement's Parse goes first: node-postgres records the active query's name as
    // parsed at the first ParseComplete, which must then be this statement's.
    if (name && !this.hasBeenParsed(connection)) {
      connection.parse({ text: this.text, name, types: [] });
      connection.submittedNamedStatements[name] = this.text;
    }
    if (this.before !== undefined) sendBare(connection, this.before);
    // The unnamed statement after BEGIN's, which it replaces.
    if (!name) connection.parse({ text: this.text, name: '', types: [] });
    try {
      connection.bind({ portal: '', statement: name ?? '', values: this.values ?? [], binary: this.binary ?? false, valueMapper: prepareValue });
    } catch (err) {
      // As node-postgres does: a value it cannot send fails the query, and the Sync ends the exchange.
      if (name) connection.close({ type: 'S', name });
      connection.sync();
      this.handleError(err as Error, connection);
      return;
    }
    connection.describe({ type: 'P', name: '' });
    connection.execute({ portal: '', rows: 0 });
    if (this.after !== undefined) sendBare(connection, this.after);
    connection.sync();
  }

  override handleCommandComplete(msg: { text: string }, connection: Connection): void {
    if (this.#beginPending) {
      this.#beginPending = false;
      return;
    }
    if (this.#statementDone) {
      this.#afterTag = msg.text;
      return;
    }
    this.#statementDone = true;
    super.handleCommandComplete(msg, connection);
  }

  override handleReadyForQuery(connection: Connection): void {
    if (this.after !== undefined && !this._canceledDueToError && this.#afterTag !== 'COMMIT') {
      this._canceledDueToError = new Error(`the transaction was rolled back at its COMMIT (${this.#afterTag ?? 'no answer'})`);
    }
    super.handleReadyForQuery(connection);
  }
}

/** A parameterless utility statement (BEGIN, COMMIT) as the unnamed statement and portal. */
function sendBare(connection: Connection, text: string): void {
  connection.parse({ text, name: '', types: [] });
  connection.bind({ portal: '', statement: '', values: [], valueMapper: prepareValue });
  connection.execute({ portal: '', rows: 0 });
}

/** BEGIN as Kysely sends it: `begin`, or `start transaction …` with an isolation level or access mode. */
export const isBegin = (text: string) => text === 'begin' || text.startsWith('start transaction');

/**
 * The first text of a statement after which its transaction commits: the statement and COMMIT go
 * in one round trip. Only the last statement of a transaction may carry it, and the statement
 * must itself fail when the transaction must not commit (nothing after it may decide to roll
 * back). On PGlite, or with pipelining off, it is an ordinary comment and Kysely commits as usual.
 */
export const COMMIT_AFTER = '/* then commit */';

/** The SQLSTATE of concert_abort(reason) (migration 20261205T030000), whose message is the reason. */
export const ABORT_CODE = 'CA001';
