import { randomUUID } from 'node:crypto';
import type * as ClientModule from './client.ts';
import type { ApiClient, Identity } from './client.ts';
import { isUserIdText, MAX_USER_ID } from './args.ts';
import { appCodeOf, type Known, UsageError } from './errors.ts';
import { type Colors, colorsFor } from './format.ts';
import { inquirerPrompts, type Prompts } from './prompts.ts';
import { apiKey, type SavedToken, sessionPath, SessionStore } from './session.ts';

export type OutStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
export type InStream = NodeJS.ReadableStream & { isTTY?: boolean };

/** Everything a command touches outside itself, so tests can run commands in-process. */
export interface Io {
  stdout: OutStream;
  stderr: OutStream;
  stdin: InStream;
  env: NodeJS.ProcessEnv;
  /** Where relative paths are resolved: the process's directory, or the caller's under `pnpm concert` (see main.ts). */
  cwd: string;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
  now?: () => Date;
}

export interface GlobalOptions {
  api?: string;
  user?: string;
  userToken?: string;
  adminKey?: string;
  queueToken?: string;
  json?: boolean;
}

export const DEFAULT_API = 'http://127.0.0.1:3000';

/** Per-call options: the waiting-room token travels in the operation's context. */
export interface CallContext {
  context: { queueToken?: string };
}

export const withToken = (queueToken: string | undefined): CallContext => ({ context: queueToken ? { queueToken } : {} });

export class Ctx {
  readonly api: string;
  readonly json: boolean;
  /** Colours for stdout and for stderr: each on only when that stream is a terminal and NO_COLOR is unset. */
  readonly c: Colors;
  readonly ce: Colors;
  readonly session: SessionStore;
  readonly userId: number | undefined;
  readonly userToken: string | undefined;
  readonly adminKey: string | undefined;
  readonly queueTokenOverride: string | undefined;
  /** A command that succeeded in talking to the server but found something wrong (a failed audit) sets 1. */
  exitCode = 0;
  /** What the command has learned (the concert of a schedule, …), so an error's hint names real values. */
  readonly known: Known = {};
  private clientCache: ApiClient | undefined;
  /** The tRPC client module, loaded by create() (never for --help). */
  private clientModule: typeof ClientModule | undefined;
  private printed = false;

  /** A Ctx with the API client loaded: what commander's actions use. */
  static async create(io: Io, opts: GlobalOptions): Promise<Ctx> {
    const ctx = new Ctx(io, opts);
    ctx.clientModule = await import('./client.ts');
    return ctx;
  }

  constructor(
    readonly io: Io,
    opts: GlobalOptions,
  ) {
    const env = io.env;
    this.api = opts.api ?? env.CONCERT_API_URL ?? DEFAULT_API;
    // `localhost:3000` parses as a URL of the scheme `localhost:`: fetch refused it later, as an
    // unreachable API (NETWORK_ERROR, exit 1), where `127.0.0.1:3000` was bad usage (exit 2).
    let protocol: string | undefined;
    try {
      protocol = new URL(this.api).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`--api must be an http:// or https:// URL such as ${DEFAULT_API}, not "${this.api}"`);
    // The server's start line names its tRPC endpoint (…/trpc), and that is what people copy: the
    // client adds /trpc itself, and …/trpc/trpc was PROCEDURE_NOT_FOUND on every command. The
    // REST base (…/v1) is the same server's too: …/v1/trpc was a 404, told as an unreachable API.
    this.api = this.api.replace(/\/(trpc|v1)\/*$/i, '');
    this.json = opts.json === true;
    this.c = colorsFor(io.stdout, env);
    this.ce = colorsFor(io.stderr, env);
    this.session = new SessionStore(sessionPath(env));
    // An identity given on the command line outranks the environment's, whichever kind: a script
    // that exported CONCERT_USER and passed --user-token for one command was told it passed both.
    const flagged = opts.user !== undefined || opts.userToken !== undefined;
    const user = flagged ? opts.user : env.CONCERT_USER;
    if (user !== undefined && user !== '') {
      if (!isUserIdText(user)) throw new UsageError(`${opts.user !== undefined ? '--user' : 'CONCERT_USER'} must be a positive whole number up to ${MAX_USER_ID}, not "${user}"`);
      this.userId = Number(user.trim());
    }
    this.userToken = (flagged ? opts.userToken : env.CONCERT_USER_TOKEN) || undefined;
    if (this.userId !== undefined && this.userToken) {
      throw new UsageError(flagged ? 'Pass either --user or --user-token, not both' : 'Set either CONCERT_USER or CONCERT_USER_TOKEN, not both');
    }
    this.adminKey = opts.adminKey ?? (env.CONCERT_ADMIN_KEY || undefined);
    this.queueTokenOverride = opts.queueToken;
  }

  now(): Date {
    return this.io.now ? this.io.now() : new Date();
  }

  get client(): ApiClient {
    this.clientCache ??= this.clientFor(this.identity, { signal: this.io.signal });
    return this.clientCache;
  }

  /**
   * The caller's client whose every request gives up after `timeoutMs` instead of 30 s: for a view
   * that polls once a second (`admin watch`), a request that hangs that long is an outage to ride
   * through, and 30 s of it doubled the time before the ride-through's own 30 s began.
   */
  clientWithTimeout(timeoutMs: number): ApiClient {
    return this.clientFor(this.identity, { signal: this.io.signal, timeoutMs });
  }

  private get identity(): Identity {
    return { ...(this.userId !== undefined ? { userId: this.userId } : {}), ...(this.userToken ? { userToken: this.userToken } : {}), ...(this.adminKey ? { adminKey: this.adminKey } : {}) };
  }

  /** A client of this API for someone else (a rehearsal's fans) or with other limits (a release after Ctrl-C). */
  clientFor(who: Identity, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): ApiClient {
    if (!this.clientModule) throw new Error('Ctx.create() loads the API client; new Ctx() has none');
    return this.clientModule.createApiClient(this.api, who, opts);
  }

  /** Remembers what the command learned, for the hint of an error that follows. */
  know(facts: Known): void {
    Object.assign(this.known, facts);
  }

  /** The session file's name for the caller: the same user by id or by token shares tokens. */
  requireUser(): string {
    if (this.userId !== undefined) return `user:${this.userId}`;
    if (this.userToken) {
      const sub = jwtSubject(this.userToken);
      return sub ? `user:${sub}` : `token:${this.userToken.slice(-16)}`;
    }
    throw new UsageError('This command acts for a user: pass --user ID (or --user-token JWT)', 'Or set CONCERT_USER for a whole script');
  }

  requireAdmin(): void {
    if (!this.adminKey) throw new UsageError('Operator commands need the admin key: pass --admin-key KEY or set CONCERT_ADMIN_KEY');
  }

  /** The queue token to present for a concert: --queue-token, else the one the session remembers. */
  tokenFor(concertId: number): string | undefined {
    if (this.queueTokenOverride) return this.queueTokenOverride;
    return this.session.get(this.api, this.requireUser(), concertId)?.token;
  }

  /** When the saved place in line for the concert stops being ACTIVE, as last seen (unknown with --queue-token, or before a turn). */
  turnEndsAt(concertId: number): Date | undefined {
    if (this.queueTokenOverride) return undefined;
    const saved = this.session.get(this.api, this.requireUser(), concertId);
    return saved?.activeUntil ? new Date(saved.activeUntil) : undefined;
  }

  tokenCall(concertId: number): CallContext {
    return withToken(this.tokenFor(concertId));
  }

  rememberTicket(t: { token: string; concertId: number; status: SavedToken['status']; activeUntil: Date | null; enteredAt?: Date }): void {
    const user = this.requireUser();
    if (t.status === 'EXPIRED') this.session.delete(this.api, user, t.concertId);
    else
      this.session.set({
        api: apiKey(this.api),
        user,
        concertId: t.concertId,
        token: t.token,
        status: t.status,
        activeUntil: t.activeUntil?.toISOString() ?? null,
        ...(t.enteredAt ? { enteredAt: t.enteredAt.toISOString() } : {}),
      });
  }

  forgetTicket(concertId: number): void {
    this.session.delete(this.api, this.requireUser(), concertId);
  }

  /**
   * After a payment that says it expired its queue token: forget the saved token, unless that token
   * entered the line after the payment was made. A payment retried with its key is the first
   * answer replayed (queueTokenExpired: true) and the server leaves a newer token alone (API.md,
   * payments); forgetting it anyway left the fan ACTIVE on the server with no token to hold with.
   */
  forgetTicketSpentAt(concertId: number, paidAt: Date): void {
    const saved = this.session.get(this.api, this.requireUser(), concertId);
    if (saved?.enteredAt && new Date(saved.enteredAt).getTime() > new Date(paidAt).getTime()) return;
    this.forgetTicket(concertId);
  }

  /** A fresh idempotency key per invocation, or the caller's (to retry a call safely). */
  /** Whether the show was cancelled (the catalog answers SCHEDULE_CANCELLED for it): a hold it released was not the fan's doing. */
  async showCancelled(scheduleId: number): Promise<boolean> {
    return this.client.concerts.schedule.query({ scheduleId }).then(
      () => false,
      (err: unknown) => appCodeOf(err) === 'SCHEDULE_CANCELLED',
    );
  }

  async idempotencyKey(given: string | undefined): Promise<string> {
    if (given === undefined) return randomUUID();
    const { ZIdempotencyKey } = await import('@concert/core/schemas');
    const r = ZIdempotencyKey.safeParse(given);
    if (!r.success) throw new UsageError(`--idempotency-key ${r.error.issues[0]?.message ?? 'is not valid'}`);
    return given;
  }

  /** The command's one result: JSON on stdout with --json, else the human rendering. */
  print<T>(data: T, human: (c: Colors) => string): T {
    if (this.printed && this.json) throw new Error('a command prints one JSON document');
    this.printed = true;
    this.io.stdout.write(this.json ? `${JSON.stringify(data, null, 2)}\n` : `${human(this.c)}\n`);
    return data;
  }

  /** Progress and advice for people, on stderr, never mixed into --json output. */
  note(line: string | ((c: Colors) => string)): void {
    if (this.json) return;
    this.io.stderr.write(`${typeof line === 'string' ? line : line(this.ce)}\n`);
  }

  /**
   * Prompts only with a terminal on both ends, and never with --json: a script run from a terminal
   * has one on stdin and stderr, and its `--json book` without --yes waited at the pay question
   * (drawn on stderr) where the same script in CI was told the missing flag.
   */
  get interactive(): boolean {
    return !this.json && this.io.stdin.isTTY === true && this.io.stdout.isTTY === true;
  }

  get prompts(): Prompts {
    return inquirerPrompts({ input: this.io.stdin, output: this.io.stdout, signal: this.io.signal });
  }

  /** Whether a live line (a spinner, a progress bar) can be redrawn in place on stderr. */
  get live(): boolean {
    return this.io.stderr.isTTY === true;
  }
}

function jwtSubject(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof payload.sub === 'string' && /^\d+$/.test(payload.sub) ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
