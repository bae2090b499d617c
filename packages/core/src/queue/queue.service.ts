import { AppError, isAppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { QueueConfigureInput } from '../schemas.ts';
import type { ActivePass, PaidToken, QueueGate, SpentTokens } from './queue.gate.ts';
import { etaSeconds, type QueueSettings, type QueueStats, type QueueStore, type TokenState } from './queue.store.ts';
import { newTokenId, signToken, type TokenClaims, verifyToken } from './queue.tokens.ts';

export interface QueueTicket {
  token: string;
  concertId: number;
  status: 'WAITING' | 'ACTIVE' | 'EXPIRED';
  position: number | null;
  aheadCount: number;
  etaSeconds: number | null;
  /** An operator has paused admission: the place is kept, nobody is let in until it resumes (etaSeconds is then null). */
  paused: boolean;
  enteredAt: Date;
  activeUntil: Date | null;
  pollAfterMs: number;
}

export type QueueStatsView = QueueStats & { concertId: number };

export interface QueueDeps {
  store: QueueStore;
  clock: Clock;
  config: Pick<Config, 'queue' | 'queueTokenSecret' | 'rateLimits'>;
  /** Throws CONCERT_NOT_FOUND for an unknown concert. */
  assertConcert: (concertId: number) => Promise<void>;
}

/** The waiting room: one line per concert, FIFO, at most maxActive ACTIVE at once. */
export class QueueService implements SpentTokens {
  private readonly defaults: QueueSettings;

  constructor(private readonly deps: QueueDeps) {
    this.defaults = { ...deps.config.queue, paused: false };
  }

  async enter(userId: number, concertId: number): Promise<QueueTicket> {
    await this.deps.assertConcert(concertId);
    const now = this.now();
    const r = await this.call(() => this.deps.store.enter(concertId, userId, newTokenId(), now, this.defaults));
    return this.ticket({ concertId, userId, tokenId: r.tokenId, enteredAt: r.enteredAt }, r);
  }

  async status(userId: number, token: string | undefined): Promise<QueueTicket> {
    const claims = this.verify(userId, token);
    const now = this.now();
    const limit = this.deps.config.rateLimits.enabled;
    const state = await this.call(() => this.deps.store.status(claims.concertId, claims.tokenId, now, this.defaults, limit));
    if ('rateLimited' in state) {
      throw new AppError('RATE_LIMITED', `Polling faster than pollAfterMs asks; retry in ${state.rateLimited} ms`, {
        retryAfterMs: state.rateLimited,
      });
    }
    return this.ticket(claims, state, token);
  }

  async leave(userId: number, token: string | undefined): Promise<{ left: true }> {
    const claims = this.verify(userId, token);
    await this.call(() => this.deps.store.leave(claims.concertId, claims.tokenId, this.now(), this.defaults));
    return { left: true };
  }

  /** The booking gate: the token must be genuine, the caller's, for this concert, and ACTIVE now. */
  gate(userId: number, token: string | undefined): QueueGate {
    return {
      admit: async (concertId: number, opts: { seatMapOf?: number } = {}) => {
        // No token is TOKEN_INVALID (401), like a malformed one; a genuine one still waiting is QUEUE_NOT_ACTIVE.
        const claims = this.verify(userId, token);
        if (claims.concertId !== concertId) {
          throw new AppError('TOKEN_WRONG_CONCERT', `This queue token is for concert ${claims.concertId}, not ${concertId}`);
        }
        const { state, seatMapVersion } = await this.call(() => this.deps.store.check(concertId, claims.tokenId, this.now(), opts.seatMapOf));
        if (state === 'WAITING') throw new AppError('QUEUE_NOT_ACTIVE', 'You are still waiting in line');
        if (state === 'EXPIRED') throw new AppError('TOKEN_EXPIRED', 'This queue token has expired; enter the waiting room again');
        // The one place a pass is made (its brand cannot be written anywhere else).
        const pass = { userId, concertId, tokenId: claims.tokenId, ...(seatMapVersion === undefined ? {} : { seatMapVersion }) };
        return Object.freeze(pass) as ActivePass;
      },
    };
  }

  async spend(token: PaidToken): Promise<void> {
    await this.deps.store.leave(token.concertId, token.tokenId, this.now(), this.defaults);
  }

  async stats(concertId: number): Promise<QueueStatsView> {
    await this.deps.assertConcert(concertId);
    return { concertId, ...(await this.call(() => this.deps.store.stats(concertId, this.now(), this.defaults))) };
  }

  async configure(input: QueueConfigureInput): Promise<QueueStatsView> {
    const { concertId, ...patch } = input;
    await this.deps.assertConcert(concertId);
    return { concertId, ...(await this.call(() => this.deps.store.configure(concertId, patch, this.now(), this.defaults))) };
  }

  /** Every line's numbers, for metrics. */
  async allStats(): Promise<QueueStatsView[]> {
    const now = this.now();
    const ids = await this.deps.store.concerts();
    return Promise.all(ids.map(async (concertId) => ({ concertId, ...(await this.deps.store.stats(concertId, now, this.defaults)) })));
  }

  /** Settles every line: lapsed ACTIVE tokens out, idle WAITING ones dropped, the head admitted. */
  async tick(): Promise<void> {
    await this.deps.store.tick(this.now(), this.defaults);
  }

  async ping(): Promise<boolean> {
    return this.deps.store.ping();
  }

  async close(): Promise<void> {
    await this.deps.store.close();
  }

  private now(): number {
    return this.deps.clock.now().getTime();
  }

  private verify(userId: number, token: string | undefined): TokenClaims {
    if (!token) throw new AppError('TOKEN_INVALID', 'Enter the waiting room first (queue.enter) and send its token in the x-queue-token header');
    const claims = verifyToken(this.deps.config.queueTokenSecret, token);
    // Someone else's genuine token is as useless to the caller as a forged one.
    if (!claims || claims.userId !== userId) throw new AppError('TOKEN_INVALID', 'This queue token is not valid');
    return claims;
  }

  /** A queue store that is down answers SERVICE_UNAVAILABLE at once rather than an internal error. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isAppError(err)) throw err;
      throw new AppError('SERVICE_UNAVAILABLE', 'The waiting room is unavailable; try again shortly');
    }
  }

  /** `token`: the caller's own, already verified, when there is one (saves signing it again). */
  private ticket(claims: TokenClaims, state: TokenState, token?: string): QueueTicket {
    const waiting = state.status === 'WAITING';
    const position = waiting ? state.position! : null;
    return {
      token: token ?? signToken(this.deps.config.queueTokenSecret, claims),
      concertId: claims.concertId,
      status: state.status,
      position,
      aheadCount: waiting ? position! - 1 : 0,
      etaSeconds: waiting && !state.paused && state.admittedLastMinute > 0 ? etaSeconds(position!, state.admittedLastMinute) : null,
      paused: state.paused,
      enteredAt: new Date(claims.enteredAt),
      activeUntil: state.activeUntil === null ? null : new Date(state.activeUntil),
      pollAfterMs: state.pollAfterMs,
    };
  }
}
