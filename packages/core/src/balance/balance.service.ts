import { AppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { type Db, transaction } from '../db/database.ts';
import { type IdempotencyService, storedAnswer } from '../idempotency/idempotency.service.ts';
import type { ChargeInput, HistoryInput } from '../schemas.ts';
import type { Balance, ChargeResult, History } from '../types.ts';
import { getUser, lockUser } from '../users/users.repository.ts';
import * as repo from './balance.repository.ts';

export class BalanceService {
  constructor(
    private readonly deps: { db: Db; clock: Clock; config: Pick<Config, 'charge'>; idempotency: IdempotencyService },
  ) {}

  async get(userId: number): Promise<Balance> {
    const user = await getUser(this.deps.db, userId);
    return { userId, balance: user.balance, updatedAt: user.updated_at };
  }

  async charge(userId: number, input: ChargeInput): Promise<ChargeResult> {
    const { amount, idempotencyKey } = input;
    const { maxPerTx, monthlyLimit } = this.deps.config.charge;
    return this.deps.idempotency.run<ChargeResult>({ userId, procedure: 'balance.charge', key: idempotencyKey }, { amount }, {
      execute: async (complete) => {
        if (!Number.isSafeInteger(amount) || amount <= 0) {
          throw new AppError('INVALID_AMOUNT', 'The amount must be a positive whole number of won');
        }
        if (amount > maxPerTx) {
          throw new AppError('CHARGE_LIMIT_EXCEEDED', `One charge may be at most ${maxPerTx} won`, { maxPerTx });
        }
        return transaction(this.deps.db, async (trx) => {
          await lockUser(trx, userId);
          const now = this.deps.clock.now();
          const { from, to } = utcMonth(now);
          const charged = await repo.sumUserCharges(trx, userId, from, to);
          if (charged + amount > monthlyLimit) {
            throw new AppError('CHARGE_LIMIT_EXCEEDED', `Charges this month may total at most ${monthlyLimit} won`, {
              monthlyLimit,
              chargedThisMonth: charged,
            });
          }
          const { balance } = await repo.applyLedgerEntry(trx, {
            user_id: userId,
            kind: 'CHARGE',
            source: 'USER',
            amount,
            reservation_id: null,
            payment_id: null,
            created_at: now,
          });
          const result: ChargeResult = { userId, charged: amount, balance, chargedAt: now };
          await complete(trx, result);
          return result;
        });
      },
      replay: storedAnswer,
    });
  }

  async history(userId: number, input: HistoryInput): Promise<History> {
    const beforeId = input.cursor === undefined ? undefined : decodeCursor(input.cursor);
    const rows = await repo.findLedgerPage(this.deps.db, userId, beforeId, input.limit);
    const page = rows.slice(0, input.limit);
    const last = page.at(-1);
    return {
      entries: page.map((r) => ({
        entryId: r.id,
        kind: r.kind,
        amount: r.amount,
        balanceAfter: r.balance_after,
        reservationId: r.reservation_id,
        createdAt: r.created_at,
      })),
      nextCursor: rows.length > input.limit && last ? encodeCursor(last.id) : null,
    };
  }
}

/** The calendar month (UTC) holding `now`: the monthly cap's window. */
export function utcMonth(now: Date): { from: Date; to: Date } {
  return {
    from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
    to: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
  };
}

const encodeCursor = (id: number) => Buffer.from(`e:${id}`).toString('base64url');

function decodeCursor(cursor: string): number {
  const m = /^e:(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new AppError('INVALID_INPUT', 'The cursor is not one this server gave out', { path: ['cursor'] });
  return Number(m[1]);
}
