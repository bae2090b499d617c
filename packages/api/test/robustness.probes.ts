import fc from 'fast-check';
import { appRouter } from '../src/router.ts';

/**
 * Hostile and careless HTTP requests, generated from a fixed seed: what bots, fuzzers and broken
 * clients send on sale day. Each probe is the exact bytes for a raw socket.
 */

export interface Fixture {
  userId: number;
  /** An ACTIVE queue token of userId for concertId. */
  queueToken: string;
  concertId: number;
  scheduleId: number;
}

export interface Probe {
  kind: string;
  bytes: Buffer;
  /** The client stops sending before the request is complete, then hangs up: no answer is owed. */
  hangsUp?: boolean;
  /** No request line ever comes (only empty lines): the server closes it on its own time, or the client gives up. */
  incomplete?: boolean;
}

// Every procedure the router has, so new ones are probed too.
const PROCEDURES = Object.entries(appRouter._def.procedures as unknown as Record<string, { _def: { type: string } }>).map(([path, p]) => ({ path, type: p._def.type }));
const PATHS = PROCEDURES.map((p) => p.path);

const enc = (v: unknown) => encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v));

const BAD_ESCAPES = ['%', '%z', '%zz', '%E0', '%E0%A4%A', '%C0%AF', '%FF%FE', '%00', '%%', '%2', '%u0041', '%ED%A0%80', '%F4%90%80%80', '%0D%0A'];

/** superjson envelopes that try its parser: prototype keys, unknown and wrong types, cycles, depth. */
const META_TRICKS = [
  '{"json":{"concertId":1},"meta":{"values":{"__proto__":["undefined"]}}}',
  '{"json":{"concertId":1},"meta":{"values":{"constructor.prototype.polluted":["undefined"]}}}',
  '{"json":{"a":{}},"meta":{"values":{"a.__proto__.polluted":["undefined"]}}}',
  '{"json":{"__proto__":{"polluted":1},"concertId":1}}',
  '{"json":{"concertId":"1"},"meta":{"values":{"concertId":["bigint"]}}}',
  '{"json":{"concertId":"x"},"meta":{"values":{"concertId":["bigint"]}}}',
  '{"json":{"concertId":"x"},"meta":{"values":{"concertId":["Date"]}}}',
  '{"json":{"concertId":"/(a+)+$/"},"meta":{"values":{"concertId":["regexp"]}}}',
  '{"json":{"concertId":"/[/"},"meta":{"values":{"concertId":["regexp"]}}}',
  '{"json":{"concertId":[1,2]},"meta":{"values":{"concertId":["set"]}}}',
  '{"json":{"concertId":[[1,2]]},"meta":{"values":{"concertId":["map"]}}}',
  '{"json":{"concertId":5},"meta":{"values":{"concertId":["map"]}}}',
  '{"json":{"concertId":1},"meta":{"values":{"concertId":["custom","nope"]}}}',
  '{"json":{"concertId":1},"meta":{"values":{"concertId":["class","Nope"]}}}',
  '{"json":{"concertId":1},"meta":{"values":{"concertId":["symbol","x"]}}}',
  '{"json":{"concertId":{"name":"x","message":"y"}},"meta":{"values":{"concertId":["Error"]}}}',
  '{"json":{"concertId":"http://a"},"meta":{"values":{"concertId":["URL"]}}}',
  '{"json":{"concertId":"NaN"},"meta":{"values":{"concertId":["number"]}}}',
  '{"json":{"concertId":1},"meta":{"values":{"concertId":"number"}}}',
  '{"json":{"concertId":1},"meta":{"values":{"concertId":[]}}}',
  '{"json":{"concertId":1},"meta":{"values":{"concertId":[["map",{"0":["undefined"]}]]}}}',
  '{"json":{"concertId":1},"meta":{"values":[1,2]}}',
  '{"json":{"concertId":1},"meta":{"values":null}}',
  '{"json":{"concertId":1},"meta":"x"}',
  '{"json":{"concertId":1},"meta":{"v":99}}',
  '{"json":{"a":{},"b":{}},"meta":{"referentialEqualities":{"a":["a.self"]}}}',
  '{"json":{"a":{"b":{}}},"meta":{"referentialEqualities":{"a":["a.b.c"]}}}',
  '{"json":{"concertId":1},"meta":{"referentialEqualities":{"concertId":["x.y.z"]}}}',
  '{"json":{"concertId":1},"meta":{"referentialEqualities":{"__proto__":["polluted"]}}}',
  '{"json":{"concertId":1},"meta":{"referentialEqualities":["a"]}}',
  `{"json":{},"meta":{"values":{"${'a.'.repeat(5000)}b":["undefined"]}}}`,
  `{"json":{"x":${'['.repeat(5000)}${']'.repeat(5000)}}}`,
  `{"json":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`,
];

const jsonText = fc.oneof(
  { arbitrary: fc.constantFrom(...META_TRICKS), weight: 4 },
  { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((json) => JSON.stringify({ json })), weight: 3 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)), weight: 1 },
  { arbitrary: fc.constantFrom('', '{', '[1,2', 'null', 'not json', '{"json":', '{"json":{"concertId":1,}}', '\u0000', '\uFEFF{"json":{}}', '{"json":{"concertId":1e400}}'), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 1 },
);

/** Plausible inputs with the fixture's ids, so some probes get past validation into the services. */
function plausible(f: Fixture) {
  return fc
    .record({
      concertId: fc.constantFrom(f.concertId, 0, -1, 2 ** 53, 1.5),
      scheduleId: fc.constantFrom(f.scheduleId, 999_999),
      seatNumbers: fc.array(fc.integer({ min: -1, max: 60 }), { maxLength: 5 }),
      idempotencyKey: fc.stringMatching(/^[A-Za-z0-9_-]{0,12}$/).map((k) => `robust-${k}`),
      reservationId: fc.uuid(),
      amount: fc.integer({ min: -5, max: 2_000_000 }),
      limit: fc.integer({ min: -1, max: 500 }),
    })
    .chain((all) => fc.subarray(Object.keys(all)).map((keys) => JSON.stringify({ json: Object.fromEntries(keys.map((k) => [k, all[k as keyof typeof all]])) })));
}

/** The procedures the server's fast path serves (single-call.ts): the differential suite aims at them. */
export const HOT = ['queue.status', 'concerts.seats', 'queue.enter', 'reservations.hold', 'payments.pay'];

const procedurePath = fc.oneof(
  { arbitrary: fc.constantFrom(...PATHS), weight: 6 },
  { arbitrary: fc.constantFrom('nope', '__proto__', 'constructor', 'prototype', 'toString', 'queue.__proto__', 'hasOwnProperty', 'concerts..list', '.', '..', '', 'queue.status.', '.queue.status'), weight: 2 },
  { arbitrary: fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom(...BAD_ESCAPES)).map(([p, e]) => p + e), weight: 2 },
  { arbitrary: fc.tuple(fc.constantFrom(...BAD_ESCAPES), fc.constantFrom(...PATHS)).map(([e, p]) => e + p), weight: 1 },
  { arbitrary: fc.constantFrom(...PATHS).map((p) => p.replace('.', '%2E')), weight: 1 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => encodeURIComponent(s)), weight: 1 },
  { arbitrary: fc.array(fc.constantFrom(...PATHS), { minLength: 2, maxLength: 60 }).map((ps) => ps.join(',')), weight: 2 },
  { arbitrary: fc.integer({ min: 2_000, max: 30_000 }).map((n) => 'a'.repeat(n)), weight: 1 },
);

const query = (f: Fixture) =>
  fc.oneof(
    { arbitrary: fc.constant(''), weight: 3 },
    { arbitrary: fc.oneof(jsonText, plausible(f)).map((t) => `?input=${enc(t)}`), weight: 6 },
    { arbitrary: fc.oneof(jsonText, plausible(f)).map((t) => `?batch=1&input=${enc(`{"0":${t},"1":${t}}`)}`), weight: 2 },
    { arbitrary: fc.constantFrom(...BAD_ESCAPES).map((e) => `?input=${e}`), weight: 2 },
    {
      arbitrary: fc.constantFrom(
        '?',
        '?batch=1',
        '?batch=abc',
        '?batch=1&input=[]',
        '?batch=1&input=%7B%7D',
        '?batch=1&input=%7B%220%22%3Anull%7D',
        '?input=a&input=b',
        '?x=1',
        '?input',
        '?input=%7B%7D#frag',
        '?connectionParams=%7B',
        '?connectionParams=1',
        '?lastEventId=x',
        `?input=${'x'.repeat(10_000)}`,
      ),
      weight: 2,
    },
  );

const contentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 6 },
  {
    arbitrary: fc.constantFrom(
      undefined,
      'text/plain',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/jsonx',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz',
      'multipart/form-data',
      'application/octet-stream',
      '',
      ';',
      'application/json;;;',
    ),
    weight: 4,
  },
);

/** Mostly what a client sends (`usual`), now and then something odd. */
function mostly<T>(usual: T, ...odd: T[]) {
  return fc.oneof({ arbitrary: fc.constant(usual), weight: 5 }, { arbitrary: fc.constantFrom(...odd), weight: 1 });
}

function headerSets(f: Fixture) {
  return fc.record({
    host: mostly<string | undefined>('localhost', undefined, '', 'a b', '[::1]', '999.999.999.999', 'x'.repeat(300), 'localhost:99999'),
    userId: mostly<string | undefined>(String(f.userId), undefined, 'abc', '-1', '1'.repeat(40), '0x10', `${f.userId}, 2`),
    queueToken: mostly<string | undefined>(f.queueToken, undefined, 'garbage', `${f.queueToken.slice(0, -3)}AAA`, 'x'.repeat(4000)),
    authorization: mostly<string | undefined>(undefined, 'Bearer x.y.z', 'Basic Zm9vOmJhcg==', 'Bearer'),
    adminKey: mostly<string | undefined>(undefined, 'wrong', ''),
    accept: mostly<string | undefined>(undefined, 'application/jsonl', 'text/event-stream', '*/*'),
    trpcAccept: mostly<string | undefined>(undefined, 'application/jsonl', 'nonsense'),
    requestId: mostly<string | undefined>(undefined, 'abc', 'x'.repeat(300), 'bad id with spaces'),
    origin: mostly<string | undefined>(undefined, 'https://evil.example.com', 'null'),
    // Printable values, and now and then control characters the parser must refuse.
    extra: fc.array(
      fc.tuple(
        fc.stringMatching(/^x-[a-z]{1,8}$/),
        fc.oneof({ arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 30 }), weight: 9 }, { arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((v) => v.replace(/[\r\n]/g, '')), weight: 1 }),
      ),
      { maxLength: 2 },
    ),
  });
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'CONNECT'];

/** A request line, headers and body, well-formed HTTP but hostile content. */
function wellFormed(f: Fixture, opts: { hot?: boolean } = {}) {
  return fc
    .record({
      method: fc.oneof({ arbitrary: fc.constantFrom('GET', 'POST'), weight: 8 }, { arbitrary: fc.constantFrom(...METHODS), weight: 2 }),
      prefix: opts.hot ? fc.constant('/trpc/') : fc.oneof(
        { arbitrary: fc.constant('/trpc/'), weight: 12 },
        { arbitrary: fc.constantFrom('/trpc', '/', '//trpc/', '/trpc//', '/TRPC/', '/trpc/./', '/trpc/../', '/healthz', '/readyz', '/metrics', '/healthz?x', '/v1/', '/%2e%2e/'), weight: 2 },
      ),
      path: opts.hot ? fc.oneof({ arbitrary: fc.constantFrom(...HOT), weight: 9 }, { arbitrary: procedurePath, weight: 1 }) : procedurePath,
      query: query(f),
      contentType,
      headers: headerSets(f),
      body: fc.oneof(
        { arbitrary: fc.oneof(jsonText, plausible(f)), weight: 120 },
        { arbitrary: fc.constant(undefined), weight: 40 },
        { arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), weight: 20 },
        { arbitrary: fc.constantFrom(1_100_000, 3_000_000).map((n) => `{"json":{"pad":"${'y'.repeat(n)}"}}`), weight: 1 },
      ),
      framing: fc.oneof(
        { arbitrary: fc.constant('length' as const), weight: 8 },
        { arbitrary: fc.constantFrom('chunked' as const, 'truncated' as const, 'both' as const, 'bad-chunks' as const, 'double-length' as const, 'short-length' as const), weight: 2 },
      ),
    })
    .map((r): Probe => {
      const isPost = r.method !== 'GET' && r.method !== 'HEAD';
      const body = isPost && r.body !== undefined ? (Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body)) : undefined;
      const h: Array<[string, string]> = [];
      const add = (k: string, v: string | undefined) => v !== undefined && h.push([k, v]);
      add('host', r.headers.host);
      add('content-type', r.contentType);
      add('x-user-id', r.headers.userId);
      add('x-queue-token', r.headers.queueToken);
      add('authorization', r.headers.authorization);
      add('x-admin-key', r.headers.adminKey);
      add('accept', r.headers.accept);
      add('trpc-accept', r.headers.trpcAccept);
      add('x-request-id', r.headers.requestId);
      add('origin', r.headers.origin);
      for (const [k, v] of r.headers.extra) add(k, v);
      h.push(['connection', 'close']);
      let payload = body ?? Buffer.alloc(0);
      let hangsUp = false;
      if (body) {
        switch (r.framing) {
          case 'length':
            h.push(['content-length', String(body.length)]);
            break;
          case 'chunked':
            h.push(['transfer-encoding', 'chunked']);
            payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
            break;
          case 'bad-chunks':
            h.push(['transfer-encoding', 'chunked']);
            payload = Buffer.concat([Buffer.from('zz\r\n'), body, Buffer.from('\r\n0\r\n\r\n')]);
            break;
          case 'both':
            h.push(['transfer-encoding', 'chunked'], ['content-length', String(body.length)]);
            payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
            break;
          case 'double-length':
            h.push(['content-length', String(body.length)], ['content-length', String(body.length + 1)]);
            break;
          case 'short-length':
            // Declares less than it sends: the rest reads as a second, garbage request.
            h.push(['content-length', String(Math.floor(body.length / 2))]);
            break;
          case 'truncated':
            h.push(['content-length', String(body.length + 100)]);
            hangsUp = true;
            break;
        }
      }
      const head = `${r.method} ${r.prefix}${r.path}${r.query} HTTP/1.1\r\n${h.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
      return { kind: `${r.framing === 'length' ? '' : `${r.framing} `}${r.method} ${r.prefix}…`, bytes: Buffer.concat([Buffer.from(head, 'latin1'), payload]), ...(hangsUp ? { hangsUp } : {}) };
    });
}

/** Calls a client would make, so a share of the probes runs the services to the end. */
function validCalls(f: Fixture) {
  const get = (path: string, input: unknown) => ({ method: 'GET', target: `/trpc/${path}?input=${enc({ json: input })}`, body: undefined });
  const post = (path: string, input: unknown) => ({ method: 'POST', target: `/trpc/${path}`, body: JSON.stringify({ json: input }) });
  return fc
    .tuple(
      fc.oneof(
        { arbitrary: fc.constant(get('queue.status', {})), weight: 4 },
        { arbitrary: fc.constant(get('concerts.list', {})), weight: 2 },
        { arbitrary: fc.constant(get('concerts.get', { concertId: f.concertId })), weight: 1 },
        { arbitrary: fc.constant(get('concerts.seats', { scheduleId: f.scheduleId })), weight: 3 },
        { arbitrary: fc.constant(get('balance.get', {})), weight: 1 },
        { arbitrary: fc.constant(get('reservations.mine', {})), weight: 1 },
        { arbitrary: fc.constant(post('queue.enter', { concertId: f.concertId })), weight: 2 },
        { arbitrary: fc.integer({ min: 1, max: 50 }).map((seat) => post('reservations.hold', { scheduleId: f.scheduleId, seatNumbers: [seat], idempotencyKey: `robust-hold-${seat}` })), weight: 3 },
        { arbitrary: fc.uuid().map((reservationId) => post('payments.pay', { reservationId, idempotencyKey: `robust-pay-${reservationId}` })), weight: 1 },
        { arbitrary: fc.uuid().map((reservationId) => post('reservations.cancel', { reservationId })), weight: 1 },
        { arbitrary: fc.constantFrom(1_100_000, 3_000_000).map((n) => post('balance.charge', { amount: 1, idempotencyKey: 'robust-big', pad: 'y'.repeat(n) })), weight: 1 },
      ),
      fc.boolean(),
    )
    .map(([c, batched]): Probe => {
      const target = batched && c.method === 'GET' ? c.target.replace(/\/trpc\/([^?]+)\?input=(.*)$/, (_m, p: string, i: string) => `/trpc/${p}?batch=1&input=${enc(`{"0":${decodeURIComponent(i)}}`)}`) : c.target;
      const body = c.body === undefined ? '' : c.body;
      const head = [
        `${c.method} ${target} HTTP/1.1`,
        'host: localhost',
        `x-user-id: ${f.userId}`,
        `x-queue-token: ${f.queueToken}`,
        ...(c.body === undefined ? [] : ['content-type: application/json', `content-length: ${Buffer.byteLength(body)}`]),
        'connection: close',
      ];
      return { kind: `valid ${c.method} ${target.slice(0, 40)}`, bytes: Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`) };
    });
}

/** What is not HTTP at all, or breaks its grammar. */
const malformed = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => ({ kind: 'random bytes', bytes: Buffer.concat([Buffer.from(b), Buffer.from('\r\n\r\n')]) })),
  fc
    .constantFrom(
      'GET /trpc/queue.status HTTP/9.9\r\nhost: x\r\n\r\n',
      'GET /trpc/queue.status HTTP/2.0\r\nhost: x\r\n\r\n',
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
      'get /trpc/queue.status HTTP/1.1\r\nhost: x\r\n\r\n',
      'G ET /trpc/queue.status HTTP/1.1\r\nhost: x\r\n\r\n',
      'GET /trpc/queue status HTTP/1.1\r\nhost: x\r\n\r\n',
      'GET /trpc/queue.status HTTP/1.1\r\nhost x\r\n\r\n',
      'GET /trpc/queue.status HTTP/1.1\r\n: x\r\n\r\n',
      'GET /trpc/queue.status HTTP/1.1\r\nho st: x\r\n\r\n',
      'GET /trpc/queue.status HTTP/1.1\r\nhost: x\r\n folded: y\r\n\r\n',
      'GET /trpc/queue.status HTTP/1.1\nhost: x\n\n',
      'GET /trpc/queue.status HTTP/1.1\rhost: x\r\r',
      'GET /trpc/queue.status HTTP/1.1\r\nhost: x\u0000y\r\n\r\n',
      'GET /trpc/queue.status\u0000 HTTP/1.1\r\nhost: x\r\n\r\n',
      'GET http://localhost/trpc/queue.status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
      'GET * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
      'OPTIONS * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
      'CONNECT localhost:443 HTTP/1.1\r\nhost: localhost:443\r\n\r\n',
      'GET /trpc/queue.status HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n',
      'GET /trpc/queue.status HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n',
      'POST /trpc/queue.enter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: -1\r\n\r\n{}',
      'POST /trpc/queue.enter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: abc\r\n\r\n{}',
      'POST /trpc/queue.enter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 99999999999999999999\r\n\r\n{}',
      'POST /trpc/queue.enter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
      'POST /trpc/queue.enter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: identity\r\n\r\n{}',
      'POST /trpc/queue.enter HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\n{}\r\n0\r\n\r\n',
      'GET /trpc/queue.status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\nGET /trpc/queue.status HTTP/1.1\r\n\r\n',
      'HTTP/1.1 200 OK\r\n\r\n',
    )
    .map((s) => ({ kind: `malformed: ${JSON.stringify(s.slice(0, 40))}`, bytes: Buffer.from(s, 'latin1') })),
  fc.constant({ kind: 'empty lines only', bytes: Buffer.from('\r\n\r\n'), incomplete: true }),
);

/** Headers past any sane size: one huge header, or thousands of small ones. */
const hugeHeaders = fc.oneof(
  fc.integer({ min: 17_000, max: 200_000 }).map((n) => ({ kind: 'one huge header', bytes: Buffer.from(`GET /trpc/queue.status HTTP/1.1\r\nhost: x\r\nx-big: ${'b'.repeat(n)}\r\nconnection: close\r\n\r\n`) })),
  fc.integer({ min: 2_000, max: 8_000 }).map((n) => ({
    kind: 'many headers',
    bytes: Buffer.from(`GET /trpc/queue.status HTTP/1.1\r\nhost: x\r\n${Array.from({ length: n }, (_, i) => `x-h${i}: v\r\n`).join('')}connection: close\r\n\r\n`),
  })),
  fc.integer({ min: 17_000, max: 100_000 }).map((n) => ({ kind: 'huge URL', bytes: Buffer.from(`GET /trpc/queue.status?input=${'a'.repeat(n)} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`) })),
);

export const SEED = 20261201;

/** `count` probes, always the same ones for the same fixture and count. */
export function probes(f: Fixture, count: number): Probe[] {
  return fc.sample(
    fc.oneof({ arbitrary: wellFormed(f), weight: 75 }, { arbitrary: validCalls(f), weight: 15 }, { arbitrary: malformed, weight: 8 }, { arbitrary: hugeHeaders, weight: 2 }),
    { seed: SEED, numRuns: count },
  );
}

/** Requests aimed at the fast path's procedures, hostile and plausible, for comparing it with tRPC's handler. */
export function hotProbes(f: Fixture, count: number): Probe[] {
  return fc.sample(fc.oneof({ arbitrary: wellFormed(f, { hot: true }), weight: 3 }, { arbitrary: validCalls(f), weight: 1 }), { seed: SEED + 1, numRuns: count });
}
