import type pg from 'pg';

/** A node of PostgreSQL's EXPLAIN (FORMAT JSON), the fields the plan tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  'Actual Rows': number;
  'Rows Removed by Filter'?: number;
  'Total Cost': number;
  Plans?: PlanNode[];
}

/** Every node of a plan, the root first. */
export const walk = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(walk)];

/** A literal for EXECUTE (EXPLAIN takes no parameters; the plan is generic all the same). */
const literal = (c: InstanceType<typeof pg.Client>, v: unknown) =>
  c.escapeLiteral(v instanceof Date ? v.toISOString() : Array.isArray(v) ? `{${v.join(',')}}` : String(v));

/**
 * EXPLAIN of a statement prepared on `c`, on the plan cache mode asked for, in a transaction rolled
 * back afterwards (with `analyze`, the statement runs and its writes are undone); the plan's root.
 */
export async function explainPrepared(
  c: InstanceType<typeof pg.Client>,
  st: { sql: string; parameters: readonly unknown[] },
  mode: 'generic' | 'custom',
  opts: { analyze: boolean },
): Promise<PlanNode> {
  await c.query('BEGIN');
  try {
    await c.query(`SET LOCAL plan_cache_mode = ${mode === 'generic' ? 'force_generic_plan' : 'force_custom_plan'}`);
    await c.query(`PREPARE explained AS ${st.sql}`);
    const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (${opts.analyze ? 'ANALYZE, ' : ''}FORMAT JSON) EXECUTE explained(${st.parameters.map((v) => literal(c, v)).join(', ')})`,
    );
    return rows[0]!['QUERY PLAN'][0]!.Plan;
  } finally {
    await c.query('ROLLBACK');
    await c.query('DEALLOCATE ALL');
  }
}
