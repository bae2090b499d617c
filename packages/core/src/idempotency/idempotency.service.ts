import { createHash, randomUUID } from 'node:crypto';
import superjson from 'superjson';
import { AppError } from '../errors.ts';
import { type Clock, dbNow, plusMs } from '../clock.ts';
import type { Db, RidingStatement, Tx } from '../db/database.ts';
import type { HotFragment } from '../db/hot.ts';
import * as repo from './idempotency.repository.ts';

/**
 * How long a running call owns its key before a retry may take it over (its process died), by the
 * database's clock: processes whose own clocks drift apart still agree on whose lease it is.
 */
export const LEASE_MS = 15_000;
/** Keys are kept at least 24 hours; the sweep removes them a day later. */
export const RETENTION_MS = 48 * 3600_000;

export type IdempotentProcedure = 'reservations.hold' | 'balance.charge' | 'payments.pay' | 'reservations.refund';

/** Completes the key with what it stores, in the operation's committing transaction. */
export interface Complete<S> {
  (trx: Tx, stored: S): Promise<void>;
  /** The same as a statement riding along in the transaction's event statement: one round trip fewer. */
  along(stored: S): RidingStatement;
  /**
   * `along`, with what the key stores computed by that statement: a fragment whose value is the
   * text superjson.stringify would make of it (so a replay answers as the first call did).
   */
  alongComputed(stored: HotFragment): RidingStatement;
}

/** S: what the key stores; R: the answer; C: what `check` found. */
export interface IdempotentCall<S, R, C = undefined> {
  /**
   * Checks that write nothing and may refuse the call before its key is claimed (a taken seat,
   * from the cached seat map): a refused call then costs one read of the key, which still answers
   * a replay or a call in progress, instead of the key's claim and release, two commits (the
   * crowd on one seat at an opening). What it finds is handed to `execute`.
   */
  check?(): Promise<C>;
  /** Runs the operation; it must complete the key (`complete(trx, stored)`, or `complete.along`) inside its committing transaction. */
  execute(complete: Complete<S>, checked: C): Promise<R>;
  /** The answer to a replay, from what the first call stored (it may retry an after-commit side effect). */
  replay(stored: S): R | Promise<R>;
}

/** For a call whose stored result is its answer. */
export const storedAnswer = <T>(stored: T): T => stored;

export class IdempotencyService {
  constructor(private readonly deps: { db: Db; clock: Clock }) {}

  async run<S, R = S, C = undefined>(ref: repo.KeyRef & { procedure: IdempotentProcedure }, input: unknown, call: IdempotentCall<S, R, C>): Promise<R> {
    const { db, clock } = this.deps;
    const requestHash = hashInput(input);
    const owner = randomUUID();
    let checked = undefined as C;
    if (call.check) {
      try {
        checked = await call.check();
      } catch (err) {
        // Refused before the key was claimed: the key, if any, answers as it would have.
        const existing = await repo.findKey(db, ref, dbNow(clock));
        if (existing) {
          const answer = keyAnswer(existing, requestHash, call);
          if (answer) return answer;
        }
        throw err;
      }
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      // The database's clock sets and judges the lease (statement_timestamp() in each statement).
      const now = dbNow(clock);
      const claimed = await repo.insertKey(db, ref, { requestHash, owner, leaseMs: LEASE_MS, now });
      if (!claimed) {
        const existing = await repo.findKey(db, ref, now);
        if (!existing) continue; // released between our insert and read: try to claim again
        const answer = keyAnswer(existing, requestHash, call);
        if (answer) return answer;
        if (!(await repo.takeOverKey(db, ref, existing.owner, owner, LEASE_MS, now))) continue;
      }
      return this.execute(ref, owner, call, checked);
    }
    throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'A request with this idempotency key is still running');
  }

  private async execute<S, R, C>(ref: repo.KeyRef, owner: string, call: IdempotentCall<S, R, C>, checked: C): Promise<R> {
    let completed = false;
    const settle = (updated: boolean) => {
      // Our lease lapsed and another call took the key: this one must not also succeed.
      if (!updated) throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'This request took too long and was superseded by a retry');
      completed = true;
    };
    const complete: Complete<S> = Object.assign(
      async (trx: Tx, value: S) => settle(await repo.completeKey(trx, ref, owner, superjson.stringify(value), dbNow(this.deps.clock))),
      {
        along: (value: S): RidingStatement => ({ sql: repo.completeKeyStatement(ref, owner, superjson.stringify(value), dbNow(this.deps.clock)), settle }),
        alongComputed: (stored: HotFragment): RidingStatement => ({ sql: repo.completeKeyStatement(ref, owner, stored, dbNow(this.deps.clock)), settle }),
      },
    );
    try {
      const result = await call.execute(complete, checked);
      if (!completed) throw new Error(`idempotent ${ref.procedure} finished without completing its key`);
      return result;
    } catch (err) {
      // An error releases the key so that a retry runs again. (A completed key whose transaction
      // rolled back is still IN_PROGRESS in the database, so this releases it too.)
      const released = await repo.releaseKey(this.deps.db, ref, owner).catch(() => undefined);
      // Unless the key is no longer this call's: its lease lapsed (a stalled connection) and a
      // retry took it over. The key's answer is then the retry's, not this call's error: a payment
      // whose retry had paid answered TOKEN_EXPIRED (its token spent by that payment), and a
      // client trusting it would have bought again (an outside review). Looked up only when the
      // release found the key not this call's: a refusal's common path reads nothing more.
      const current = released === false ? await repo.findKey(this.deps.db, ref, dbNow(this.deps.clock)).catch(() => undefined) : undefined;
      if (current !== undefined && current.owner !== owner) {
        if (current.state === 'DONE') return call.replay(superjson.parse<S>(current.response!));
        throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'This request took too long and was superseded by a retry');
      }
      throw err;
    }
  }

  async sweep(): Promise<number> {
    return repo.deleteKeysCreatedBefore(this.deps.db, plusMs(dbNow(this.deps.clock), -RETENTION_MS));
  }
}

/**
 * What a key someone else holds answers: another request's (IDEMPOTENCY_KEY_REUSED), a finished
 * call's result (a replay), a running call's (IDEMPOTENCY_IN_PROGRESS); undefined when its
 * lease lapsed (the caller may take it over).
 */
function keyAnswer<S, R>(
  existing: { request_hash: string; state: string; response: string | null; lapsed: boolean },
  requestHash: string,
  call: { replay(stored: S): R | Promise<R> },
): Promise<R> | undefined {
  if (existing.request_hash !== requestHash) throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was used with a different request');
  if (existing.state === 'DONE') return Promise.resolve(call.replay(superjson.parse<S>(existing.response!)));
  if (!existing.lapsed) throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'A request with this idempotency key is still running');
  return undefined;
}

/** Same request, same hash: keys sorted, so field order does not matter. */
export function hashInput(input: unknown): string {
  return createHash('sha256').update(stableStringify(input)).digest('base64url');
}

function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}
