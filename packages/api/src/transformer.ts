import superjson from 'superjson';
import { fixArrayLengths, inputBeyondBounds, MAX_META_PATHS, PAST_THE_END_MESSAGE, MAX_META_STEPS, referentialPaths, referentialSteps, valueTreeSteps } from './input-bounds.ts';

type Serialized = ReturnType<typeof superjson.serialize>;

/**
 * superjson, with two shortcuts that give exactly its output:
 * - a frozen result (the shared seat map of a cache entry) is serialized once and the
 *   serialization reused by every request that returns the same object;
 * - a flat answer (a queue ticket, a hold) is serialized without superjson's walker, which was
 *   most of the cost of serializing a queue.status answer (README, Benchmark).
 */
const serialized = new WeakMap<object, Serialized>();
export const transformer = {
  serialize(value: unknown): Serialized {
    if (value === null || typeof value !== 'object') return superjson.serialize(value);
    if (!Object.isFrozen(value)) return serializeFlat(value) ?? superjson.serialize(value);
    let s = serialized.get(value);
    if (!s) serialized.set(value, (s = superjson.serialize(value)));
    return s;
  },
  deserialize(value: unknown): unknown {
    // superjson reads `json` and `meta` off whatever came: of null that is a TypeError whose
    // message ("Cannot destructure property 'json' of 'payload'…") told the client nothing.
    if (value === undefined) return undefined;
    if (value === null) throw new TypeError('input must be superjson: { "json": …, "meta"?: … }, not null');
    // Anything else came without the wrapper, and superjson read it as no input at all: a client
    // that sent `{"limit":5}` (or `1`) to a procedure whose input is optional got the default
    // answer as if it had been asked for (a hostile review, fourth round).
    if (typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`input must be superjson: { "json": …, "meta"?: … }, not ${Array.isArray(value) ? 'an array' : `a ${typeof value}`}`);
    for (const k in value) {
      if (k !== 'json' && k !== 'meta') throw new TypeError(`input must be superjson: { "json": …, "meta"?: … }; the input goes inside "json", and ${JSON.stringify(k.slice(0, 40))} is not a key of the wrapper`);
    }
    const { json, meta } = value as { json?: unknown; meta?: unknown };
    // Bounded before superjson walks it (input-bounds.ts): a Set travels as an array, and every
    // meta path into it is a walk from its start, so 30,000 paths into a 30,000-element Set held
    // the process for ~10 s. Nesting is bounded too (MAX_INPUT_DEPTH).
    const beyond = inputBeyondBounds(json);
    if (beyond !== undefined) throw new TypeError(beyond);
    if (meta !== null && typeof meta === 'object') {
      const { values, referentialEqualities } = meta as { values?: unknown; referentialEqualities?: unknown };
      const annotated = annotations(values, 0);
      if (annotated === undefined) throw new TypeError('meta.values is not a superjson annotation tree');
      const shared = referentialPaths(referentialEqualities);
      if (shared === undefined) throw new TypeError('meta.referentialEqualities is not a superjson record of paths');
      if (annotated + shared > MAX_META_PATHS) throw new TypeError(`meta names ${annotated + shared} paths; no input needs more than ${MAX_META_PATHS}`);
      // Paths through nested Sets cost their indexes at every level (input-bounds.ts).
      const steps = valueTreeSteps(values) + referentialSteps(referentialEqualities);
      if (steps > MAX_META_STEPS) throw new TypeError(`meta's paths index ${steps} elements in all; no input needs more than ${MAX_META_STEPS}`);
      // A meta path may not lengthen an array (input-bounds.ts). In place: a copy (superjson's
      // default) would not keep the arrays' fixed lengths, and the parsed body is this call's own.
      fixArrayLengths(json);
      try {
        return superjson.deserialize(value as Serialized, { inPlace: true });
      } catch (err) {
        if (err instanceof TypeError && err.message.includes('not extensible')) throw new TypeError(PAST_THE_END_MESSAGE);
        throw err;
      }
    }
    return superjson.deserialize(value as Serialized);
  },
};

/** Deeper than any input of the router's nests a Date. */
const MAX_TREE_DEPTH = 32;

/**
 * Whether superjson can walk `tree` (its `meta.values`) to an end: nothing; [annotation] or
 * [annotation, { path: tree }]; or { path: tree }. superjson's own walk (plainer.js `traverse`)
 * walks any other truthy value as an object of trees, and a string's one-character entries are
 * strings again: `{"meta":{"values":"x"}}` recursed until the stack ran out, 55-190 ms of CPU a
 * request on a public query, enough for a few clients to starve the process.
 */
export function annotationTree(tree: unknown, depth: number): boolean {
  return annotations(tree, depth) !== undefined;
}

/**
 * superjson makes a typed array of whatever `json` holds at its path (`new Uint8Array(v)`): an
 * array-like `{"length":1e9}` was a billion-element loop that held the process for minutes and
 * grew it by gigabytes, from one anonymous GET of ~150 bytes. No input of the API takes one.
 */
const TYPED_ARRAY_MESSAGE = 'meta.values annotates a typed array; no input takes one';

/**
 * How many annotations `tree` holds (see annotationTree); undefined when superjson could not walk
 * it. Throws on a typed array's annotation (TYPED_ARRAY_MESSAGE).
 */
function annotations(tree: unknown, depth: number): number | undefined {
  if (!tree) return 0;
  if (typeof tree !== 'object' || depth > MAX_TREE_DEPTH) return undefined;
  let count = 0;
  let children: unknown = tree;
  if (Array.isArray(tree)) {
    if (Array.isArray(tree[0]) && tree[0][0] === 'typed-array') throw new TypeError(TYPED_ARRAY_MESSAGE);
    count = 1;
    children = tree[1];
    if (!children) return count;
    if (typeof children !== 'object') return undefined;
  }
  for (const t of Object.values(children as object)) {
    const n = annotations(t, depth + 1);
    if (n === undefined) return undefined;
    count += n;
  }
  return count;
}

/** Keys superjson escapes in its paths or refuses outright. */
const AWKWARD_KEY = /[.\\]|^(?:__proto__|constructor|prototype)$/;

/**
 * superjson.serialize(value) for a plain object whose own values are all strings, booleans,
 * null, finite numbers other than -0, or valid Dates (no Date twice: superjson would record the
 * shared reference), and whose keys need no escaping; undefined for anything else, which
 * superjson serializes itself. Its output is superjson's, byte for byte (transformer.test.ts
 * compares the two over generated values).
 */
export function serializeFlat(value: object): Serialized | undefined {
  if (Object.getPrototypeOf(value) !== Object.prototype) return undefined;
  const source = value as Record<string, unknown>;
  // Only checked in the loop; the copy is made once it is known to be needed (a hold's answer
  // has a Date before its nested seats, and falls back to superjson).
  let dateKeys: string[] | undefined;
  for (const key of Object.keys(source)) {
    if (AWKWARD_KEY.test(key)) return undefined;
    const v = source[key];
    switch (typeof v) {
      case 'string':
      case 'boolean':
        break;
      case 'number':
        if (!Number.isFinite(v) || Object.is(v, -0)) return undefined;
        break;
      case 'object':
        if (v === null) break;
        if (!(v instanceof Date) || Number.isNaN(v.getTime())) return undefined;
        if (dateKeys?.some((k) => source[k] === v)) return undefined;
        (dateKeys ??= []).push(key);
        break;
      default:
        return undefined;
    }
  }
  if (!dateKeys) return { json: source as Serialized['json'] };
  const json: Record<string, unknown> = { ...source };
  const values: Record<string, ['Date']> = {};
  for (const key of dateKeys) {
    json[key] = (source[key] as Date).toISOString();
    values[key] = ['Date'];
  }
  return { json: json as Serialized['json'], meta: { values, v: 1 } };
}
