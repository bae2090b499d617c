import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileHot } from '../../core/src/db/hot.ts';
import { type BookingPass, holdStatement } from '../../core/src/reservations/reservations.repository.ts';
import { admin, seedSale, useApi } from '../../../test/harness.ts';
import { explainPrepared, type PlanNode, walk } from '../../../test/explain.ts';
import { BOOKING_ENV } from './booking.shared.ts';

/** The plan's nodes that read seats, as a failure shows them. */
const seatNodesOf = (nodes: PlanNode[]) => {
  const seatNodes = nodes.filter((n) => n['Relation Name'] === 'seats' || n['Index Name']?.startsWith('seats'));
  return { seatNodes, shown: JSON.stringify(seatNodes.map((n) => [n['Node Type'], n['Index Name'], n['Index Cond'], n['Actual Rows'], n['Rows Removed by Filter']])) };
};

/**
 * A new deployment's first sale: the statistics were gathered before any seat existed, and
 * autovacuum has not come back. The planner then took a show for a row or two, and the hold's
 * seat claim (prepared, on a generic plan) walked every seat of the show to find the one asked
 * for: 999 rows removed by its filter per hold at 1,000 seats, in the bench. Creating a concert
 * gathers the seats' statistics again once its seats are committed.
 */
describe('the hold’s seat claim, on a database whose statistics predate every seat', () => {
  const suite = useApi(BOOKING_ENV);
  let sqlc: InstanceType<typeof pg.Client>;
  let sale: Awaited<ReturnType<typeof seedSale>>;

  beforeAll(async () => {
    sqlc = new pg.Client({ connectionString: suite.db.url });
    await sqlc.connect();
    // Statistics of the empty database, kept (autovacuum would refresh them at its own time).
    for (const t of ['reservations', 'seats', 'reservation_seats', 'users', 'schedules']) await sqlc.query(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`);
    await sqlc.query('ANALYZE');
    // Other shows beside it: the show is a part of the seats, as in any real database.
    for (let i = 0; i < 4; i++) await seedSale(suite.api.url, { users: 1, seatCount: 1000 });
    sale = await seedSale(suite.api.url, { users: 2, seatCount: 1000 });
  });
  afterAll(async () => {
    await sqlc?.end();
  });

  const cases = [
    ['one seat', 'generic', [700]],
    ['three seats', 'generic', [700, 701, 702]],
    ['one seat', 'custom', [700]],
  ] as const;
  it.each(cases)('%s (%s plan): probes the seats asked for by their key, and reads no other seat of the show', async (_, mode, seatNumbers) => {
    const now = new Date();
    // The pass's brand guards the service's writes; this statement is explained and rolled back.
    const pass = { concertId: sale.concertId } as unknown as BookingPass;
    const hold = { reservationId: randomUUID(), userId: sale.userIds[0]!, scheduleId: sale.scheduleId, seatNumbers: [...seatNumbers], heldUntil: new Date(now.getTime() + 300_000), now, limit: 4 };
    const nodes = walk(await explainPrepared(sqlc, compileHot(holdStatement(pass, hold)), mode, { analyze: true }));
    const { seatNodes, shown } = seatNodesOf(nodes);
    // The claim wrote every seat asked for...
    expect(nodes.find((n) => n['Node Type'] === 'ModifyTable' && n['Relation Name'] === 'seats')?.['Actual Rows'], shown).toBe(seatNumbers.length);
    // ...found through an index on the show and seat number, seat numbers included, and no other seat of the show was read.
    const indexScans = seatNodes.filter((n) => n['Index Name']);
    expect(indexScans.length, shown).toBeGreaterThan(0);
    for (const n of indexScans) {
      // The key, or the unsold seats' index on the same two columns (seats_claim_idx).
      expect(['seats_pkey', 'seats_claim_idx'], shown).toContain(n['Index Name']);
      expect(n['Index Cond'], shown).toMatch(/seat_number/);
      expect(n['Actual Rows'], shown).toBeLessThanOrEqual(seatNumbers.length);
    }
    for (const n of seatNodes) expect(n['Rows Removed by Filter'] ?? 0, shown).toBe(0);
  });
});


describe('the demo seed gathers the seats’ statistics once, when it writes them', () => {
  const suite = useApi();
  let sqlc: InstanceType<typeof pg.Client>;
  beforeAll(async () => {
    sqlc = new pg.Client({ connectionString: suite.db.url });
    await sqlc.connect();
    await sqlc.query('ALTER TABLE seats SET (autovacuum_enabled = false)');
  });
  afterAll(async () => {
    await sqlc?.end();
  });
  const lastAnalyze = async () =>
    (await sqlc.query<{ at: Date | null }>(`SELECT last_analyze AS at FROM pg_stat_user_tables WHERE relname = 'seats'`)).rows[0]!.at;

  it('analyzes the seats after the seed that wrote them, and not after a call that found them written', async () => {
    expect(await lastAnalyze()).toBeNull();
    await admin(suite.api.url).admin.seedDemo.mutate({});
    await expect.poll(lastAnalyze).not.toBeNull();
    const first = (await lastAnalyze())!.getTime();
    await admin(suite.api.url).admin.seedDemo.mutate({});
    // The statistics a second ANALYZE would have reported are there by now (one was, above).
    await sqlc.query('SELECT pg_stat_clear_snapshot()');
    expect((await lastAnalyze())!.getTime()).toBe(first);
  });
});
