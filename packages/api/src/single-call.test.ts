import { describe, expect, it } from 'vitest';
import { appRouter } from './router.ts';
import { FAST_PROCEDURES } from './single-call.ts';
import { activeQueueProcedure, identifiedProcedure, publicProcedure } from './trpc.ts';

type Def = { type: string; middlewares: unknown[]; inputs: unknown[] };
const defOf = (path: string) => (appRouter._def.procedures as unknown as Record<string, { _def: Def }>)[path]!._def;

/**
 * The fast path calls its procedures directly, running by hand what their middlewares run
 * (single-call.ts, callDirect). These fail when the router's procedures change under it: a
 * middleware added, a procedure built from another base or another input parser.
 */
describe('the fast path’s direct calls run what the router’s procedures run', () => {
  it('the procedure bases have exactly the middlewares callDirect runs: base; identify; gateOf', () => {
    const base = publicProcedure._def.middlewares;
    expect(base).toHaveLength(1);
    expect(identifiedProcedure._def.middlewares).toEqual([base[0], expect.any(Function)]);
    expect(activeQueueProcedure._def.middlewares).toEqual([...identifiedProcedure._def.middlewares, expect.any(Function)]);
  });

  it.each(FAST_PROCEDURES.map((c) => [c.path, c] as const))('%s: its base, its type and its input parser are the ones callDirect uses', (path, call) => {
    const def = defOf(path);
    expect(def.type).toBe(call.type);
    const bases = (call.proc.gated ? activeQueueProcedure : identifiedProcedure)._def.middlewares;
    // Then tRPC's own two: the input validator and the resolver.
    expect(def.middlewares).toHaveLength(bases.length + 2);
    def.middlewares.slice(0, bases.length).forEach((m, i) => expect(m).toBe(bases[i]));
    expect(def.inputs).toHaveLength(1);
    expect(def.inputs[0]).toBe(call.proc.input);
  });
});
