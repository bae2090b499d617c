import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from 'zod-openapi';
import { operationInput } from './rest.inputs.ts';
import { REST_ROUTES, type RestRoute } from './rest.routes.ts';
import { ZProblem } from './rest.schemas.ts';

export interface Asset {
  type: string;
  body: Buffer;
  cache: string;
  headers?: Record<string, string>;
}

const ZQueueToken = z.string().meta({ description: 'the waiting-room token from POST /v1/concerts/{concertId}/queue' });

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ZProblem } } });

/** What the per-user limits count (RATE_LIMITS): every identified mutation, and the queue's status poll. */
const rateLimited = (route: RestRoute) => route.auth !== 'public' && (route.method !== 'GET' || route.procedure === 'queue.status');

function operation(route: RestRoute): ZodOpenApiOperationObject {
  const input = operationInput(route);
  const pick = (names: Iterable<string>) => {
    const mask: Record<string, true> = Object.fromEntries([...names].map((n) => [n, true as const]));
    return Object.keys(mask).length ? input.schema.pick(mask as never) : undefined;
  };
  const headers: Record<string, z.ZodType> = {};
  if (route.auth === 'id+token' || route.auth === 'id+active') {
    headers['x-queue-token'] = route.tokenOptional
      ? ZQueueToken.optional().meta({ description: `the waiting-room token from POST /v1/concerts/{concertId}/queue; ${route.tokenOptional}` })
      : ZQueueToken;
  }
  if (input.idempotencyKey) {
    headers['Idempotency-Key'] = (input.schema.shape.idempotencyKey as z.ZodType).meta({
      description: 'the same key with the same request answers the first result again; scoped to the user and the operation',
    });
  }
  const body = pick(input.body);
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    security: route.auth === 'public' ? [] : [{ userId: [] }, { bearer: [] }],
    requestParams: definedOnly({
      path: pick(input.path.keys()),
      query: textOnly(pick(input.query.keys())),
      header: Object.keys(headers).length ? z.object(headers) : undefined,
    }),
    ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
    responses: {
      [route.status]: { description: route.status === 201 ? 'Created' : 'OK', content: { 'application/json': { schema: route.response } } },
      ...(rateLimited(route)
        ? {
            '429': {
              ...problem('RATE_LIMITED: too many calls by this user (mutations and queue.enter per 10 s; a status poll sooner than half its pollAfterMs)'),
              headers: z.object({ 'Retry-After': z.string().regex(/^\d+$/).meta({ description: 'whole seconds to wait before calling again' }) }),
            },
          }
        : {}),
      '4XX': problem('A client error: the appCode says which (see the contract\'s error table)'),
      '5XX': problem('INTERNAL, or SERVICE_UNAVAILABLE while the database or the queue store is down (retry)'),
    },
  };
}

/**
 * A query string carries text, never JSON null: a field that takes null over tRPC too (a list's
 * cursor, null for the first page as TanStack Query asks for it) is documented as REST sends it.
 */
function textOnly(schema: z.ZodObject | undefined): z.ZodObject | undefined {
  if (!schema) return undefined;
  const dropNull = ({ jsonSchema }: { jsonSchema: { anyOf?: { type?: unknown }[] } & Record<string, unknown> }) => {
    const rest = jsonSchema.anyOf?.filter((s) => s.type !== 'null');
    if (!rest || rest.length === jsonSchema.anyOf?.length) return;
    delete jsonSchema.anyOf;
    if (rest.length === 1) Object.assign(jsonSchema, rest[0]);
    else jsonSchema.anyOf = rest;
  };
  return z.object(Object.fromEntries(Object.entries(schema.shape).map(([k, v]) => [k, (v as z.ZodType).meta({ override: dropNull })])));
}

const definedOnly = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** The OpenAPI 3.1 document, generated from the procedures' input schemas and the response schemas. */
export function createOpenApiDocument(): ReturnType<typeof createDocument> {
  const paths: ZodOpenApiPathsObject = {};
  for (const route of REST_ROUTES) {
    const item = (paths[route.path] ??= {});
    item[route.method.toLowerCase() as 'get' | 'post' | 'delete'] = operation(route);
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Concert booking',
      version: '2',
      description:
        'Plain JSON over HTTP for clients that do not speak tRPC: the same procedures, rules and appCodes as /trpc. ' +
        'Identity is x-user-id (AUTH_MODE=dev) or a bearer JWT; booking steps also need the ACTIVE queue token in x-queue-token. ' +
        'Errors are application/problem+json with an appCode.',
    },
    tags: [
      { name: 'catalog', description: 'Concerts, schedules and seat maps' },
      { name: 'queue', description: 'The waiting room, one per concert' },
      { name: 'reservations', description: 'Seat holds' },
      { name: 'payments', description: 'Paying a hold from the balance' },
      { name: 'balance', description: 'The prepaid wallet' },
      { name: 'waitlist', description: 'Waiting for seats of a sold-out show' },
    ],
    components: {
      securitySchemes: {
        userId: { type: 'apiKey', in: 'header', name: 'x-user-id', description: 'the user id, when the server runs with AUTH_MODE=dev' },
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'HS256, sub = the user id (AUTH_MODE=jwt)' },
      },
    },
    paths,
  });
}

let cached: Asset | undefined;
export function openApiJson(): Asset {
  cached ??= {
    type: 'application/json',
    body: Buffer.from(JSON.stringify(createOpenApiDocument())),
    cache: 'no-cache',
    headers: { 'access-control-allow-origin': '*' },
  };
  return cached;
}
