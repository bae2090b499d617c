import { auditQuery } from '../../core/src/admin/admin.repository.ts';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, useApi } from '../../../test/harness.ts';
import { growSales } from '../../../test/grow.ts';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Loops': number;
  Plans?: PlanNode[];
}
const walk = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(walk)];

const PAID = 50_000;
const PER_RESERVATION = 2;

/**
 * The contract: admin.audit stays under two seconds with 50,000 paid reservations. The sales are
 * written in bulk (test/grow.ts), the audit asked through the API. The time asserted is the
 * database's own, which other work on a shared machine stretches far less than a wall clock: the
 * CPU time the audit's statement costs its PostgreSQL backend (run without parallel workers, so
 * that backend does all of it; /proc/<pid>/stat, when PostgreSQL runs on this machine), else
 * EXPLAIN ANALYZE's execution time; the best of three runs either way. Every figure is printed,
 * the wall time of the API call too.
 */
describe('admin.audit on 50,000 paid reservations', () => {
  const suite = useApi();
  const ops = () => admin(suite.api.url);
  let sqlc: InstanceType<typeof pg.Client>;

  beforeAll(async () => {
    sqlc = new pg.Client({ connectionString: suite.db.url });
    await sqlc.connect();
    const t0 = performance.now();
    await growSales(sqlc, { seats: PAID * PER_RESERVATION, perReservation: PER_RESERVATION });
    const { rows } = await sqlc.query<{ n: number }>(`SELECT count(*)::int AS n FROM reservations WHERE status = 'PAID'`);
    expect(rows[0]!.n).toBe(PAID);
    console.log(`grew ${PAID} paid reservations in ${Math.round(performance.now() - t0)} ms`);
  }, 300_000);
  afterAll(async () => {
    await sqlc?.end();
  });

  /** The audit's statement, as the database runs it: its execution time and its busiest node. */
  async function explain() {
    const q = auditQuery().compile(suite.api.core.db);
    const { rows } = await sqlc.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode; 'Execution Time': number }> }>(
      `EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${q.sql}`,
      [...q.parameters],
    );
    const plan = rows[0]!['QUERY PLAN'][0]!;
    const nodes = walk(plan.Plan);
    return {
      ms: plan['Execution Time'],
      maxLoops: Math.max(...nodes.map((n) => n['Actual Loops'])),
      shown: JSON.stringify(nodes.filter((n) => n['Actual Loops'] > 1).map((n) => [n['Node Type'], n['Relation Name'], n['Actual Loops']])),
    };
  }

  /** CPU time (ms) the audit's statement costs this connection's backend; null if its /proc entry is not readable. */
  async function backendCpuMs(): Promise<number | null> {
    const { rows } = await sqlc.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const read = () => {
      try {
        // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        const f = readFileSync(`/proc/${rows[0]!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
      } catch {
        return null;
      }
    };
    await sqlc.query('SET max_parallel_workers_per_gather = 0');
    const q = auditQuery().compile(suite.api.core.db);
    const before = read();
    await sqlc.query(q.sql, [...q.parameters]);
    const after = read();
    await sqlc.query('RESET max_parallel_workers_per_gather');
    return before === null || after === null ? null : after - before;
  }

  it('answers clean in under two seconds, reading each table once rather than once per reservation', async () => {
    const t0 = performance.now();
    const report = await ops().admin.audit.query({});
    const wallMs = performance.now() - t0;
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.ok).toBe(true);

    // The best of three: the machine's other work stretches a run, never shortens one.
    const runs = [await explain(), await explain(), await explain()];
    const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
    // No node of the plan runs once per row: a subquery per reservation is what made it 103 s.
    expect(best.maxLoops, best.shown).toBeLessThan(100);

    const cpu = [await backendCpuMs(), await backendCpuMs(), await backendCpuMs()];
    const cpuMs = cpu.every((c) => c !== null) ? Math.min(...(cpu as number[])) : null;
    console.log(
      `admin.audit over ${PAID} paid reservations: ${Math.round(wallMs)} ms through the API; ` +
        `database execution ${Math.round(best.ms)} ms (EXPLAIN ANALYZE, best of ${runs.map((r) => Math.round(r.ms)).join('/')} ms); ` +
        `backend CPU ${cpuMs === null ? 'not readable here' : `${cpuMs} ms (best of ${cpu.join('/')} ms)`}`,
    );
    expect(cpuMs ?? best.ms).toBeLessThan(2000);
  }, 120_000);

  it('still finds what is broken among them, and counts it', async () => {
    const { rows: r } = await sqlc.query<{ id: string; user_id: string }>(`SELECT id, user_id FROM reservations WHERE status = 'PAID' ORDER BY id LIMIT 5`);
    const [a, b, c, d, e] = r.map((x) => x);
    await sqlc.query('BEGIN');
    // Behind the code's back, as a bug or a hand edit would: the foreign keys are not the point here.
    await sqlc.query('SET LOCAL session_replication_role = replica');
    // A sold seat whose ticket is gone (and a PAID reservation one ticket short).
    await sqlc.query(`DELETE FROM tickets WHERE ctid = (SELECT ctid FROM tickets WHERE reservation_id = $1 LIMIT 1)`, [a!.id]);
    // A payment one won short of its reservation's total.
    await sqlc.query(`UPDATE payments SET amount = amount - 1, balance_before = balance_before - 1 WHERE reservation_id = $1`, [b!.id]);
    // A balance that is not its ledger's.
    await sqlc.query(`UPDATE users SET balance = balance + 1 WHERE id = $1`, [c!.user_id]);
    // A payment without its event.
    await sqlc.query(`DELETE FROM outbox_events WHERE reservation_id = $1 AND type = 'payment.completed'`, [d!.id]);
    // Marked refunded with no refund: its seats still sold, no refund event either.
    await sqlc.query(`UPDATE reservations SET status = 'REFUNDED', refunded_at = now() WHERE id = $1`, [e!.id]);
    await sqlc.query('COMMIT');

    const report = await ops().admin.audit.query({});
    expect(report.ok).toBe(false);
    const failed = Object.fromEntries(report.checks.filter((x) => !x.ok).map((x) => [x.name, Number(x.detail.split(' ')[0])]));
    expect(failed).toEqual({
      'no seat sold twice': 1,
      'every balance equals its ledger': 1,
      'every PAID reservation has one payment of its total': 2,
      'no seat held by a reservation that is not HELD': PER_RESERVATION,
      'every REFUNDED reservation has one refund of its amount and no live ticket': 1,
      'every event of a committed change is in the outbox': 2,
    });
  }, 120_000);
});
