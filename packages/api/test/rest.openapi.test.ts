import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { compileErrors, validate } from '@readme/openapi-parser';
import openapiTS, { astToString } from 'openapi-typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, seedSale, useApi } from '../../../test/harness.ts';
import { procedureInput } from '../src/rest/rest.inputs.ts';
import { REST_ROUTES } from '../src/rest/rest.routes.ts';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

/** The contract's REST table (API.md, version 2), operation by operation. */
const CONTRACT = [
  ['GET', '/v1/concerts', 'concerts.list'],
  ['GET', '/v1/concerts/{concertId}', 'concerts.get'],
  ['GET', '/v1/concerts/{concertId}/schedules', 'concerts.schedules'],
  ['GET', '/v1/schedules/{scheduleId}', 'concerts.schedule'],
  ['GET', '/v1/schedules/{scheduleId}/seats', 'concerts.seats'],
  ['POST', '/v1/concerts/{concertId}/queue', 'queue.enter'],
  ['GET', '/v1/queue/status', 'queue.status'],
  ['DELETE', '/v1/queue', 'queue.leave'],
  ['POST', '/v1/reservations', 'reservations.hold'],
  ['GET', '/v1/reservations', 'reservations.mine'],
  ['GET', '/v1/reservations/{reservationId}', 'reservations.get'],
  ['POST', '/v1/reservations/{reservationId}/cancel', 'reservations.cancel'],
  ['POST', '/v1/reservations/{reservationId}/refund', 'reservations.refund'],
  ['POST', '/v1/payments', 'payments.pay'],
  ['GET', '/v1/balance', 'balance.get'],
  ['POST', '/v1/balance/charges', 'balance.charge'],
  ['GET', '/v1/balance/history', 'balance.history'],
  ['POST', '/v1/schedules/{scheduleId}/waitlist', 'waitlist.join'],
  ['GET', '/v1/waitlist', 'waitlist.mine'],
  ['DELETE', '/v1/waitlist/{entryId}', 'waitlist.leave'],
] as const;

interface Doc {
  openapi: string;
  paths: Record<string, Record<string, { operationId: string; parameters?: Array<{ name: string; in: string; required?: boolean; schema: Record<string, unknown> }>; requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>>;
}

describe('GET /v1/openapi.json', () => {
  const suite = useApi();
  let doc: Doc;
  beforeAll(async () => {
    const res = await fetch(`${suite.api.url}/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    doc = (await res.json()) as Doc;
  });

  it('is a valid OpenAPI 3.1 document (@readme/openapi-parser)', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid ? 'valid' : compileErrors(result)).toBe('valid');
    expect(result.warnings).toEqual([]);
  });

  it("has every operation of the contract's REST table, each backed by the procedure it names", () => {
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(CONTRACT.map(([m, p]) => `${m} ${p}`).sort());
    expect(REST_ROUTES.map((r) => [r.method, r.path, r.procedure])).toEqual(expect.arrayContaining(CONTRACT.map((c) => [...c])));
  });

  it("describes the input with the procedure's own schema: the hold body is ZHoldInput's, the key a header", () => {
    const hold = doc.paths['/v1/reservations']!.post!;
    const body = hold.requestBody!.content['application/json']!.schema as { properties: Record<string, Record<string, unknown>>; required: string[] };
    expect(body.required).toEqual(['scheduleId', 'seatNumbers']);
    expect(body.properties.seatNumbers).toMatchObject({ type: 'array', minItems: 1, maxItems: 4, items: { type: 'integer', minimum: 1, maximum: 1000 } });
    expect(body.properties.idempotencyKey).toBeUndefined();
    const params = Object.fromEntries((hold.parameters ?? []).map((p) => [`${p.in}:${p.name}`, p]));
    expect(params['header:Idempotency-Key']).toMatchObject({ required: true, schema: { pattern: '^[A-Za-z0-9_\\-:.]{8,100}$' } });
    expect(params['header:x-queue-token']).toMatchObject({ required: true });
    // Change the procedure's schema and the document follows: it is read from the router at run time.
    expect(procedureInput('reservations.hold').safeParse({ scheduleId: 1, seatNumbers: [1, 2, 3, 4, 5], idempotencyKey: 'abcdefgh' }).success).toBe(false);
    // A waitlist offer is paid without a queue token (the contract's payments section), so the
    // payment's token header is optional: marked required, a client generated from the document
    // could not send that payment, and a validating gateway refused it.
    const pay = Object.fromEntries((doc.paths['/v1/payments']!.post!.parameters ?? []).map((p) => [`${p.in}:${p.name}`, p]));
    expect(pay['header:x-queue-token']?.required ?? false).toBe(false);
    expect(pay['header:Idempotency-Key']).toMatchObject({ required: true });
    for (const [p, m] of [['/v1/schedules/{scheduleId}/seats', 'get'], ['/v1/queue/status', 'get'], ['/v1/queue', 'delete']] as const) {
      expect(doc.paths[p]![m]!.parameters!.find((x) => x.name === 'x-queue-token'), `${m} ${p}`).toMatchObject({ in: 'header', required: true });
    }
    const schedules = doc.paths['/v1/concerts/{concertId}/schedules']!.get!;
    expect(schedules.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ in: 'path', name: 'concertId', required: true, schema: expect.objectContaining({ type: 'integer' }) }),
        expect.objectContaining({ in: 'query', name: 'includeSoldOut', schema: expect.objectContaining({ type: 'boolean', default: false }) }),
      ]),
    );
  });

  // The server sends Retry-After with every 429 (RATE_LIMITED), and the document did not declare the
  // 429 or its header: a generated client had no type for it (an outside review of REST).
  it('declares the 429 and its Retry-After header where the per-user limits count calls, and only there', () => {
    const responses = (p: string, m: string) => (doc.paths[p]![m] as unknown as { responses: Record<string, { headers?: Record<string, { schema: unknown }> }> }).responses;
    for (const [p, m] of [['/v1/balance/charges', 'post'], ['/v1/reservations', 'post'], ['/v1/queue/status', 'get'], ['/v1/queue', 'delete'], ['/v1/concerts/{concertId}/queue', 'post']] as const) {
      expect(responses(p, m)['429']?.headers?.['Retry-After'], `${m} ${p}`).toMatchObject({ schema: { type: 'string', pattern: '^\\d+$' } });
    }
    for (const [p, m] of [['/v1/concerts', 'get'], ['/v1/balance', 'get'], ['/v1/reservations', 'get']] as const) expect(responses(p, m)['429'], `${m} ${p}`).toBeUndefined();
  });

  describe('a client generated from it (openapi-typescript + openapi-fetch)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'concert-openapi-client-'));
      await writeFile(path.join(dir, 'api.d.ts'), astToString(await openapiTS(structuredClone(doc) as never)));
      // The generated client's one runtime dependency, as an app would install it.
      await mkdir(path.join(dir, 'node_modules'));
      await symlink(path.dirname(require.resolve('openapi-fetch/package.json')), path.join(dir, 'node_modules', 'openapi-fetch'), 'dir');
      await writeFile(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022', 'dom'], skipLibCheck: true, types: [] } }),
      );
      await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
      await writeFile(path.join(dir, 'app.ts'), APP);
    });
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** Wrong calls a developer could write, each in a file of its own, with the error tsc must give. */
    const WRONG = [
      ['a path parameter of the wrong type', `await api.GET('/v1/concerts/{concertId}', { params: { path: { concertId: 'one' } } });`, 'TS2322'],
      ['a hold without its Idempotency-Key header', `await api.POST('/v1/reservations', { params: { header: { 'x-queue-token': 't' } }, body: { scheduleId: 1, seatNumbers: [1] } });`, 'TS2741'],
      ['seat numbers as strings', `await api.POST('/v1/reservations', { params: { header: { 'x-queue-token': 't', 'Idempotency-Key': 'k-12345678' } }, body: { scheduleId: 1, seatNumbers: ['A1'] } });`, 'TS2322'],
      ['an operation the API does not have', `await api.PUT('/v1/reservations', {});`, 'TS2'],
      ['a field the answer does not have', `const { data } = await api.GET('/v1/balance'); console.log(data?.credit);`, 'TS2339'],
    ] as const;

    it('type-checks a small app that books with it (and refuses each wrong call); the app runs against the server', async () => {
      for (const [i, [, line]] of WRONG.entries()) {
        await writeFile(path.join(dir, `wrong${i}.ts`), `import createClient from 'openapi-fetch';\nimport type { paths } from './api.d.ts';\nconst api = createClient<paths>({ baseUrl: 'http://x' });\n${line}\n`);
      }
      // One tsc run for all the files: it is the slow part.
      const output = await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: dir }).then(
        () => '',
        (err: { stdout: string }) => err.stdout,
      );
      const errors = output.split('\n').filter((l) => l.includes('error TS'));
      expect(errors.filter((l) => !l.startsWith('wrong'))).toEqual([]);
      for (const [i, [name, , code]] of WRONG.entries()) {
        expect(errors.filter((l) => l.startsWith(`wrong${i}.ts(4,`)).join('\n'), name).toContain(`error ${code}`);
      }

      const sale = await seedSale(suite.api.url, { users: 1 });
      const app = (await import(pathToFileURL(path.join(dir, 'app.ts')).href)) as { book: (base: string, user: number, concertId: number) => Promise<{ status: string; seats: number[] }> };
      expect(await app.book(suite.api.url, sale.userIds[0]!, sale.concertId)).toEqual({ status: 'HELD', seats: [1, 2] });
    });
  });
});

/** What a developer writes with the generated types: hold two seats of the first schedule. */
const APP = `import createClient from 'openapi-fetch';
import type { paths, components } from './api.d.ts';

type Reservation = components['schemas']['Reservation'];

export async function book(baseUrl: string, user: number, concertId: number): Promise<{ status: Reservation['status']; seats: number[] }> {
  const api = createClient<paths>({ baseUrl, headers: { 'x-user-id': String(user) } });
  const concert = await api.GET('/v1/concerts/{concertId}', { params: { path: { concertId } } });
  if (!concert.data) throw new Error(concert.error.appCode + ': ' + concert.error.detail);
  const scheduleId: number = concert.data.schedules[0]!.scheduleId;
  const ticket = await api.POST('/v1/concerts/{concertId}/queue', { params: { path: { concertId } } });
  if (!ticket.data) throw new Error(ticket.error.appCode);
  const token: string = ticket.data.token;
  const seats = await api.GET('/v1/schedules/{scheduleId}/seats', { params: { path: { scheduleId }, header: { 'x-queue-token': token } } });
  if (!seats.data) throw new Error(seats.error.appCode);
  const free = seats.data.seats.filter((s) => s.status === 'AVAILABLE').slice(0, 2).map((s) => s.seatNumber);
  const hold = await api.POST('/v1/reservations', {
    params: { header: { 'x-queue-token': token, 'Idempotency-Key': 'app-hold-' + user + '-' + concertId } },
    body: { scheduleId, seatNumbers: free },
  });
  if (!hold.data) throw new Error(hold.error.appCode + ': ' + hold.error.detail);
  return { status: hold.data.status, seats: hold.data.seats.map((s) => s.seatNumber) };
}

/** Pays a waitlist offer: the offer is its own admission, so no queue token is sent. */
export async function payOffer(baseUrl: string, user: number, reservationId: string): Promise<number> {
  const api = createClient<paths>({ baseUrl, headers: { 'x-user-id': String(user) } });
  const paid = await api.POST('/v1/payments', { params: { header: { 'Idempotency-Key': 'app-offer-' + reservationId } }, body: { reservationId } });
  if (!paid.data) throw new Error(paid.error.appCode);
  return paid.data.balanceAfter;
}
`;
