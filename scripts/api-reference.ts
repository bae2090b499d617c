/**
 * Writes docs/API.md, the project's API reference, from the routers themselves:
 *   - every procedure of `appRouter` (kind, REST route), in router order;
 *   - its input and output as TypeScript types, printed by the TypeScript checker from
 *     `inferRouterInputs/Outputs<AppRouter>` (what a frontend's compiler sees);
 *   - the input's constraints (ranges, lengths, patterns, defaults) from its zod schema;
 *   - the error table from TRPC_CODE_BY_APP_CODE (the same table the server answers with);
 *   - who may call and the errors of its own from scripts/api-reference.entries.ts.
 * `pnpm docs:api` writes the file; packages/api/test/api-reference.test.ts fails when the
 * committed file differs from what this renders, so the reference cannot drift.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import ts from 'typescript';
import { z } from 'zod';
import { TRPC_CODE_BY_APP_CODE } from '../packages/api/src/errors.ts';
import { appRouter } from '../packages/api/src/router.ts';
import { REST_ROUTES } from '../packages/api/src/rest/rest.routes.ts';
import { APP_CODE_MEANING, type Auth, ENTRIES } from './api-reference.entries.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REFERENCE_FILE = path.join(ROOT, 'docs/API.md');

interface ProcedureDef {
  type: 'query' | 'mutation' | 'subscription';
  inputs: z.ZodType[];
}
/** The router's procedures by dotted path, in declaration order (tRPC keeps them flat in `_def.procedures`). */
export function procedureDefs(): Map<string, ProcedureDef> {
  const all = (appRouter as unknown as { _def: { procedures: Record<string, { _def: ProcedureDef }> } })._def.procedures;
  return new Map(Object.entries(all).map(([p, proc]) => [p, proc._def]));
}

const AUTH_TEXT: Record<Auth, string> = {
  '-': 'public',
  id: 'identity',
  'id+token': 'identity + `x-queue-token`',
  'id+active': 'identity + an ACTIVE `x-queue-token` for the concert (checked once the concert is known: a target that does not exist answers its `…_NOT_FOUND` first)',
  admin: '`x-admin-key`',
};
/** What every procedure of an auth level may answer before its own work starts. */
const AUTH_ERRORS: Record<Auth, string[]> = {
  '-': [],
  id: ['IDENTITY_REQUIRED', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'USER_NOT_FOUND'],
  'id+token': ['IDENTITY_REQUIRED', 'TOKEN_INVALID', 'USER_NOT_FOUND'],
  'id+active': ['IDENTITY_REQUIRED', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'USER_NOT_FOUND', 'QUEUE_NOT_ACTIVE', 'TOKEN_WRONG_CONCERT'],
  admin: ['ADMIN_KEY_INVALID'],
};

// ---- types, printed by the TypeScript checker ------------------------------------------------

/** Input and output of every procedure as the client's compiler sees them, fully expanded. */
export function printedTypes(paths: string[]): Map<string, { input: string; output: string }> {
  const dir = mkdtempSync(path.join(ROOT, 'packages/api/src/.api-reference-'));
  try {
    const probe = path.join(dir, 'probe.ts');
    const access = (p: string) => p.split('.').map((s) => `['${s}']`).join('');
    writeFileSync(
      probe,
      [
        "import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';",
        "import type { AppRouter } from '../routers/index.ts';",
        // Expand aliases and interfaces into their members; `${T}` turns a named union of strings into its literals.
        'type E<T> = T extends Date ? Date : T extends string ? `${T}` : T extends readonly (infer U)[] ? E<U>[] : T extends object ? { [K in keyof T]: E<T[K]> } : T;',
        'type I = inferRouterInputs<AppRouter>;',
        'type O = inferRouterOutputs<AppRouter>;',
        ...paths.flatMap((p, n) => [`export declare const i${n}: E<I${access(p)}>;`, `export declare const o${n}: E<O${access(p)}>;`]),
      ].join('\n'),
    );
    const parsed = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'packages/api/tsconfig.json'), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    });
    if (!parsed) throw new Error('packages/api/tsconfig.json could not be read');
    const program = ts.createProgram([probe], { ...parsed.options, noEmit: true });
    const errors = ts.getPreEmitDiagnostics(program, program.getSourceFile(probe));
    if (errors.length) throw new Error(ts.formatDiagnostics(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' }));
    const checker = program.getTypeChecker();
    const flags = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseSingleQuotesForStringLiteralType;
    // A union that has a name (LineState) is printed by its name however it is computed (the
    // checker interns unions), so each name used is spelled out below the type.
    const named = (type: ts.Type, found: Map<string, string>, depth = 0): Map<string, string> => {
      if (depth > 8) return found;
      if (type.aliasSymbol && type.isUnion()) found.set(type.aliasSymbol.name, type.types.map((t) => checker.typeToString(t, undefined, flags)).join(' | '));
      if (type.isUnion()) for (const t of type.types) named(t, found, depth + 1);
      else if (checker.isArrayType(type)) for (const t of checker.getTypeArguments(type as ts.TypeReference)) named(t, found, depth + 1);
      else if (type.flags & ts.TypeFlags.Object) for (const prop of type.getProperties()) named(checker.getTypeOfSymbol(prop), found, depth + 1);
      return found;
    };
    const printed = new Map<string, string>();
    for (const st of program.getSourceFile(probe)!.statements) {
      if (!ts.isVariableStatement(st)) continue;
      const decl = st.declarationList.declarations[0]!;
      const type = checker.getTypeAtLocation(decl.name);
      const where = [...named(type, new Map())].map(([name, union]) => `\ntype ${name} = ${union};`).join('');
      printed.set(decl.name.getText(), `${checker.typeToString(type, undefined, flags)}${where}`);
    }
    return new Map(paths.map((p, n) => [p, { input: printed.get(`i${n}`)!, output: printed.get(`o${n}`)! }]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Splits `s` at top-level occurrences of `sep` (outside (), [], {}, <> and quotes). */
function splitTop(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if ('([{<'.includes(c)) depth++;
    else if (')]}>'.includes(c) && !(c === '>' && s[i - 1] === '=')) depth--;
    else if (depth === 0 && s.startsWith(sep, i)) {
      parts.push(s.slice(start, i));
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** Lays a printed type out over lines: object literals longer than `width` get a member per line. */
export function layout(type: string, indent = 0, width = 96): string {
  const s = type.trim();
  if (s.length + indent <= width) return s;
  // The first top-level object literal in the string (e.g. `{ … }[]` or `{ … } | null`).
  let depth = 0;
  let open = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '{' && depth === 0) open = i;
    if ('([{<'.includes(c)) depth++;
    if (')]}>'.includes(c) && !(c === '>' && s[i - 1] === '=')) {
      depth--;
      if (c === '}' && depth === 0 && open >= 0) {
        const body = s.slice(open + 1, i).trim().replace(/;$/, '');
        const pad = ' '.repeat(indent + 2);
        const members = splitTop(body, '; ').map((m) => {
          const colon = splitTop(m, ': ');
          const name = colon[0]!;
          const value = colon.slice(1).join(': ');
          return `${pad}${name}: ${layout(value, indent + 2, width - name.length - 2)};`;
        });
        return `${s.slice(0, open)}{\n${members.join('\n')}\n${' '.repeat(indent)}}${layout(s.slice(i + 1), indent + 1, width)}`;
      }
    }
  }
  return s;
}

// ---- constraints, from the zod schemas -------------------------------------------------------

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  default?: unknown;
  enum?: unknown[];
};

/** One line per constrained field: `seatNumbers`: 1–4 items; each an integer 1–1000. */
export function constraints(schema: z.ZodType | undefined): string[] {
  if (!schema) return [];
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const lines: string[] = [];
  const walk = (s: JsonSchema, at: string) => {
    if (s.anyOf) for (const alt of s.anyOf) walk(alt, at);
    const facts: string[] = [];
    const num = s.type === 'integer' ? 'an integer' : s.type === 'number' ? 'a number' : '';
    if (num) {
      const range = [
        s.minimum !== undefined ? `≥ ${s.minimum}` : s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : '',
        s.maximum !== undefined ? `≤ ${s.maximum}` : '',
      ].filter(Boolean);
      if (range.length) facts.push(`${num} ${range.join(' and ')}`);
    }
    if (s.minLength !== undefined || s.maxLength !== undefined) facts.push(`${s.minLength ?? 0}–${s.maxLength ?? '…'} characters`);
    if (s.pattern) facts.push(`matching \`${s.pattern}\``);
    if (s.format && s.format !== 'date-time') facts.push(`format ${s.format}`);
    if (s.format === 'date-time') facts.push('a date (ISO 8601 string or Date)');
    if (s.minItems !== undefined || s.maxItems !== undefined) facts.push(`${s.minItems ?? 0}–${s.maxItems ?? '…'} items`);
    if (s.default !== undefined) facts.push(`default ${JSON.stringify(s.default)}`);
    if (facts.length && at) lines.push(`\`${at}\`: ${facts.join(', ')}`);
    if (s.properties) for (const [k, v] of Object.entries(s.properties)) walk(v, at ? `${at}.${k}` : k);
    if (s.items) walk(s.items, `${at}[]`);
  };
  walk(js, '');
  return [...new Set(lines)];
}

// ---- the document ----------------------------------------------------------------------------

const PREAMBLE = `# API reference

<!-- Generated by \`pnpm docs:api\` (scripts/api-reference.ts) from the routers; do not edit by hand:
     packages/api/test/api-reference.test.ts fails when this file and the code disagree. -->

Every procedure the server answers, with its input and output exactly as a TypeScript client's
compiler sees them (\`import type { AppRouter } from '@concert/api'\`), the input's limits, who may
call it and the errors it answers. The same procedures are served as plain JSON under \`/v1\` where
a REST route is named (\`GET /v1/openapi.json\`, readable at \`GET /docs\`).

## Transport

- tRPC v11 over HTTP at \`/trpc\`, \`superjson\` transformer (dates travel as \`Date\`), batching
  on: \`GET /trpc/<path>?input=…\` for a query, \`POST /trpc/<path>\` with a JSON body for a mutation.
- \`GET /healthz\` answers 200 while the process serves; \`GET /readyz\` 200 only when the database
  and the queue store answer (503 otherwise). \`/metrics\` is served only on \`METRICS_PORT\`.
- Money is an integer number of won. User, concert and schedule ids are positive integers;
  reservation and payment ids are UUID strings.

## Who is calling

| header | meaning |
| --- | --- |
| \`x-user-id: 42\` | identity when \`AUTH_MODE=dev\` (the default outside production) |
| \`authorization: Bearer <jwt>\` | identity when \`AUTH_MODE=jwt\`: HS256 with \`AUTH_JWT_SECRET\`, \`sub\` the user id as a string of digits, \`exp\` required and at most \`AUTH_JWT_MAX_LIFETIME_SECONDS\` (30 days by default) ahead |
| \`x-queue-token: <token>\` | the waiting-room token from \`queue.enter\`, bound to one user and one concert |
| \`x-admin-key: <key>\` | the operator procedures (\`admin.*\`) |

The user id never comes from an input. Someone else's reservation reads \`RESERVATION_NOT_FOUND\`,
exactly like one that does not exist.

## Lists and idempotency

Lists a user or operator can grow take \`{ limit?, cursor? }\` and answer \`{ items, nextCursor }\`
(\`balance.history\`: \`entries\`); pass \`nextCursor\` back as \`cursor\` until it is \`null\`.

\`reservations.hold\`, \`balance.charge\`, \`payments.pay\` and \`reservations.refund\` take an
\`idempotencyKey\` scoped to (user, procedure): the same key and input answers the first call's
result without doing anything again; a different input \`IDEMPOTENCY_KEY_REUSED\`; a call still
running \`IDEMPOTENCY_IN_PROGRESS\`. A call that failed releases its key. Keys are kept at least 24 hours
(deleted 48 hours after the first call).
`;

function errorTable(): string {
  const byCode = new Map<string, string[]>();
  for (const [app, trpc] of Object.entries(TRPC_CODE_BY_APP_CODE)) byCode.set(trpc, [...(byCode.get(trpc) ?? []), app]);
  const rows = Object.entries(APP_CODE_MEANING).map(([app, meaning]) => {
    const trpc = TRPC_CODE_BY_APP_CODE[app as keyof typeof TRPC_CODE_BY_APP_CODE];
    const status = getHTTPStatusCodeFromError(new TRPCError({ code: trpc }));
    return `| \`${app}\` | ${trpc} | ${status} | ${meaning} |`;
  });
  return [
    '## Errors',
    '',
    "Every error is a `TRPCError` whose `data` carries `appCode` next to tRPC's `code` and `httpStatus`;",
    'an input error also carries the zod `issues` (the first 20; `issuesOmitted` counts the rest). On',
    '`/v1` the same appCode comes in an `application/problem+json` body with the same HTTP status.',
    'No input holds an array of more than 1000 elements (refused before its elements are checked).',
    'Any procedure may also answer',
    '`INVALID_INPUT`, `RATE_LIMITED` and `SERVICE_UNAVAILABLE`; a malformed request never answers 5xx.',
    '',
    '| appCode | tRPC code | HTTP | meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

export function renderReference(): string {
  const defs = procedureDefs();
  const paths = [...defs.keys()];
  const types = printedTypes(paths);
  const rest = new Map(REST_ROUTES.map((r) => [r.procedure as string, `\`${r.method} ${r.path}\``]));
  const sections: string[] = [];
  let group = '';
  for (const p of paths) {
    const def = defs.get(p)!;
    const entry = ENTRIES[p as keyof typeof ENTRIES];
    const g = p.split('.')[0]!;
    if (g !== group) {
      sections.push(`## ${g}\n`);
      group = g;
    }
    const t = types.get(p)!;
    const errors = [...AUTH_ERRORS[entry.auth], ...entry.errors.filter((e) => !AUTH_ERRORS[entry.auth].includes(e))];
    const limits = constraints(def.inputs[0]);
    sections.push(
      [
        `### \`${p}\` (${def.type})`,
        '',
        entry.summary,
        '',
        `- Auth: ${AUTH_TEXT[entry.auth]}`,
        `- REST: ${rest.get(p) ?? 'none (tRPC only)'}`,
        `- Errors: ${errors.length ? errors.map((e) => `\`${e}\``).join(', ') : 'none of its own'}`,
        ...(limits.length ? ['- Limits:', ...limits.map((l) => `  - ${l}`)] : []),
        '',
        'Input:',
        '',
        '```ts',
        ...t.input.split('\n').map((l) => layout(l)),
        '```',
        '',
        `Example: \`${JSON.stringify(entry.example)}\``,
        '',
        'Output:',
        '',
        '```ts',
        ...t.output.split('\n').map((l) => layout(l)),
        '```',
        '',
      ].join('\n'),
    );
  }
  return [PREAMBLE, errorTable(), ...sections].join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(REFERENCE_FILE, renderReference());
  console.log(`wrote ${path.relative(ROOT, REFERENCE_FILE)}`);
}
