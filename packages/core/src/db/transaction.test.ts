import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { useCoreWithSessions } from '../../../../test/core-suite.ts';
import { transaction } from './database.ts';

describe('transaction', () => {
  const s = useCoreWithSessions();

  it('retries the whole transaction on a serialization failure, and commits once', async () => {
    await sql`CREATE TABLE IF NOT EXISTS tx_probe (n int)`.execute(s.core.db);
    let runs = 0;
    await transaction(s.core.db, async (trx) => {
      runs++;
      await sql`INSERT INTO tx_probe VALUES (${runs})`.execute(trx);
      if (runs === 1) throw Object.assign(new Error('could not serialize access'), { code: '40001' });
    });
    expect(runs).toBe(2);
    expect((await sql<{ n: number }>`SELECT n FROM tx_probe`.execute(s.core.db)).rows).toEqual([{ n: 2 }]);
  });

  // The after-commit hooks ran inside the retry: a hook failing with a retryable code ran the
  // committed transaction again (a second write), and any hook error was taken for the
  // transaction's own. Found by the money review, from the code.
  it('never runs a committed transaction again, whatever an after-commit hook throws', async () => {
    await sql`CREATE TABLE IF NOT EXISTS tx_hook_probe (n int)`.execute(s.core.db);
    let runs = 0;
    const failing = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    await expect(
      transaction(s.core.db, async (trx, onCommit) => {
        runs++;
        await sql`INSERT INTO tx_hook_probe VALUES (${runs})`.execute(trx);
        onCommit(() => {
          throw failing;
        });
      }),
    ).rejects.toBe(failing);
    expect(runs).toBe(1);
    expect((await sql<{ n: number }>`SELECT n FROM tx_hook_probe`.execute(s.core.db)).rows).toEqual([{ n: 1 }]);
  });
});
