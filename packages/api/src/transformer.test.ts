import fc from 'fast-check';
import superjson from 'superjson';
import { describe, expect, it, vi } from 'vitest';
import { MAX_INPUT_ARRAY, MAX_META_PATHS } from './input-bounds.ts';
import { annotationTree, serializeFlat, transformer } from './transformer.ts';

const shared = new Date(1_767_225_600_000);
// Mostly values the shortcut takes, so that it answers often; the rest make it step aside.
const value = fc.oneof(
  { arbitrary: fc.string(), weight: 8 },
  { arbitrary: fc.boolean(), weight: 4 },
  { arbitrary: fc.constant(null), weight: 4 },
  { arbitrary: fc.integer(), weight: 8 },
  { arbitrary: fc.date({ noInvalidDate: true }), weight: 8 },
  { arbitrary: fc.date({ noInvalidDate: false }), weight: 1 },
  { arbitrary: fc.double(), weight: 2 },
  { arbitrary: fc.constantFrom(0, -0, NaN, Infinity, -Infinity), weight: 1 },
  { arbitrary: fc.constant(undefined), weight: 1 },
  { arbitrary: fc.constant(shared), weight: 1 },
  { arbitrary: fc.bigInt(), weight: 1 },
  { arbitrary: fc.array(fc.integer(), { maxLength: 2 }), weight: 1 },
  { arbitrary: fc.dictionary(fc.string({ maxLength: 3 }), fc.date(), { maxKeys: 2 }), weight: 1 },
);
const key = fc.oneof({ arbitrary: fc.string({ maxLength: 6 }), weight: 10 }, { arbitrary: fc.constantFrom('a.b', 'a\\b', '.', '__proto__', 'constructor', 'prototype', 'toJSON', 'v', 'meta', 'json'), weight: 1 });
const flatish = fc.dictionary(key, value, { maxKeys: 8 });

describe('serializeFlat', () => {
  it('gives superjson.serialize’s output byte for byte whenever it answers, over generated objects', () => {
    let answered = 0;
    fc.assert(
      fc.property(flatish, (obj) => {
        const ours = serializeFlat(obj);
        let theirs: string;
        try {
          theirs = JSON.stringify(superjson.serialize(obj));
        } catch {
          // superjson refuses it (a prototype-pollution key): so must the shortcut, by not answering.
          expect(ours).toBeUndefined();
          return;
        }
        if (ours === undefined) return;
        answered++;
        expect(JSON.stringify(ours)).toBe(theirs);
        expect(superjson.deserialize(ours)).toEqual(obj);
      }),
      { numRuns: 3_000, seed: 20261202 },
    );
    // The generator reaches the shortcut often enough that the comparison means something.
    expect(answered).toBeGreaterThan(600);
  });

  it('answers for a queue ticket, and leaves what it cannot do exactly to superjson', () => {
    const ticket = {
      token: 'q1.abc.def',
      concertId: 1,
      status: 'WAITING',
      position: 3,
      aheadCount: 2,
      etaSeconds: 1.5,
      paused: false,
      enteredAt: new Date(1_767_225_600_000),
      opensAt: null,
      activeUntil: new Date(1_767_225_900_000),
      pollAfterMs: 2000,
    };
    expect(serializeFlat(ticket)).toEqual(superjson.serialize(ticket));
    const d = new Date(0);
    for (const other of [{ a: d, b: d }, { a: undefined }, { a: -0 }, { a: NaN }, { a: new Date(NaN) }, { a: { b: 1 } }, { a: [1] }, { 'a.b': 1 }, Object.create(null) as object, new (class X {})()]) {
      expect(serializeFlat(other)).toBeUndefined();
    }
  });

  it('the transformer reuses one serialization of a frozen answer and serializes the rest afresh', () => {
    const frozen = Object.freeze({ seats: Object.freeze([{ at: new Date(0) }]) });
    expect(transformer.serialize(frozen)).toBe(transformer.serialize(frozen));
    expect(transformer.serialize(frozen)).toEqual(superjson.serialize(frozen));
    const plain = { at: new Date(0) };
    expect(transformer.serialize(plain)).not.toBe(transformer.serialize(plain));
    expect(transformer.deserialize(transformer.serialize(plain))).toEqual(plain);
  });
});

describe('the input side: superjson meta a client sends', () => {
  const nested = fc.letrec((tie) => ({
    node: fc.oneof(
      { arbitrary: value, weight: 4 },
      { arbitrary: fc.array(tie('node'), { maxLength: 3 }), weight: 1 },
      // superjson refuses to serialize __proto__, constructor and prototype keys below the top.
      { arbitrary: fc.dictionary(key.filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k)), tie('node'), { maxKeys: 3 }), weight: 1 },
      { arbitrary: fc.constant(new Map([[1, new Date(0)]])), weight: 1 },
      { arbitrary: fc.constant(new Set([new Date(0)])), weight: 1 },
    ),
  })).node;

  it('takes every tree superjson itself writes, and gives back the value', () => {
    fc.assert(
      fc.property(nested, (v) => {
        const s = superjson.serialize(v);
        expect(annotationTree(s.meta?.values, 0)).toBe(true);
        // Through JSON, as a request carries it.
        expect(transformer.deserialize(JSON.parse(JSON.stringify(s)))).toEqual(superjson.deserialize(JSON.parse(JSON.stringify(s))));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses, before walking it, a tree superjson would walk without end (a string where a node belongs)', () => {
    let deep: unknown = ['Date'];
    for (let i = 0; i < 40; i++) deep = { a: deep };
    for (const values of ['x', ['class', 'x'], ['custom', 'x'], ['symbol', 'x'], { a: 'x' }, { a: ['Date', 'x'] }, [['class', 'X'], { a: 'x' }], deep]) {
      expect(() => transformer.deserialize({ json: { a: 1 }, meta: { values } }), JSON.stringify(values).slice(0, 60)).toThrow(/not a superjson annotation tree/);
    }
    // What superjson writes still reads.
    expect(transformer.deserialize({ json: { a: '1970-01-01T00:00:00.000Z' }, meta: { values: { a: ['Date'] }, v: 1 } })).toEqual({ a: new Date(0) });
  });

  // superjson builds a typed array from whatever `json` holds at its path: an array-like
  // `{"length":1e9}` held the process for minutes and grew it by gigabytes (a hostile review).
  it('refuses a typed array before superjson builds it, at the root or at any depth', () => {
    const big = 2_000_000;
    for (const [json, values] of [
      [{ a: { length: big } }, { a: [['typed-array', 'Uint8Array']] }],
      [{ a: big }, { a: [['typed-array', 'Float64Array']] }],
      [{ a: { b: [1, 2] } }, { a: ['map', { b: [['typed-array', 'Int32Array']] }] }],
      [{ a: { b: [1, 2] } }, { a: { b: [['typed-array', 'Uint8Array']] } }],
      [[1, 2], [['typed-array', 'Uint8Array']]],
    ] as const) {
      // Refused before superjson is handed the input (so before it builds anything), asserted
      // as a fact rather than by a clock: a wall-clock budget fails on a loaded machine.
      const handedToSuperjson = vi.spyOn(superjson, 'deserialize');
      try {
        expect(() => transformer.deserialize({ json, meta: { values } }), JSON.stringify(values)).toThrow(/^meta\.values annotates a typed array; no input takes one$/);
        expect(handedToSuperjson, JSON.stringify(values)).not.toHaveBeenCalled();
      } finally {
        handedToSuperjson.mockRestore();
      }
    }
  });

  // superjson walks a Set or Map from its start for every path into it: N paths into an
  // N-element Set cost N^2 steps (30,000 of each held a process ~10 s).
  it('refuses, before superjson walks it, an array longer than any input takes and more meta paths than any input needs', () => {
    const n = MAX_INPUT_ARRAY + 1;
    const set = { json: { s: Array.from({ length: n }, (_, i) => i), t: {} }, meta: { values: { s: ['set'] }, referentialEqualities: { t: [`s.${n - 1}`] } } };
    expect(() => transformer.deserialize(set)).toThrow(/^s: an array of more than 1000 elements/);
    expect(() => transformer.deserialize({ json: { a: [[Array(n).fill(0)]] } })).toThrow(/^a\.0\.0: an array of more than/);
    const paths = (k: number) => Array.from({ length: k }, (_, i) => `s.${i % 10}`);
    const small = { s: Array.from({ length: 10 }, (_, i) => i), t: {} };
    expect(() => transformer.deserialize({ json: small, meta: { values: { s: ['set'] }, referentialEqualities: { t: paths(MAX_META_PATHS) } } })).toThrow(/^meta names 1001 paths/);
    expect(() => transformer.deserialize({ json: small, meta: { referentialEqualities: 'x' } })).toThrow(/not a superjson record of paths/);
    // At the limits, superjson reads it as before.
    const last = MAX_INPUT_ARRAY - 1;
    const at = {
      json: { s: Array.from({ length: MAX_INPUT_ARRAY }, (_, i) => i), o: Array(MAX_META_PATHS - 1).fill(null) },
      meta: { values: { s: ['set'] }, referentialEqualities: { [`s.${last}`]: Array.from({ length: MAX_META_PATHS - 1 }, (_, i) => `o.${i}`) } },
    };
    const read = transformer.deserialize(at) as { s: Set<number>; o: number[] };
    expect([read.s.size, read.o.length, read.o.every((v) => v === last)]).toEqual([MAX_INPUT_ARRAY, MAX_META_PATHS - 1, true]);
    const root = superjson.serialize([new Date(0), new Date(0)].map((d, i, all) => all[0] ?? d));
    expect(transformer.deserialize(JSON.parse(JSON.stringify(root)))).toEqual([new Date(0), new Date(0)]);
  });
});
