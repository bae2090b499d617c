import fc from 'fast-check';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, type RawBuilder, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { plusMs } from '../clock.ts';
import { CLOCK_TIME, compileHot, hot, HotFragment, hotRaw, hotStats, MAX_SHAPES, registerHot, STATEMENT_TIME } from './hot.ts';

/** Kysely as a compiler only (its documented "cold" instance). */
const kysely = new Kysely<unknown>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});
const viaKysely = (b: RawBuilder<unknown>) => {
  const c = b.compile(kysely);
  return { sql: c.sql, parameters: [...c.parameters] };
};

/** A statement as a tree: each node a call site (its strings) and its values, each a parameter or a nested node. */
type Node = { site: number; values: Array<{ param: unknown } | { node: Node }> };

/** Call sites: each one array of strings for the life of the test, as a tagged template's object is. */
const sites = Array.from({ length: 6 }, (_, i) => Object.freeze(Array.from({ length: 5 }, (_, j) => ` s${i}.${j} `)));

const param = fc.oneof(
  fc.integer(),
  fc.string(),
  fc.constant(null),
  fc.date({ noInvalidDate: true }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.boolean(),
);
const tree: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.record({
    site: fc.integer({ min: 0, max: sites.length - 1 }),
    values: fc.array(fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.record({ param }), fc.record({ node: tie('node') })), { maxLength: 4 }),
  }),
})).node;

const toKysely = (n: Node): RawBuilder<unknown> => sql(sites[n.site]!.slice(0, n.values.length + 1) as unknown as TemplateStringsArray, ...n.values.map((v) => ('node' in v ? toKysely(v.node) : v.param)));

describe('hot statements (db/hot.ts)', () => {
  it('compiles a shape once, and tells apart shapes that differ only in where a fragment stands', () => {
    const site = (v: unknown) => hot`SELECT ${v} AS x`;
    const before = hotStats.compiled;
    expect(compileHot(site(1))).toEqual({ sql: 'SELECT $1 AS x', parameters: [1] });
    expect(compileHot(site(2))).toEqual({ sql: 'SELECT $1 AS x', parameters: [2] });
    expect(hotStats.compiled - before).toBe(1);
    // A fragment where a value stood is another shape, with its own text.
    expect(compileHot(site(hotRaw('now()')))).toEqual({ sql: 'SELECT now() AS x', parameters: [] });
    expect(compileHot(site(hot`${3} + ${4}`))).toEqual({ sql: 'SELECT $1 + $2 AS x', parameters: [3, 4] });
    // A value that looks like SQL is a parameter, never text.
    expect(compileHot(site('now()'))).toEqual({ sql: 'SELECT $1 AS x', parameters: ['now()'] });
    expect(hotStats.compiled - before).toBe(3);
  });

  it("compile to Kysely's own text and parameters for the same template, nested fragments included, cached or not", () => {
    // The strings arrays of a site are sliced anew per tree above, so give each shape its own
    // objects once: a site's strings are one object per (site, length), as a call site's are.
    const bySite = new Map<string, ReadonlyArray<string>>();
    const stable = (n: Node): HotFragment => {
      const k = `${n.site}:${n.values.length}`;
      let strings = bySite.get(k);
      if (!strings) bySite.set(k, (strings = Object.freeze(sites[n.site]!.slice(0, n.values.length + 1))));
      return new HotFragment(strings, n.values.map((v) => ('node' in v ? stable(v.node) : v.param)));
    };
    fc.assert(
      fc.property(tree, (n) => {
        const expected = viaKysely(toKysely(n));
        expect(compileHot(stable(n))).toEqual(expected);
        // The second time from the cache: the same text, this call's parameters.
        expect(compileHot(stable(n))).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("takes the database's time and a time after it as SQL, as Kysely does", () => {
    const at = plusMs(STATEMENT_TIME, 1500);
    expect(compileHot(hot`SELECT ${at}, ${CLOCK_TIME}, ${7}`)).toEqual(viaKysely(sql`SELECT ${at}, ${CLOCK_TIME}, ${7}`));
    expect(compileHot(hot`SELECT ${at}`)).toEqual({ sql: 'SELECT (statement_timestamp() + make_interval(secs => $1))', parameters: [1.5] });
    // A test clock's time is a value.
    const d = new Date(0);
    expect(compileHot(hot`SELECT ${plusMs(d, 5)}`)).toEqual({ sql: 'SELECT $1', parameters: [new Date(5)] });
  });

  it('refuses a Kysely expression it cannot know the text of, rather than send it as a value', () => {
    expect(() => compileHot(hot`SELECT ${sql`1`}`)).toThrow(/registerHot/);
    const known = registerHot(sql`2`, hotRaw('2'));
    expect(compileHot(hot`SELECT ${known}`)).toEqual({ sql: 'SELECT 2', parameters: [] });
  });

  it('past MAX_SHAPES shapes, still compiles each statement right (uncached)', () => {
    const made: Array<ReadonlyArray<string>> = Array.from({ length: MAX_SHAPES + 5 }, (_, i) => Object.freeze([`SELECT ${i}, `, '']));
    for (const [i, strings] of made.entries()) expect(compileHot(new HotFragment(strings, [i]))).toEqual({ sql: `SELECT ${i}, $1`, parameters: [i] });
    const last = made.at(-1)!;
    const before = hotStats.compiled;
    expect(compileHot(new HotFragment(last, ['x']))).toEqual({ sql: `SELECT ${MAX_SHAPES + 4}, $1`, parameters: ['x'] });
    expect(hotStats.compiled - before).toBe(1);
  });
});
