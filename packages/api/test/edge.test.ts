import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { createCore, loadConfig } from '@concert/core';
import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer } from '../src/server.ts';
import { guard } from '../src/edge.ts';
import { createMetrics } from '../src/metrics.ts';
import { admin, client, createTestDatabase, REDIS_URL, spawnApi, type SpawnedApi, type TestDatabase, testEnv, useApi } from '../../../test/harness.ts';
import { appCodesOf, httpText, parseResponse, rawRequest } from '../../../test/raw-http.ts';

/** The HTTP edge: what is answered before, around and instead of a procedure. */

/** TCP ports a process listens on (Linux: its socket inodes matched against /proc/net/tcp*). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`)
      .map((fd) => {
        try {
          return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
        } catch {
          return undefined;
        }
      })
      .filter(Boolean),
  );
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9])) ports.add(parseInt(f[1]!.split(':').pop()!, 16));
    }
  }
  return [...ports];
}

interface Answer {
  status: number;
  headers: Headers;
  appCode: string | undefined;
  body: string;
}

async function answer(res: Response): Promise<Answer> {
  const body = await res.text();
  let appCode: string | undefined;
  try {
    appCode = (JSON.parse(body) as { error?: { json?: { data?: { appCode?: string } } } }).error?.json?.data?.appCode;
  } catch {
    appCode = undefined;
  }
  return { status: res.status, headers: res.headers, appCode, body };
}

describe('a request handler that throws', () => {
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    server = http.createServer(
      guard((req) => {
        if (req.url === '/sync') throw new Error('a bug');
        if (req.url === '/uri') decodeURIComponent('%E0%A4%A');
        if (req.url === '/client') throw new TRPCError({ code: 'BAD_REQUEST', message: 'bad' });
        if (req.url === '/async') return Promise.reject(new Error('a later bug'));
        throw new Error('unreachable');
      }, undefined),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('answers 500 INTERNAL for a bug, 400 for a client error, and the server keeps serving', async () => {
    for (let round = 0; round < 3; round++) {
      expect(await answer(await fetch(`${url}/sync`))).toMatchObject({ status: 500, appCode: 'INTERNAL' });
      expect(await answer(await fetch(`${url}/async`))).toMatchObject({ status: 500, appCode: 'INTERNAL' });
      expect(await answer(await fetch(`${url}/uri`))).toMatchObject({ status: 400, appCode: 'INVALID_INPUT' });
      expect(await answer(await fetch(`${url}/client`))).toMatchObject({ status: 400, appCode: 'INVALID_INPUT' });
    }
    // The bug's message stays in the server.
    expect((await answer(await fetch(`${url}/sync`))).body).not.toContain('a bug');
  });
});

describe('building a server', () => {
  it('starts no background work (whoever runs the process starts it)', async () => {
    const db = await createTestDatabase();
    try {
      const core = await createCore(loadConfig(testEnv(db.url)));
      const start = vi.spyOn(core, 'startBackgroundWork');
      const server = createServer(core);
      createMetrics(core);
      expect(start).not.toHaveBeenCalled();
      server.close();
      await core.close();
    } finally {
      await db.drop();
    }
  });
});

describe('content types, preflights, unknown paths', () => {
  const ORIGIN = 'https://tickets.example.com';
  const suite = useApi({ CORS_ORIGINS: `${ORIGIN}, https://other.example.com` });

  it('a batch or a mutation with a wrong or missing content type is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const { url } = suite.api;
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', undefined]) {
      const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
      const batch = await answer(await fetch(`${url}/trpc/concerts.list,concerts.list?batch=1`, { method: 'POST', headers, body: contentType ? '{}' : new Uint8Array([123, 125]) }));
      expect({ contentType, status: batch.status, appCode: batch.appCode }).toEqual({ contentType, status: 415, appCode: 'UNSUPPORTED_MEDIA_TYPE' });
      const single = await answer(await fetch(`${url}/trpc/queue.enter`, { method: 'POST', headers: { 'x-user-id': '1', ...headers }, body: contentType ? '{}' : new Uint8Array([123, 125]) }));
      expect({ contentType, status: single.status, appCode: single.appCode }).toEqual({ contentType, status: 415, appCode: 'UNSUPPORTED_MEDIA_TYPE' });
    }
  });

  it('a CORS preflight from a listed origin is granted, from another is answered without a grant, and never reaches a procedure', async () => {
    const { url } = suite.api;
    const preflight = (origin: string) =>
      fetch(`${url}/trpc/reservations.hold`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-user-id, x-queue-token' } });
    const ok = await preflight(ORIGIN);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    for (const h of ['content-type', 'x-user-id', 'x-queue-token', 'authorization']) expect(ok.headers.get('access-control-allow-headers')).toContain(h);
    expect(ok.headers.get('vary')).toContain('Origin');
    const other = await preflight('https://evil.example.com');
    expect(other.status).toBe(204);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // The actual request carries the grant, and exposes the request id.
    const get = await fetch(`${url}/trpc/concerts.list`, { headers: { origin: ORIGIN } });
    expect(get.status).toBe(200);
    expect(get.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(get.headers.get('access-control-expose-headers')).toContain('x-request-id');
    const foreign = await fetch(`${url}/trpc/concerts.list`, { headers: { origin: 'https://evil.example.com' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    // A preflight of a REST path is granted too; an OPTIONS that is not one is REST's own (the
    // middleware took every OPTIONS for a preflight: 204 with no Allow, unknown paths included).
    const rest = await fetch(`${url}/v1/reservations`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
    expect([rest.status, rest.headers.get('access-control-allow-origin')]).toEqual([204, ORIGIN]);
    const plain = await fetch(`${url}/v1/concerts`, { method: 'OPTIONS' });
    expect([plain.status, plain.headers.get('allow')]).toEqual([204, 'GET, HEAD, OPTIONS']);
    expect((await fetch(`${url}/v1/nothing-here`, { method: 'OPTIONS' })).status).toBe(404);
  });

  // POST, DELETE, TRACE … /healthz answered 200 {"ok":true} (and /readyz ran its database and
  // queue checks for them): a wrong method is a 4xx with an appCode everywhere else (an outside
  // hostile review, fourth round).
  it('the probes answer GET and HEAD; another method is 405 with an appCode and Allow', async () => {
    const { url } = suite.api;
    const port = Number(new URL(url).port);
    for (const probe of ['/healthz', '/readyz', '/healthz?x=1']) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'TRACE']) {
        // Raw: fetch refuses to send TRACE.
        const r = await rawRequest(port, httpText(method, probe, method === 'TRACE' ? {} : { body: '{}' }));
        expect({ probe, method, status: r.status, appCodes: appCodesOf(r.body).appCodes, allow: r.headers.allow }).toEqual({ probe, method, status: 405, appCodes: ['INVALID_INPUT'], allow: 'GET, HEAD' });
      }
      expect((await fetch(`${url}${probe}`)).status).toBe(200);
      const head = await fetch(`${url}${probe}`, { method: 'HEAD' });
      expect([head.status, (await head.text()).length]).toEqual([200, 0]);
    }
  });

  // tRPC's handler answered every HEAD 204 with no body, an unknown procedure's included: a
  // monitor checking that a procedure exists with HEAD was told it did.
  it('HEAD on a tRPC path answers what GET would, without the body', async () => {
    const { url } = suite.api;
    const port = Number(new URL(url).port);
    for (const path of ['/trpc/nope', '/trpc/concerts.list', '/trpc/concerts.get?input=%7B%22json%22%3A%7B%22concertId%22%3A999999%7D%7D', '/trpc/reservations.hold']) {
      const get = await fetch(`${url}${path}`, { headers: { 'x-user-id': '1' } });
      const getBody = await get.text();
      // Raw, to see that no body follows the headers on the socket.
      const head = await rawRequest(port, httpText('HEAD', path, { headers: { 'x-user-id': '1' } }));
      // Content-Length may be left out of a HEAD answer (RFC 9110 §8.6); given, it is the GET's.
      const length = head.headers['content-length'];
      expect({ path, status: head.status, body: head.body, length }).toEqual({ path, status: get.status, body: '', length: length === undefined ? undefined : String(Buffer.byteLength(getBody)) });
      expect(get.status, path).not.toBe(204);
    }
  });

  it('unknown procedures and paths are 404 PROCEDURE_NOT_FOUND; /metrics is not on the public port', async () => {
    const { url } = suite.api;
    for (const path of ['/trpc/nope', '/trpc/queue.nope', '/trpc/queue', '/nowhere', '/metrics', '/', '/trpc']) {
      const r = await answer(await fetch(`${url}${path}`, { headers: { 'x-user-id': '1' } }));
      expect({ path, status: r.status, appCode: r.appCode }).toEqual({ path, status: 404, appCode: 'PROCEDURE_NOT_FOUND' });
    }
  });

  // Nothing decodes a content coding here: a gzipped body was parsed as JSON and answered 400 with
  // its binary bytes quoted in the message ("Unexpected token '\u001f'…"), where RFC 9110 asks for
  // 415 (an outside hostile review, fourth round).
  it('a body with a Content-Encoding is 415 UNSUPPORTED_MEDIA_TYPE on tRPC, its fast path and REST', async () => {
    const { url } = suite.api;
    const { userId } = await admin(url).admin.users.create.mutate({ name: 'encoded', initialBalance: 0 });
    const user = String(userId);
    const post = (path: string, body: string, encoding: string | undefined, extra: Record<string, string> = {}) => {
      const bytes = encoding === 'gzip' ? gzipSync(body) : Buffer.from(body);
      return fetch(`${url}${path}`, { method: 'POST', headers: { 'x-user-id': user, 'content-type': 'application/json', ...(encoding ? { 'content-encoding': encoding } : {}), ...extra }, body: bytes });
    };
    const charge = (key: string) => JSON.stringify({ json: { amount: 1, idempotencyKey: key } });
    for (const encoding of ['gzip', 'deflate', 'br, gzip']) {
      const trpc = await answer(await post('/trpc/balance.charge', charge(`edge-encoded-${encoding.length}`), encoding));
      expect({ encoding, status: trpc.status, type: trpc.headers.get('content-type'), appCode: trpc.appCode }).toEqual({ encoding, status: 415, type: 'application/json', appCode: 'UNSUPPORTED_MEDIA_TYPE' });
      expect(trpc.body).not.toContain('\\u001f');
      const fast = await answer(await post('/trpc/queue.enter', JSON.stringify({ json: { concertId: 1 } }), encoding));
      expect({ encoding, status: fast.status, appCode: fast.appCode }).toEqual({ encoding, status: 415, appCode: 'UNSUPPORTED_MEDIA_TYPE' });
      const rest = await post('/v1/balance/charges', '{"amount":1}', encoding, { 'idempotency-key': `edge-encoded-rest-${encoding.length}` });
      const problem = (await rest.json()) as { appCode?: string };
      expect({ encoding, status: rest.status, type: rest.headers.get('content-type'), appCode: problem.appCode }).toEqual({ encoding, status: 415, type: 'application/problem+json', appCode: 'UNSUPPORTED_MEDIA_TYPE' });
    }
    // identity is no coding at all.
    expect((await post('/trpc/balance.charge', charge('edge-encoded-identity'), 'identity')).status).toBe(200);
    expect((await post('/v1/balance/charges', '{"amount":1}', 'identity', { 'idempotency-key': 'edge-encoded-identity-rest' })).status).toBe(201);
  });

  // JSON is UTF-8 (RFC 8259): a body declared charset=utf-16 was read as UTF-8 anyway and its text
  // came out garbled (an outside hostile review, fourth round). It is refused as a coding is.
  it('a body declaring a charset other than UTF-8 is 415 UNSUPPORTED_MEDIA_TYPE on tRPC, its fast path and REST', async () => {
    const { url } = suite.api;
    const { userId } = await admin(url).admin.users.create.mutate({ name: 'charset', initialBalance: 0 });
    const post = (path: string, body: string, type: string, extra: Record<string, string> = {}) => {
      const bytes = /utf-?16/i.test(type) ? Buffer.from(body, 'utf16le') : Buffer.from(body, 'latin1');
      return fetch(`${url}${path}`, { method: 'POST', headers: { 'x-user-id': String(userId), 'content-type': type, ...extra }, body: bytes });
    };
    const charge = (key: string) => JSON.stringify({ json: { amount: 1, idempotencyKey: key } });
    for (const type of ['application/json; charset=utf-16', 'application/json;charset="UTF-16LE"', 'application/json; charset=iso-8859-1', 'application/json; charset=']) {
      const trpc = await answer(await post('/trpc/balance.charge', charge(`edge-charset-${type.length}`), type));
      expect({ type, status: trpc.status, appCode: trpc.appCode }).toEqual({ type, status: 415, appCode: 'UNSUPPORTED_MEDIA_TYPE' });
      const fast = await answer(await post('/trpc/queue.enter', JSON.stringify({ json: { concertId: 1 } }), type));
      expect({ type, status: fast.status, appCode: fast.appCode }).toEqual({ type, status: 415, appCode: 'UNSUPPORTED_MEDIA_TYPE' });
      const rest = await post('/v1/balance/charges', '{"amount":1}', type, { 'idempotency-key': `edge-charset-rest-${type.length}` });
      const problem = (await rest.json()) as { appCode?: string };
      expect({ type, status: rest.status, appCode: problem.appCode }).toEqual({ type, status: 415, appCode: 'UNSUPPORTED_MEDIA_TYPE' });
    }
    // UTF-8 under any of its names, and US-ASCII (a subset of it), are read as they always were.
    for (const type of ['application/json; charset=utf-8', 'application/json; charset="UTF8"', 'application/json; charset=us-ascii']) {
      expect({ type, status: (await post('/trpc/balance.charge', charge(`edge-charset-ok-${type.length}`), type)).status }).toEqual({ type, status: 200 });
      expect({ type, status: (await post('/v1/balance/charges', '{"amount":1}', type, { 'idempotency-key': `edge-charset-ok-rest-${type.length}` })).status }).toEqual({ type, status: 201 });
    }
  });

  // `Transfer-Encoding: gzip, chunked`: Node takes the chunks off and leaves the gzip on, and the
  // compressed bytes were read as the JSON body: 400 INVALID_INPUT quoting them, where a coding
  // the server does not apply is refused as Content-Encoding is (an outside review of REST).
  it('a body with a transfer coding other than chunked is 415 UNSUPPORTED_MEDIA_TYPE on tRPC, its fast path and REST', async () => {
    const { url } = suite.api;
    const { userId } = await admin(url).admin.users.create.mutate({ name: 'transfer-coded', initialBalance: 0 });
    const port = Number(new URL(url).port);
    const send = async (target: string, body: string, extra: Record<string, string> = {}) => {
      const zipped = gzipSync(body);
      const chunked = Buffer.concat([Buffer.from(`${zipped.length.toString(16)}\r\n`), zipped, Buffer.from('\r\n0\r\n\r\n')]);
      const headers = { 'x-user-id': String(userId), 'content-type': 'application/json', 'transfer-encoding': 'gzip, chunked', ...extra };
      return rawRequest(port, [httpText('POST', target, { headers }), chunked]);
    };
    for (const [target, body, extra, type] of [
      ['/trpc/balance.charge', JSON.stringify({ json: { amount: 1, idempotencyKey: 'edge-transfer-coded' } }), {}, 'application/json'],
      ['/trpc/queue.enter', JSON.stringify({ json: { concertId: 1 } }), {}, 'application/json'],
      ['/v1/balance/charges', '{"amount":1}', { 'idempotency-key': 'edge-transfer-coded-rest' }, 'application/problem+json'],
    ] as const) {
      const r = await send(target, body, extra);
      expect({ target, status: r.status, type: r.headers['content-type'], appCodes: appCodesOf(r.body).appCodes }).toEqual({ target, status: 415, type, appCodes: ['UNSUPPORTED_MEDIA_TYPE'] });
    }
  });

  // Node's parser refuses a body cut short or a broken chunk after the request's handler has
  // started; the edge answered every such refusal in tRPC's envelope, so a REST client got
  // application/json with no top-level appCode (an outside hostile review, fourth round).
  it('a body the parser refuses is answered in the shape of the surface it was sent to', async () => {
    const { url } = suite.api;
    const { userId } = await admin(url).admin.users.create.mutate({ name: 'broken-body', initialBalance: 0 });
    const port = Number(new URL(url).port);
    const headers = { 'x-user-id': String(userId), 'idempotency-key': 'edge-broken-body', 'content-type': 'application/json' };
    const truncated = (target: string) => [httpText('POST', target, { headers: { ...headers, 'content-length': '100' } }), Buffer.from('{"amount":')];
    const brokenChunk = (target: string) => [httpText('POST', target, { headers: { ...headers, 'transfer-encoding': 'chunked' } }), Buffer.from('5\r\n{"amo\r\nzz\r\n')];
    for (const bytes of [truncated, brokenChunk]) {
      for (const [target, type] of [['/v1/balance/charges', 'application/problem+json'], ['/trpc/balance.charge', 'application/json']] as const) {
        // The FIN after a cut body is what makes the parser refuse it.
        const r = await new Promise<Buffer>((resolve) => {
          const chunks: Buffer[] = [];
          const socket = net.connect(port, '127.0.0.1', () => socket.end(Buffer.concat(bytes(target))));
          socket.on('data', (d) => chunks.push(d));
          socket.on('error', () => {});
          socket.on('close', () => resolve(Buffer.concat(chunks)));
        });
        const answer = parseResponse(r, true);
        expect({ target, status: answer?.status, type: answer?.headers['content-type'], appCodes: appCodesOf(answer?.body ?? '').appCodes }).toEqual({ target, status: 400, type, appCodes: ['INVALID_INPUT'] });
      }
    }
  });

  // A balancer reuses its connection as soon as it has read an answer and sent the whole request
  // it answered. A request the parser refused right after one answered before its body had all
  // come (an unknown procedure, a caller without identity), or after one whose answer Node had
  // not yet flushed, was taken for a part of the one answered, and the connection was cut without
  // a word: nginx answered its client 502 (our 503 "No API process is answering"), one probe in
  // about four runs of the robustness suite through nginx, and once in CI. With a request before
  // it still to be answered (a pipelining client), a 400 would be taken for that one's answer (a
  // review found the 400 written in place of /readyz's answer, and ahead of a 417 on the public
  // port or a 404 on the metrics port), so the connection was cut without a word; but those
  // requests had run, and a charge followed by garbage in one packet was made with its answer
  // lost (an outside hostile review, 2026-12-05): the 400 now follows their answers.
  it('a malformed request is answered 400 once every request before it on the connection is answered', async () => {
    const port = Number(new URL(suite.api.url).port);
    const { userId } = await admin(suite.api.url).admin.users.create.mutate({ name: 'pipelined-charge', initialBalance: 0 });
    const charge = (key: string) =>
      `POST /v1/balance/charges HTTP/1.1\r\nhost: x\r\nx-user-id: ${userId}\r\nidempotency-key: ${key}\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"amount":1234}`;
    const bad = 'GET /trpc/concerts.list HTTP/1.1\r\nhost: x\r\nx-bad: a\u0010b\r\n\r\n';
    // Answered before its body came (19 bytes: the second write begins with the rest of it).
    const early = 'POST /trpc/nope.nope HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n{"json":';
    const healthz = 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n';
    const cases: Array<[string, string[], number[]]> = [
      // Answered at once, its answer not yet flushed when the next request is read (one write).
      ['after an answer not yet flushed', [`${healthz}${bad}`], [200, 400]],
      // The rest of the body answered early and the next request come together.
      ['after an answer given before its body came', [early, `{"a":12345}${bad}`], [404, 400]],
      ['after that and another answered at once', [early, `{"a":12345}${healthz}${bad}`], [404, 200, 400]],
      // Requests before it still to be answered: an async read, a refused Expect queued behind an answer.
      ['behind a request still being answered', [`GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n${bad}`], [200, 400]],
      ['behind an answer and a request still being answered', [`${healthz}GET /trpc/concerts.list HTTP/1.1\r\nhost: x\r\n\r\n${bad}`], [200, 200, 400]],
      ['behind an answer and a refused Expect', [`${healthz}GET /healthz HTTP/1.1\r\nhost: x\r\nexpect: foo\r\n\r\n${bad}`], [200, 417, 400]],
      // A write still being answered, followed by bytes that are not HTTP, in one packet.
      ['behind a charge still being answered', [`${charge('edge-pipelined-charge')}GARBAGE\r\n\r\n`], [201, 400]],
      ['behind two charges still being answered', [`${charge('edge-pipelined-1')}${charge('edge-pipelined-2')}GARBAGE\r\n\r\n`], [201, 201, 400]],
      // Bytes after a request that asked to close are nobody's request: that request is answered.
      ['after a request that asked to close', [`GET /trpc/concerts.list HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n${bad}`], [200]],
    ];
    const answered: Array<{ when: string; statuses: number[]; refused: string[] }> = [];
    for (const [when, writes] of cases) {
      const text = await new Promise<string>((resolve) => {
        let got = '';
        const rest = [...writes];
        const socket = net.connect(port, '127.0.0.1', () => socket.write(rest.shift()!, 'latin1'));
        socket.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          // The next write once the first answer has come.
          if (rest.length && /\r\n\r\n/.test(got)) socket.write(rest.shift()!, 'latin1');
        });
        socket.on('error', () => {});
        socket.on('close', () => resolve(got));
      });
      // An answer's body ends without a line break: the next status line follows on its line.
      const seen = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      const last = parseResponse(Buffer.from(text.slice(text.lastIndexOf('HTTP/1.1 ')), 'latin1'), true);
      answered.push({ when, statuses: seen, refused: seen.at(-1) === 400 ? appCodesOf(last?.body ?? '').appCodes : [] });
    }
    expect(answered).toEqual(cases.map(([when, , statuses]) => ({ when, statuses, refused: statuses.at(-1) === 400 ? ['INVALID_INPUT'] : [] })));
    // Each charge was made once, and its answer came.
    expect((await client(suite.api.url, { userId }).balance.get.query()).balance).toBe(3 * 1234);
  });

  // tRPC answers what it refuses before choosing a procedure with its JSON envelope in a Response
  // that has no content type, so the answer said text/plain;charset=UTF-8 (an outside hostile
  // review, fourth round).
  it('what tRPC refuses before any procedure runs is application/json, as every other answer', async () => {
    const { url } = suite.api;
    const refusals: Array<[string, string, RequestInit, number, string]> = [
      ['a path that is not percent-encoding', '/trpc/%', {}, 400, 'INVALID_INPUT'],
      ['a mutation without a content type', '/trpc/balance.charge', { method: 'POST', body: new Uint8Array([123, 125]) }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['a mutation as text/plain', '/trpc/balance.charge', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['a batch over 50 calls', `/trpc/${Array(51).fill('concerts.list').join(',')}?batch=1&input={}`, {}, 400, 'INVALID_INPUT'],
      ['a batch of a query and a mutation', '/trpc/concerts.list,queue.enter?batch=1&input={}', {}, 400, 'INVALID_INPUT'],
      ['a streaming call that is not a batch', '/trpc/concerts.list', { headers: { 'trpc-accept': 'application/jsonl' } }, 400, 'INVALID_INPUT'],
      ['connection params that are not JSON', '/trpc/concerts.list?connectionParams=1', {}, 400, 'INVALID_INPUT'],
    ];
    for (const [what, path, init, status, appCode] of refusals) {
      const r = await answer(await fetch(`${url}${path}`, { ...init, headers: { 'x-user-id': '1', ...(init.headers as Record<string, string>) } }));
      expect({ what, status: r.status, type: r.headers.get('content-type'), appCode: r.appCode }).toEqual({ what, status, type: 'application/json', appCode });
    }
  });

  // Node answers an Expect other than 100-continue itself: a 417 with an empty body, no appCode
  // (an outside hostile review, third round).
  it('an Expect other than 100-continue is 417 with an appCode; 100-continue is served', async () => {
    const port = Number(new URL(suite.api.url).port);
    const body = JSON.stringify({ json: { amount: 1, idempotencyKey: 'edge-expect-1' } });
    for (const [method, target] of [['GET', '/trpc/concerts.list'], ['POST', '/trpc/balance.charge'], ['POST', '/v1/balance/charges']] as const) {
      const r = await rawRequest(port, httpText(method, target, { headers: { 'x-user-id': '1', 'content-type': 'application/json', expect: 'bogus' }, ...(method === 'POST' ? { body } : {}) }));
      // REST answers in its own shape (hostile.more.test.ts).
      const type = target.startsWith('/v1/') ? 'application/problem+json' : 'application/json';
      expect({ target, status: r.status, type: r.headers['content-type'], appCodes: appCodesOf(r.body).appCodes }).toEqual({ target, status: 417, type, appCodes: ['INVALID_INPUT'] });
    }
    const r = await rawRequest(port, httpText('GET', '/trpc/concerts.list', { headers: { expect: '100-continue' } }));
    expect(r.status).toBe(200);
  });
});

// The inactivity limit (server.timeout, set to the request timeout) raced the request timeout's
// own check, which runs every connectionsCheckingInterval: a client that sent its headers and
// part of its body, then nothing, was mostly cut without a word instead of answered 408 (an
// outside hostile review, fourth round).
describe('a request whose body stops arriving', () => {
  const suite = useApi({ HTTP_HEADERS_TIMEOUT_SECONDS: '1', HTTP_REQUEST_TIMEOUT_SECONDS: '2' });

  it('is answered 408 with an appCode in its surface\'s shape, not cut silently', { timeout: 60_000 }, async () => {
    const { url } = suite.api;
    const { userId } = await admin(url).admin.users.create.mutate({ name: 'stalled', initialBalance: 0 });
    const port = Number(new URL(url).port);
    const headers = { 'x-user-id': String(userId), 'idempotency-key': 'edge-stalled', 'content-type': 'application/json', 'content-length': '100', connection: 'keep-alive' };
    const stalled = await Promise.all(
      Array.from({ length: 6 }, (_, i) => {
        const [target, type] = i % 2 ? ['/trpc/balance.charge', 'application/json'] : ['/v1/balance/charges', 'application/problem+json'];
        // Headers and 10 bytes of the body in one write, then silence (no FIN).
        return rawRequest(port, Buffer.concat([httpText('POST', target, { headers }), Buffer.from('{"amount":')]), { timeoutMs: 15_000 }).then((r) => ({ target, type, r }));
      }),
    );
    for (const { target, type, r } of stalled) {
      expect({ target, status: r.status, type: r.headers['content-type'], appCodes: appCodesOf(r.body).appCodes }).toEqual({ target, status: 408, type, appCodes: ['INVALID_INPUT'] });
      expect(r.ms).toBeLessThan(10_000);
    }
  });

  // tRPC's handler answers an unknown procedure, or a caller without identity, before the body has
  // come; when the rest never came, the request timeout then wrote a second answer (408) on the
  // connection, which a client reusing it would take for the answer to its next request (an
  // outside hostile review, raw sockets). REST and the fast path answered once.
  it('already answered, is not answered again when the rest of its body never comes', { timeout: 60_000 }, async () => {
    const port = Number(new URL(suite.api.url).port);
    const cases: Array<[string, Record<string, string>, number]> = [
      ['/trpc/nope.nope', {}, 404],
      ['/trpc/balance.charge', {}, 401],
      ['/trpc/balance.charge?batch=1', {}, 401],
      ['/trpc/queue.enter', {}, 401],
      ['/v1/balance/charges', {}, 401],
      ['/v1/nope', {}, 404],
    ];
    const seen = await Promise.all(
      cases.map(async ([target, extra]) => {
        const headers = { 'content-type': 'application/json', 'content-length': '100', connection: 'keep-alive', ...extra };
        const socket = net.connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('error', () => {});
        socket.write(Buffer.concat([httpText('POST', target, { headers }), Buffer.from('{"json":')]));
        // Past the request timeout (2 s) and its check (1 s), until the server lets the connection go.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 8_000);
          socket.on('close', () => (clearTimeout(timer), resolve()));
        });
        socket.destroy();
        return { target, statuses: [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1])) };
      }),
    );
    expect(seen).toEqual(cases.map(([target, , status]) => ({ target, statuses: [status] })));
  });
});

/**
 * Everything that came back on one connection to `bytes` and a body that keeps coming (64 KiB
 * every 50 ms, in chunks when `chunked`) until the server closes it or `forMs` pass.
 */
function oversized(port: number, head: Buffer, chunked: boolean, forMs: number): Promise<{ text: string; closedAfterMs: number | undefined }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const piece = Buffer.alloc(64 * 1024, 'x');
    const frame = chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
    const timer = setInterval(() => socket.writable && socket.write(frame), 50);
    const end = (closedAfterMs: number | undefined) => {
      clearInterval(timer);
      clearTimeout(stop);
      socket.destroy();
      resolve({ text, closedAfterMs });
    };
    const stop = setTimeout(() => end(undefined), forMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => end(performance.now() - started));
    socket.write(head);
  });
}

// /v1 refused a body over the limit at once and closed the connection; /trpc (tRPC's handler and
// its fast path) waited for a declared one to arrive, and after its 413 kept the connection and
// read on for the request timeout, then wrote a second, unasked-for answer (408) on it (an outside
// hostile review, raw sockets). Answering a declared one at once and closing was no better: a
// client still sending its body met a reset and lost the answer (EPIPE, 2 of the robustness
// suite's 2,000 probes). A declared body is now read and dropped, then answered (at most 2 s or
// 8 MiB of it); what comes after an answer is read for at most 2 s, then the connection is cut.
describe('a body over the 1 MiB limit', () => {
  const suite = useApi({ HTTP_REQUEST_TIMEOUT_SECONDS: '10' });

  it('is answered 413 PAYLOAD_TOO_LARGE once, and a body that keeps coming is cut within seconds, on every surface', { timeout: 90_000 }, async () => {
    const { url } = suite.api;
    const { userId } = await admin(url).admin.users.create.mutate({ name: 'oversized', initialBalance: 0 });
    const port = Number(new URL(url).port);
    const targets = ['/trpc/balance.charge', '/trpc/balance.charge?batch=1', '/trpc/queue.enter', '/v1/balance/charges'];
    const headers = { 'x-user-id': String(userId), 'idempotency-key': 'edge-oversized', 'content-type': 'application/json', connection: 'keep-alive' };
    for (const target of targets) {
      for (const chunked of [false, true]) {
        const length: Record<string, string> = chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(100 * 1024 * 1024) };
        const head = httpText('POST', target, { headers: { ...headers, ...length } });
        const { text, closedAfterMs } = await oversized(port, head, chunked, 8_000);
        const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
        const answer = parseResponse(Buffer.from(text, 'latin1'), true);
        const seen = { target, chunked, statuses, appCodes: appCodesOf(answer?.body ?? '').appCodes, closed: closedAfterMs !== undefined && closedAfterMs < 6_000 };
        expect(seen).toEqual({ target, chunked, statuses: [413], appCodes: ['PAYLOAD_TOO_LARGE'], closed: true });
      }
    }
    // A declared length over the limit whose body never comes is refused within seconds (it was
    // answered only at the request timeout on /trpc).
    for (const target of targets) {
      const r = await rawRequest(port, httpText('POST', target, { headers: { ...headers, 'content-length': String(2 * 1024 * 1024) } }), { timeoutMs: 5_000 });
      expect({ target, status: r.status, appCodes: appCodesOf(r.body).appCodes }).toEqual({ target, status: 413, appCodes: ['PAYLOAD_TOO_LARGE'] });
    }
    // Clients that send their whole body (3 MB, 20 at once) get the answer, not a reset.
    const body = JSON.stringify({ amount: 1, idempotencyKey: 'edge-oversized', pad: 'y'.repeat(3_000_000) });
    for (const target of targets) {
      const request = httpText('POST', target, { headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, body });
      const answers = await Promise.all(Array.from({ length: 20 }, () => rawRequest(port, request, { timeoutMs: 10_000 })));
      const seen = answers.map((r) => `${r.status} ${r.error ?? ''} ${appCodesOf(r.body).appCodes.join()}`);
      expect({ target, seen }).toEqual({ target, seen: answers.map(() => '413  PAYLOAD_TOO_LARGE') });
    }
    // An answer given before any of the body is needed (a wrong method, a path that does not
    // exist, no identity) stopped nothing: the rest of an endless chunked body was read for as long
    // as it came (an outside hostile review). It is now cut within seconds there too.
    for (const target of ['/healthz', '/v1/nope', '/trpc/nope.nope', '/v1/balance/charges']) {
      const head = httpText('POST', target, { headers: { 'content-type': 'application/json', connection: 'keep-alive', 'transfer-encoding': 'chunked' } });
      const { text, closedAfterMs } = await oversized(port, head, true, 8_000);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      expect({ target, status: status >= 400 && status < 500, closed: closedAfterMs !== undefined && closedAfterMs < 6_000 }).toEqual({ target, status: true, closed: true });
    }
    // The process serves on.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});

describe('CORS when no origin is listed', () => {
  const suite = useApi();
  it('grants nothing, and still answers a preflight 204 instead of 415', async () => {
    const r = await fetch(`${suite.api.url}/trpc/queue.status`, { method: 'OPTIONS', headers: { origin: 'https://a.example.com', 'access-control-request-method': 'GET' } });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    expect(r.headers.get('allow')).toContain('GET');
  });
});

describe('metrics', () => {
  let db: TestDatabase;
  let api: SpawnedApi;
  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnApi(testEnv(db.url));
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('are served on METRICS_PORT only, with process metrics named once', async () => {
    const scrape = await fetch(`${api.metricsUrl}/metrics`);
    expect(scrape.status).toBe(200);
    const text = await scrape.text();
    expect(text).toMatch(/^concert_process_cpu_user_seconds_total /m);
    expect(text).not.toContain('process_process');
    const pub = await answer(await fetch(`${api.url}/metrics`));
    expect(pub).toMatchObject({ status: 404, appCode: 'PROCEDURE_NOT_FOUND' });
    expect(pub.body).not.toContain('concert_');
    // Anything else on the metrics port is not found either.
    expect((await answer(await fetch(`${api.metricsUrl}/trpc/concerts.list`))).status).toBe(404);
    expect(listeningPorts(api.child.pid!).sort()).toEqual([Number(new URL(api.url).port), Number(new URL(api.metricsUrl).port)].sort());
  });

  // A scrape with a query string (Prometheus' `params:`, a cache-buster) and a HEAD were 404
  // "metrics are at GET /metrics" (an outside hostile review, fourth round).
  it('answer a scrape with a query string, and HEAD without the body', async () => {
    const scrape = await fetch(`${api.metricsUrl}/metrics?format=prometheus&_=1`);
    expect([scrape.status, scrape.headers.get('content-type')?.split(';')[0]]).toEqual([200, 'text/plain']);
    expect(await scrape.text()).toMatch(/^concert_process_cpu_user_seconds_total /m);
    const head = await fetch(`${api.metricsUrl}/metrics`, { method: 'HEAD' });
    expect([head.status, (await head.text()).length]).toEqual([200, 0]);
    expect((await answer(await fetch(`${api.metricsUrl}/metricsx?x`))).status).toBe(404);
  });

  it('are not served at all without METRICS_PORT', async () => {
    const without = await spawnApi(testEnv(db.url, { METRICS_PORT: '' }));
    try {
      expect((await answer(await fetch(`${without.url}/metrics`))).status).toBe(404);
      expect(listeningPorts(without.child.pid!)).toEqual([Number(new URL(without.url).port)]);
    } finally {
      await without.stop();
    }
  });

  it('a scrape reads the lines once, not once per gauge', async () => {
    const core = await createCore(loadConfig(testEnv(db.url, { REDIS_URL, REDIS_KEY_PREFIX: `edgemetrics${process.pid}:` })));
    try {
      const read = vi.spyOn(core.queue, 'allStats');
      const metrics = createMetrics(core);
      const text = await metrics.render();
      expect(text).toMatch(/^# TYPE concert_queue_waiting gauge/m);
      expect(read).toHaveBeenCalledTimes(1);
      await metrics.render();
      expect(read).toHaveBeenCalledTimes(2);
    } finally {
      await core.close();
    }
  });
});
