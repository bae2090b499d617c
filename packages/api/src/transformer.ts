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
  deserialize: (value: unknown) => superjson.deserialize(value as Serialized),
};

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
  let json: Record<string, unknown> | undefined;
  let values: Record<string, ['Date']> | undefined;
  let dates: Date[] | undefined;
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
      case 'object': {
        if (v === null) break;
        if (!(v instanceof Date) || Number.isNaN(v.getTime())) return undefined;
        dates ??= [];
        if (dates.includes(v)) return undefined;
        dates.push(v);
        json ??= { ...source };
        json[key] = v.toISOString();
        (values ??= {})[key] = ['Date'];
        break;
      }
      default:
        return undefined;
    }
  }
  return values ? { json: json as Serialized['json'], meta: { values, v: 1 } } : { json: source as Serialized['json'] };
}
