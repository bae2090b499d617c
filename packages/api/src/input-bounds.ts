/**
 * Bounds on a request's input that hold before superjson or zod sees it. Both do work per element
 * that the 1 MiB body cap alone does not bound well: zod checks (and reports) every element of an
 * array before the array's own max(), and superjson walks a Set or Map from its start for every
 * meta path into it. No input of the API has a list longer than 100 (schedules) or needs more than
 * a few hundred meta paths (two Dates per schedule), so the limits leave ample room.
 */

/** The longest array any input may hold, at any depth (a Set or Map travels as one). */
export const MAX_INPUT_ARRAY = 1000;
/** How many paths a superjson meta may name (meta.values' annotations and referentialEqualities together). */
export const MAX_META_PATHS = 1000;

/**
 * The path of the first array in `value` longer than MAX_INPUT_ARRAY, or undefined when there is
 * none. Walked with a stack of its own: a parsed body can nest deeper than the call stack.
 */
export function overlongArray(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length) {
    const [v, at] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      if (v.length > MAX_INPUT_ARRAY) return at || '(the input)';
      v.forEach((item, i) => stack.push([item, at ? `${at}.${i}` : String(i)]));
    } else {
      for (const [k, item] of Object.entries(v)) stack.push([item, at ? `${at}.${k}` : k]);
    }
  }
  return undefined;
}

/** What a refusal by overlongArray says. */
export const overlongArrayMessage = (at: string) => `${at}: an array of more than ${MAX_INPUT_ARRAY} elements (no input takes that many)`;

/**
 * How many paths superjson's referentialEqualities names ({ path: paths } or [rootPaths, { path:
 * paths }?]); undefined for any other shape (superjson would throw on it anyway, later).
 */
export function referentialPaths(annotations: unknown): number | undefined {
  if (annotations === undefined) return 0;
  const record = (r: unknown): number | undefined => {
    if (r === undefined) return 0;
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return undefined;
    let n = 0;
    for (const paths of Object.values(r)) {
      if (!Array.isArray(paths)) return undefined;
      n += paths.length;
    }
    return n;
  };
  if (!Array.isArray(annotations)) return record(annotations);
  const [root, other] = annotations as unknown[];
  const rest = record(other);
  return Array.isArray(root) && rest !== undefined ? root.length + rest : undefined;
}
