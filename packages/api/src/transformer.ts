import superjson from 'superjson';

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
    const meta = value !== null && typeof value === 'object' ? (value as { meta?: unknown }).meta : undefined;
    if (meta !== null && typeof meta === 'object' && !annotationTree((meta as { values?: unknown }).values, 0)) {
      throw new TypeError('meta.values is not a superjson annotation tree');
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
  if (!tree) return true;
  if (typeof tree !== 'object' || depth > MAX_TREE_DEPTH) return false;
  if (Array.isArray(tree)) {
    const children: unknown = tree[1];
    if (!children) return true;
    return typeof children === 'object' && Object.values(children).every((t) => annotationTree(t, depth + 1));
  }
  return Object.values(tree).every((t) => annotationTree(t, depth + 1));
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
