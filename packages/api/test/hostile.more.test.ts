import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { MAX_INPUT_ARRAY, MAX_META_STEPS } from '../src/input-bounds.ts';
import { transformer } from '../src/transformer.ts';
import { admin, useApi } from '../../../test/harness.ts';
import { appCodesOf, httpText, type RawResponse, rawRequest } from '../../../test/raw-http.ts';

/*
 * What a further outside hostile review found, from raw sockets: requests the HTTP edge refuses
 * before any handler runs (an Expect it cannot meet, a request Node's parser refuses) were
 * answered in tRPC's envelope on /v1, where the contract has every error as
 * application/problem+json with a top-level appCode (the REST section).
 */

const suite = useApi();
const port = () => Number(new URL(suite.api.url).port);

/** The surface's error shape: REST's problem+json (top-level appCode and status) or tRPC's envelope. */
function shapeOf(r: RawResponse): { status: number; type: string | undefined; appCodes: string[]; problemStatus?: unknown } {
  const type = r.headers['content-type'];
  const problem = type === 'application/problem+json' ? (JSON.parse(r.body) as { status?: unknown }) : undefined;
  return { status: r.status, type, appCodes: appCodesOf(r.body).appCodes, ...(problem ? { problemStatus: problem.status } : {}) };
}

describe('requests refused before any handler runs, on /v1', () => {
  it('an Expect other than 100-continue is 417 problem+json with its appCode on /v1 and /docs, tRPC\'s envelope on /trpc', async () => {
    const headers = { 'x-user-id': '1', 'content-type': 'application/json', expect: 'bogus' };
    const rest = [
      httpText('POST', '/v1/balance/charges', { headers: { ...headers, 'idempotency-key': 'hostile-more-expect' }, body: '{"amount":1}' }),
      httpText('GET', '/v1/concerts', { headers }),
      httpText('GET', '/docs', { headers }),
    ];
    for (const bytes of rest) {
      const r = await rawRequest(port(), bytes);
      expect({ request: bytes.toString('latin1').split('\r\n')[0], ...shapeOf(r) }).toEqual({
        request: bytes.toString('latin1').split('\r\n')[0],
        status: 417,
        type: 'application/problem+json',
        appCodes: ['INVALID_INPUT'],
        problemStatus: 417,
      });
    }
    const trpc = await rawRequest(port(), httpText('GET', '/trpc/concerts.list', { headers }));
    expect(shapeOf(trpc)).toEqual({ status: 417, type: 'application/json', appCodes: ['INVALID_INPUT'] });
  });

  // Each request arrives in one write, as a client sends a small request: the parser refuses it
  // with the request line in the same read.
  const refused: Array<[string, (target: string) => Buffer, number, string]> = [
    ['a header name with a space', (t) => Buffer.from(`GET ${t} HTTP/1.1\r\nhost: x\r\nbad header: y\r\nconnection: close\r\n\r\n`, 'latin1'), 400, 'INVALID_INPUT'],
    ['a raw non-ASCII byte in the path', (t) => Buffer.concat([Buffer.from(`GET ${t}`), Buffer.from([0xc3, 0xa9]), Buffer.from(' HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')]), 400, 'INVALID_INPUT'],
    ['a method Node does not know', (t) => Buffer.from(`FOO ${t} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`), 400, 'INVALID_INPUT'],
    ['two different Content-Lengths', (t) => Buffer.from(`POST ${t} HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`), 400, 'INVALID_INPUT'],
    ['headers over the limit', (t) => Buffer.from(`GET ${t} HTTP/1.1\r\nhost: x\r\nx-big: ${'b'.repeat(20_000)}\r\nconnection: close\r\n\r\n`), 431, 'PAYLOAD_TOO_LARGE'],
  ];
  for (const [what, bytes, status, appCode] of refused) {
    it(`${what}: problem+json with its appCode on /v1, tRPC's envelope on /trpc`, async () => {
      for (const target of ['/v1/concerts', '/v1/balance/charges']) {
        const r = await rawRequest(port(), bytes(target));
        expect({ target, ...shapeOf(r) }).toEqual({ target, status, type: 'application/problem+json', appCodes: [appCode], problemStatus: status });
      }
      const trpc = await rawRequest(port(), bytes('/trpc/concerts.list'));
      expect(shapeOf(trpc)).toEqual({ status, type: 'application/json', appCodes: [appCode] });
      // The process serves on.
      expect((await rawRequest(port(), httpText('GET', '/v1/concerts'))).status).toBe(200);
    });
  }
});

/**
 * A superjson input of `depth` Sets of 999 elements, each the last element of the one before,
 * and annotations on the innermost Set's elements filling the 1,000 meta paths: every path into
 * it walks every Set from its start (superjson's getNthKey), ~900 x depth x 998 steps, under
 * both the array and the path limits.
 */
function nestedSets(depth: number): { json: unknown; meta: { values: Record<string, unknown>; v: 1 } } {
  const n = MAX_INPUT_ARRAY - 1;
  let inner: unknown[] = Array.from({ length: n }, (_, i) => i);
  for (let d = 1; d < depth; d++) inner = [...Array.from({ length: n - 1 }, (_, i) => i), inner];
  const values: Record<string, unknown> = {};
  let path = 's';
  for (let d = 0; d < depth; d++, path += `.${n - 1}`) values[path] = ['set'];
  const innermost = path.slice(0, path.lastIndexOf('.'));
  for (let i = 0; Object.keys(values).length < 1000; i++) values[`${innermost}.${i}`] = ['number'];
  return { json: { s: inner }, meta: { values, v: 1 } };
}

describe('superjson paths through nested Sets', () => {
  it('are refused before superjson walks them; what superjson writes for a large Set or Map still reads', () => {
    const started = performance.now();
    // 60 levels: under MAX_INPUT_DEPTH, which refuses a deeper input before its meta is looked at.
    expect(() => transformer.deserialize(JSON.parse(JSON.stringify(nestedSets(60))))).toThrow(/^meta's paths index \d+ elements in all; no input needs more than 1000000$/);
    expect(performance.now() - started).toBeLessThan(1_000);
    // Two levels are enough to go over the bound; one level of the largest size is not.
    expect(() => transformer.deserialize(nestedSets(2))).toThrow(/^meta's paths index/);
    // 999: with the Set's own annotation, 1,000 meta paths.
    const dates = Array.from({ length: MAX_INPUT_ARRAY - 1 }, (_, i) => new Date(i));
    for (const value of [{ s: new Set(dates) }, { m: new Map(dates.map((d, i) => [i, d])) }, { n: new Set([new Set([new Date(0)]), new Set([new Date(1)])]) }]) {
      const wire = JSON.parse(JSON.stringify(superjson.serialize(value)));
      expect(transformer.deserialize(wire)).toEqual(value);
    }
    expect(MAX_META_STEPS).toBe(1_000_000);
  });

  // ~780 KB held the event loop ~0.5 s per request, on tRPC's handler and the fast path alike.
  it('over HTTP: 400 INVALID_INPUT at once, on tRPC\'s handler and the fast path', async () => {
    const { userId } = await admin(suite.api.url).admin.users.create.mutate({ name: 'nested-sets', initialBalance: 0 });
    const body = JSON.stringify(nestedSets(60));
    expect(body.length).toBeLessThan(1024 * 1024);
    for (const target of ['/trpc/balance.charge', '/trpc/queue.enter']) {
      const r = await rawRequest(port(), httpText('POST', target, { headers: { 'x-user-id': String(userId), 'content-type': 'application/json' }, body }));
      expect({ target, status: r.status, appCodes: appCodesOf(r.body).appCodes }).toEqual({ target, status: 400, appCodes: ['INVALID_INPUT'] });
      expect(r.body).toContain("meta's paths index");
      expect(r.ms).toBeLessThan(2_000);
    }
  });
});

/*
 * A superjson payload of null (a body `null`, a batch entry `{"0":null}`): superjson read `json`
 * off it, and the 400 carried JavaScript's own message ("Cannot destructure property 'json' of
 * 'payload' as it is null."), which told the client nothing (the hostile review, noted).
 */
describe('a superjson payload of null', () => {
  it('is 400 INVALID_INPUT saying what the input must be, on a mutation, the fast path, a batch and a query', async () => {
    const base = suite.api.url;
    const answers = [
      await fetch(`${base}/trpc/balance.charge`, { method: 'POST', headers: { 'x-user-id': '1', 'content-type': 'application/json' }, body: 'null' }),
      await fetch(`${base}/trpc/queue.enter`, { method: 'POST', headers: { 'x-user-id': '1', 'content-type': 'application/json' }, body: 'null' }), // the fast path
      await fetch(`${base}/trpc/balance.charge?batch=1`, { method: 'POST', headers: { 'x-user-id': '1', 'content-type': 'application/json' }, body: '{"0":null}' }),
      await fetch(`${base}/trpc/concerts.list?batch=1&input=${encodeURIComponent('{"0":null}')}`),
    ];
    for (const res of answers) {
      expect(res.status).toBe(400);
      const body = (await res.json()) as unknown;
      const error = (Array.isArray(body) ? body[0] : body) as { error: { json: { message: string; data: { appCode: string } } } };
      expect(error.error.json.data.appCode).toBe('INVALID_INPUT');
      expect(error.error.json.message).toMatch(/^input must be superjson/);
    }
  });
});

/*
 * superjson builds a typed array from whatever `json` holds at its path (`new Uint8Array(v)`):
 * one anonymous GET of ~150 bytes, `{"a":{"length":1e9}}` annotated as a Uint8Array, held the
 * event loop for minutes and grew the process to 18 GB (an outside hostile review, raw sockets).
 */
describe('a superjson typed array', () => {
  it('is 400 INVALID_INPUT at once, on a public query, a batch, the fast path and a mutation', async () => {
    const { userId } = await admin(suite.api.url).admin.users.create.mutate({ name: 'typed-array', initialBalance: 0 });
    const input = { json: { a: { length: 2_000_000 } }, meta: { values: { a: [['typed-array', 'Float64Array']] } } };
    const q = encodeURIComponent(JSON.stringify(input));
    const headers = { 'x-user-id': String(userId), 'content-type': 'application/json' };
    const requests = [
      httpText('GET', `/trpc/concerts.list?input=${q}`),
      httpText('GET', `/trpc/concerts.list?batch=1&input=${encodeURIComponent(JSON.stringify({ 0: input }))}`),
      httpText('GET', `/trpc/queue.status?input=${q}`, { headers }),
      httpText('POST', '/trpc/balance.charge', { headers, body: JSON.stringify(input) }),
      httpText('POST', '/trpc/queue.enter', { headers, body: JSON.stringify(input) }),
    ];
    for (const bytes of requests) {
      const r = await rawRequest(port(), bytes);
      const request = bytes.toString('latin1').split('\r\n')[0]!.slice(0, 40);
      expect({ request, status: r.status, appCodes: appCodesOf(r.body).appCodes }).toEqual({ request, status: 400, appCodes: ['INVALID_INPUT'] });
      expect(r.body).toContain('annotates a typed array');
      expect(r.ms).toBeLessThan(1_000);
    }
  });
});

/*
 * A meta path past the end of an array: superjson wrote through it (`array[index] = value`), so a
 * ~150-byte body made a hold's seatNumbers a million long, and zod checked it hole by hole (~10 s
 * of the event loop, RSS 1.2 GB; a larger index, more than the heap holds). The hostile review's
 * third round. Arrays keep their length; superjson's own output still reads.
 */
describe('a superjson meta path past the end of an array', () => {
  const bodies = (key: string) => [
    { json: { scheduleId: 1, seatNumbers: [1], idempotencyKey: key }, meta: { values: { 'seatNumbers.300000': ['undefined'] } } },
    { json: { scheduleId: 1, seatNumbers: [1], a: 1, idempotencyKey: key }, meta: { referentialEqualities: { a: ['seatNumbers.300000'] } } },
    // Through an object that an earlier path made the array itself.
    { json: { scheduleId: 1, seatNumbers: [1], b: {}, idempotencyKey: key }, meta: { referentialEqualities: { seatNumbers: ['b', 'b.300000'] } } },
  ];

  it('is refused by the transformer without lengthening the array; a legitimate input still reads', () => {
    for (const body of bodies('past-the-end-unit')) {
      expect(() => transformer.deserialize(JSON.parse(JSON.stringify(body)))).toThrow('meta names an array element past the end of its array');
    }
    const value = { d: [new Date(0), undefined, new Date(1)], m: new Map([[1, new Date(2)]]), s: new Set([new Date(3)]), x: { y: [1] }, z: undefined as unknown };
    value.z = value.x;
    expect(transformer.deserialize(JSON.parse(JSON.stringify(superjson.serialize(value))))).toEqual(value);
  });

  it('over HTTP: 400 INVALID_INPUT at once, on the fast path and tRPC\'s handler', { timeout: 120_000 }, async () => {
    const { userId } = await admin(suite.api.url).admin.users.create.mutate({ name: 'past-the-end', initialBalance: 0 });
    for (const [target, wrap] of [
      ['/trpc/reservations.hold', (b: unknown) => b],
      ['/trpc/reservations.hold?batch=1', (b: unknown) => ({ 0: b })],
    ] as const) {
      for (const body of bodies('past-the-end-http')) {
        const r = await rawRequest(port(), httpText('POST', target, { headers: { 'x-user-id': String(userId), 'content-type': 'application/json' }, body: JSON.stringify(wrap(body)) }), { timeoutMs: 60_000 });
        expect({ target, status: r.status, appCodes: appCodesOf(r.body).appCodes }).toEqual({ target, status: 400, appCodes: ['INVALID_INPUT'] });
        expect(r.body).toContain('past the end of its array');
        expect(r.ms).toBeLessThan(2_000);
      }
    }
  });
});
