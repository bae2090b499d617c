import { compileHot } from '../../core/src/db/hot.ts';
import { userSeatCount } from '../../core/src/reservations/reservations.repository.ts';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAppError, key, seedSale, useApi } from '../../../test/harness.ts';
import { growSales } from '../../../test/grow.ts';
import { BOOKING_ENV, booking } from './booking.shared.ts';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  Plans?: PlanNode[];
}
const walk = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(walk)];

/**
 * The per-user seat limit is counted in every hold. Its plan must not depend on when statistics
 * were last gathered: with statistics taken before a burst of sales (a sale's first minute,
 * before autovacuum analyzes), the count once walked every claimed seat of every schedule.
 */
describe('the per-user seat count, with statistics that lag behind the sale', () => {
  const suite = useApi(BOOKING_ENV);
  const book = booking(() => suite.api.url);
  let sqlc: InstanceType<typeof pg.Client>;
  let sale: Awaited<ReturnType<typeof seedSale>>;

  beforeAll(async () => {
    sqlc = new pg.Client({ connectionString: suite.db.url });
    await sqlc.connect();
    sale = await seedSale(suite.api.url, { users: 6, seatCount: 100 });
    for (const [i, u] of sale.userIds.entries()) {
      await (await book.forSchedule(u, sale.scheduleId)).reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [2 * i + 1, 2 * i + 2], idempotencyKey: key() });
    }
    // Statistics of the sale's first minute, kept while it grows (autovacuum would refresh them).
    await sqlc.query('ANALYZE');
    for (const t of ['reservations', 'seats', 'reservation_seats', 'users']) await sqlc.query(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`);
    await growSales(sqlc, { seats: 20_000 });
  });
  afterAll(async () => {
    await sqlc?.end();
  });

  // The API runs its statements prepared (DB_PREPARED_STATEMENTS): after a few runs PostgreSQL
  // may settle on a generic plan, made without the user's id. Both plans are held to the same.
  it.each(['custom', 'generic'] as const)('reads only the user’s own rows: no scan of every claimed seat, a handful of pages (%s plan)', async (mode) => {
    const u = sale.userIds[0]!;
    const count = compileHot(userSeatCount(u, sale.scheduleId, new Date()));
    let explained;
    if (mode === 'custom') {
      explained = await sqlc.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${count.sql}`, [...count.parameters]);
    } else {
      await sqlc.query('SET plan_cache_mode = force_generic_plan');
      await sqlc.query(`PREPARE seat_count AS ${count.sql}`);
      // EXPLAIN takes no parameters: the values go in as literals (the plan is generic all the same).
      const args = count.parameters.map((v) => sqlc.escapeLiteral(v instanceof Date ? v.toISOString() : String(v))).join(', ');
      explained = await sqlc.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE seat_count(${args})`);
      await sqlc.query('DEALLOCATE seat_count');
      await sqlc.query('RESET plan_cache_mode');
    }
    const plan = explained.rows[0]!['QUERY PLAN'][0]!.Plan;
    const scans = walk(plan).filter((n) => n['Relation Name']);
    const shown = JSON.stringify(scans.map((n) => [n['Node Type'], n['Relation Name'], n['Index Name'], n['Actual Rows']]));
    // Every table is reached through an index whose leading column is the user's id...
    for (const n of scans) {
      expect(n['Node Type'], shown).toMatch(/^Index (Only )?Scan$/);
      expect(n['Index Name'], shown).not.toBe('seats_reservation_idx');
      expect(n['Actual Rows'], shown).toBeLessThanOrEqual(4);
    }
    // ...and the whole count reads a few pages, not the 20,000 seats sold to others.
    expect(plan['Shared Hit Blocks'] + plan['Shared Read Blocks'], shown).toBeLessThan(40);
  });

  it('still counts holds and purchases: the fifth seat is refused', async () => {
    const u = sale.userIds[1]!;
    const c = await book.forSchedule(u, sale.scheduleId);
    const r = await c.reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [50], idempotencyKey: key() });
    await (await book.forSchedule(u, sale.scheduleId)).payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
    await (await book.forSchedule(u, sale.scheduleId)).reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [51], idempotencyKey: key() });
    await expectAppError(
      (await book.forSchedule(u, sale.scheduleId)).reservations.hold.mutate({ scheduleId: sale.scheduleId, seatNumbers: [52], idempotencyKey: key() }),
      'TICKET_LIMIT_EXCEEDED',
    );
  });
});
