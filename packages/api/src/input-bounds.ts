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
 * How many elements superjson may step over to reach every meta path, counted as below. It walks
 * a Set or Map from its start to reach the element a path names (accessDeep.js getNthKey), and a
 * Set can hold a Set: with both limits above held, ~900 paths through 100 nested Sets of 999
 * elements (~780 KB) cost ~90 million steps, half a second of the event loop per request. What
 * superjson writes for any input of the API names a few hundred small indexes at most.
 */
export const MAX_META_STEPS = 1_000_000;

/**
 * The most elements superjson steps over to reach one path: each segment's index as superjson
 * reads it (`+segment`, so "1e3" is 1000), whether or not the value there turns out to be a Set,
 * at most MAX_INPUT_ARRAY (the largest a Set can be once arrays are bounded). Segments are split
 * as superjson's parsePath splits them ("\\." is a dot within a segment).
 */
export function pathSteps(path: string): number {
  let steps = 0;
  let segment = '';
  const end = () => {
    const n = Math.ceil(Number(segment));
    if (n > 0) steps += Math.min(n, MAX_INPUT_ARRAY);
    segment = '';
  };
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '\\' && (path[i + 1] === '.' || path[i + 1] === '\\')) segment += path[++i];
    else if (c === '.') end();
    else segment += c;
  }
  end();
  return steps;
}

/**
 * The steps of every walk superjson makes for a meta.values tree (one per annotation, to its
 * path), for a tree annotationTree has accepted; `origin` is the steps to the tree's own path.
 */
export function valueTreeSteps(tree: unknown, origin = 0): number {
  if (!tree || typeof tree !== 'object') return 0;
  let steps = 0;
  let children: unknown = tree;
  if (Array.isArray(tree)) {
    steps = origin;
    children = tree[1];
    if (!children || typeof children !== 'object') return steps;
  }
  for (const [key, subtree] of Object.entries(children as object)) steps += valueTreeSteps(subtree, origin + pathSteps(key));
  return steps;
}

/** The steps of every walk superjson makes for a referentialEqualities that referentialPaths has accepted. */
export function referentialSteps(annotations: unknown): number {
  const paths = (list: unknown) => (Array.isArray(list) ? list.reduce<number>((n, p) => n + pathSteps(String(p)), 0) : 0);
  const record = (r: unknown) => (r && typeof r === 'object' ? Object.entries(r).reduce((n, [representative, list]) => n + pathSteps(representative) + paths(list), 0) : 0);
  if (!Array.isArray(annotations)) return record(annotations);
  const [root, other] = annotations as unknown[];
  return paths(root) + record(other);
}

/**
 * The deepest an input may nest, in objects and arrays, counted from the request body's top (a
 * tRPC envelope and batch add two levels). No input of the API nests deeper than a handful. A
 * body of a few hundred thousand nested arrays or objects, well under the 1 MiB cap, cost ~0.5 s
 * of JSON.parse and as long again of the walk below, per request: four such requests at once
 * held /healthz for ~4.7 s.
 */
export const MAX_INPUT_DEPTH = 64;

/** What a refusal for nesting says. */
export const TOO_DEEP_MESSAGE = `the input nests deeper than ${MAX_INPUT_DEPTH} levels of objects and arrays (no input needs that many)`;

/**
 * Whether JSON text nests deeper than `limit` levels, read without parsing it (brackets inside
 * strings do not count), so that the refusal costs one pass over the text and not JSON.parse's
 * work. Text that is not JSON is left to JSON.parse to refuse. `limit` is MAX_INPUT_DEPTH for a
 * body that is the input itself (REST), one more for a tRPC call's `{ json, meta }` envelope: the
 * same inputs as inputBeyondBounds refuses once parsed.
 */
export function jsonTooDeep(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skip to its closing quote, past escapes.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * Why `value` is beyond the bounds above (an array longer than MAX_INPUT_ARRAY, or nesting deeper
 * than MAX_INPUT_DEPTH), or undefined when it is within them. Walked with a stack of its own: a
 * parsed body can nest deeper than the call stack.
 */
export function inputBeyondBounds(value: unknown): string | undefined {
  const stack: Array<[unknown, string, number]> = [[value, '', 0]];
  while (stack.length) {
    const [v, at, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_INPUT_DEPTH) return TOO_DEEP_MESSAGE;
    if (Array.isArray(v)) {
      if (v.length > MAX_INPUT_ARRAY) return overlongArrayMessage(at || '(the input)');
      v.forEach((item, i) => stack.push([item, at ? `${at}.${i}` : String(i), depth + 1]));
    } else {
      for (const [k, item] of Object.entries(v)) stack.push([item, at ? `${at}.${k}` : k, depth + 1]);
    }
  }
  return undefined;
}

/**
 * Makes every array in `json` (a superjson input before its meta is applied) keep its length.
 * superjson writes through a meta path with `array[index] = value` (accessDeep.js setDeep), and an
 * index past the end made the array that long: `{"meta":{"values":{"seatNumbers.1000000":
 * ["undefined"]}}}`, ~130 bytes, gave a hold's seatNumbers a length of a million, which zod then
 * checked (and reported) hole by hole: ~10 s of the event loop and 1.2 GB of memory, and a larger
 * index more than any heap holds. A write past the end now throws (superjson runs in strict mode);
 * writes within an array, which are all that superjson's own output asks for, still work.
 */
export function fixArrayLengths(json: unknown): void {
  const stack: unknown[] = [json];
  while (stack.length) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) Object.preventExtensions(v);
    for (const item of Object.values(v)) stack.push(item);
  }
}

/** What a write past an array's end (see fixArrayLengths) is refused with. */
export const PAST_THE_END_MESSAGE = 'meta names an array element past the end of its array';

/** What a refusal of a long array says. */
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
