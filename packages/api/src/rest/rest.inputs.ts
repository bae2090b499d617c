import type { AnyProcedure } from '@trpc/server';
import { z } from 'zod';
import { appRouter } from '../router.ts';
import type { RestRoute } from './rest.routes.ts';

/** How a field of the procedure's input travels over REST, and what a path or query string turns into. */
export type FieldKind = 'number' | 'boolean' | 'string';

export interface OperationInput {
  /** The procedure's own input schema (the one that validates every call), as an object. */
  schema: z.ZodObject;
  path: Map<string, FieldKind>;
  /** GET: every other field is a query parameter. */
  query: Map<string, FieldKind>;
  /** POST/DELETE: every other field but the idempotency key is in the JSON body. */
  body: string[];
  /** The input's idempotencyKey travels in the Idempotency-Key header. */
  idempotencyKey: boolean;
}

const procedures = appRouter._def.procedures as unknown as Record<string, AnyProcedure>;

/** The input schema tRPC validates the procedure's input with. */
export function procedureInput(procedure: string): z.ZodType {
  const p = procedures[procedure];
  const [schema, ...more] = p?._def.inputs ?? [];
  if (!(schema instanceof z.ZodType) || more.length) throw new Error(`${procedure}: expected exactly one zod input schema`);
  return schema;
}

/** Splits a procedure's input into the REST request's path, query, header and body parts. */
export function operationInput(route: RestRoute): OperationInput {
  const schema = asObject(procedureInput(route.procedure), route.procedure);
  const pathNames = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const shape = schema.shape as Record<string, z.ZodType>;
  const path = new Map<string, FieldKind>();
  for (const name of pathNames) {
    const field = shape[name];
    if (!field) throw new Error(`${route.path}: {${name}} is not a field of ${route.procedure}'s input`);
    path.set(name, kindOf(field));
  }
  const rest = Object.keys(shape).filter((k) => !path.has(k));
  const idempotencyKey = rest.includes('idempotencyKey');
  return {
    schema,
    path,
    query: route.method === 'GET' ? new Map(rest.map((k) => [k, kindOf(shape[k]!)])) : new Map(),
    body: route.method === 'GET' ? [] : rest.filter((k) => k !== 'idempotencyKey'),
    idempotencyKey,
  };
}

const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional']);

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (WRAPPERS.has(s._zod.def.type)) s = (s._zod.def as unknown as { innerType: z.ZodType }).innerType;
  return s;
}

function asObject(schema: z.ZodType, procedure: string): z.ZodObject {
  const s = unwrap(schema);
  if (!(s instanceof z.ZodObject)) throw new Error(`${procedure}: the input is not an object schema`);
  return s;
}

function kindOf(field: z.ZodType): FieldKind {
  const type = unwrap(field)._zod.def.type;
  return type === 'number' || type === 'int' ? 'number' : type === 'boolean' ? 'boolean' : 'string';
}

const DECIMAL = /^-?\d+(\.\d+)?$/;
const finite = (n: number) => (Number.isFinite(n) ? n : Math.sign(n) * Number.MAX_VALUE);

/**
 * A path or query string as the procedure expects it. Only exact spellings convert ("12", "true");
 * anything else stays a string, so the procedure's schema refuses it with its own message. A
 * decimal number of any length is a number (past what a double holds, the largest one), so that
 * an id of 22 digits is refused as too big, not as "expected number, received string".
 */
export function fromText(text: string, kind: FieldKind): unknown {
  if (kind === 'number') return DECIMAL.test(text) ? finite(Number(text)) : text;
  if (kind === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  return text;
}
