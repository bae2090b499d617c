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
  on(event: 'parseComplete', listener: () => void): void;
  removeListener(event: 'parseComplete', listener: () => void): void;
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
  _result: { _types: unknown };
  hasBeenParsed(connection: Connection): boolean;
  handleRowDescription(msg: { fields: unknown[] }): void;
  handleDataRow(msg: { fields: unknown[] }): void;
  handleCommandComplete(msg: { text: string }, connection: Connection): void;
  handleReadyForQuery(connection: Connection): void;
  handleError(err: Error, connection: Connection): void;
}

const require = createRequire(import.meta.url);
const { prepareValue } = require('pg/lib/utils.js') as { prepareValue: (v: unknown) => unknown };
/** node-postgres's parser of a statement's rows (its field descriptions, then each row). */
const Result = require('pg/lib/result.js') as new (rowMode: undefined, types: unknown) => { addFields(f: unknown[]): void; parseRow(f: unknown[]): unknown };
const Query = pg.Query as unknown as new (config: object) => QueryInternals;

/**
 * A statement sent ahead of another in its round trip: BEGIN (no values: sent bare), or a
 * statement marked WITH_NEXT (its values given; named when `name` is), whose rows are pushed
 * into `rows` as they come. Its error fails the statement it rides with, whose own messages
 * PostgreSQL then skips.
 */
export interface Leading {
  text: string;
  values?: unknown[] | undefined;
  name?: string | undefined;
  rows?: unknown[] | undefined;
}

export interface PipelineConfig {
  text: string;
  name?: string | undefined;
  values: unknown[];
  /** Sent before the statement, in order: BEGIN (or START TRANSACTION …), then statements marked WITH_NEXT. */
  before?: Leading[] | undefined;
  /** Sent after it: COMMIT. */
  after?: string | undefined;
  callback: (err: Error | null, result: QueryResult) => void;
}

export class PipelinedQuery extends Query {
  readonly before: Leading[] | undefined;
  readonly after: string | undefined;
  /** CommandCompletes of the statements before this one still to come: theirs, not this statement's. */
  #leadingPending: number;
  #statementDone = false;
  #afterTag: string | undefined;
  /** Names of leading statements parsed in this exchange, in the order of the Parse messages sent (undefined: any other Parse). */
  #parses: Array<string | undefined> = [];
  #onParsed: (() => void) | undefined;
  #connection: Connection | undefined;
  /** The parser of the leading statement whose rows are coming. */
  #leadingRows: InstanceType<typeof Result> | undefined;

  constructor(config: PipelineConfig) {
    super({ text: config.text, name: config.name, values: config.values, callback: config.callback });
    this.before = config.before;
    this.after = config.after;
    this.#leadingPending = config.before?.length ?? 0;
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
      this.#parses.push(undefined);
    }
    let leading: Array<unknown[] | undefined>;
    try {
      // Every leading statement's values are made ready before anything is sent: one that cannot
      // be sent fails the query with nothing sent but this statement's Parse (closed below).
      leading = (this.before ?? []).map((l) => l.values?.map(prepareValue));
    } catch (err) {
      this.#refuse(connection, err as Error);
      return;
    }
    this.before?.forEach((l, i) => {
      const values = leading[i];
      if (values === undefined) {
        sendBare(connection, l.text);
        this.#parses.push(undefined);
        return;
      }
      if (l.name && !(connection.parsedStatements[l.name] ?? connection.submittedNamedStatements[l.name])) {
        connection.parse({ text: l.text, name: l.name, types: [] });
        connection.submittedNamedStatements[l.name] = l.text;
        this.#parses.push(l.name);
      } else if (!l.name) {
        connection.parse({ text: l.text, name: '', types: [] });
        this.#parses.push(undefined);
      }
      connection.bind({ portal: '', statement: l.name ?? '', values });
      if (l.rows) connection.describe({ type: 'P', name: '' });
      connection.execute({ portal: '', rows: 0 });
    });
    if (this.#parses.some((n) => n !== undefined)) this.#trackParses(connection);
    // The unnamed statement after the leading ones', which it replaces.
    if (!name) connection.parse({ text: this.text, name: '', types: [] });
    try {
      connection.bind({ portal: '', statement: name ?? '', values: this.values ?? [], binary: this.binary ?? false, valueMapper: prepareValue });
    } catch (err) {
      this.#refuse(connection, err as Error);
      return;
    }
    connection.describe({ type: 'P', name: '' });
    connection.execute({ portal: '', rows: 0 });
    if (this.after !== undefined) sendBare(connection, this.after);
    connection.sync();
  }

  /**
   * A value that cannot be sent fails the query, as in node-postgres, but at the end of its
   * exchange: what was sent runs to the Sync and every Parse in it is recorded as parsed when its
   * ParseComplete comes. node-postgres closes its statement and fails at once, and its own
   * handler then marks the closed name parsed: the next use of that statement on the connection
   * failed with "prepared statement does not exist", every time (an outside review).
   */
  #refuse(connection: Connection, err: Error): void {
    this._canceledDueToError = err;
    connection.sync();
  }

  /**
   * node-postgres marks only the active query's name as parsed (at each ParseComplete); a leading
   * statement's name is marked here when its own ParseComplete comes, in the order the Parses
   * went, so a Parse skipped after an error is sent again next time, and one done is not.
   */
  #trackParses(connection: Connection): void {
    this.#connection = connection;
    const parses = this.#parses;
    this.#onParsed = () => {
      const name = parses.shift();
      if (name === undefined) return;
      connection.parsedStatements[name] = connection.submittedNamedStatements[name]!;
      delete connection.submittedNamedStatements[name];
    };
    connection.on('parseComplete', this.#onParsed);
  }

  #untrackParses(): void {
    if (!this.#onParsed || !this.#connection) return;
    this.#connection.removeListener('parseComplete', this.#onParsed);
    for (const name of this.#parses) if (name !== undefined) delete this.#connection.submittedNamedStatements[name];
    this.#onParsed = undefined;
  }

  /** The leading statement whose answer is coming (while #leadingPending > 0). */
  #leading(): Leading | undefined {
    return this.before?.[this.before.length - this.#leadingPending];
  }

  override handleRowDescription(msg: { fields: unknown[] }): void {
    if (this.#leadingPending === 0) return super.handleRowDescription(msg);
    this.#leadingRows = new Result(undefined, this._result._types);
    this.#leadingRows.addFields(msg.fields);
  }

  override handleDataRow(msg: { fields: unknown[] }): void {
    if (this.#leadingPending === 0) return super.handleDataRow(msg);
    const rows = this.#leading()?.rows;
    if (!rows || !this.#leadingRows || this._canceledDueToError) return;
    try {
      rows.push(this.#leadingRows.parseRow(msg.fields));
    } catch (err) {
      // As node-postgres does with a row it cannot parse: the query fails at its end.
      this._canceledDueToError = err as Error;
    }
  }

  override handleError(err: Error, connection: Connection): void {
    this.#untrackParses();
    super.handleError(err, connection);
  }

  override handleCommandComplete(msg: { text: string }, connection: Connection): void {
    if (this.#leadingPending > 0) {
      this.#leadingPending--;
      this.#leadingRows = undefined;
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
    this.#untrackParses();
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

/**
 * The first text of a statement sent with the next statement of its transaction, in one round
 * trip (PostgreSQL still runs them one after the other: the next one's snapshot is taken after
 * this one has finished, its locks taken). Its call answers at once, with a `rows` array that is
 * filled when the statement it rode with has answered: read it only after that one's call has
 * returned. Its error fails the statement it rode with (the rows are then not to be trusted).
 * Only inside a transaction; outside one, on PGlite, or with pipelining off, it runs on its own
 * and answers with its rows.
 */
export const WITH_NEXT = '/* with next */';

/** The SQLSTATE of concert_abort(reason) (migration 20261205T030000), whose message is the reason. */
export const ABORT_CODE = 'CA001';
