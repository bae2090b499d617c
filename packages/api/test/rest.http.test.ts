import { describe, expect, it } from 'vitest';
import { useApi } from '../../../test/harness.ts';
import { rawRequest } from '../../../test/raw-http.ts';

/**
 * REST /v1 at the HTTP level: requests a plain HTTP client may send that fetch never does (an
 * outside review of the REST surface, 2026-12-03). Every answer on /v1 is the contract's shape.
 */

const port = (url: string) => Number(new URL(url).port);

describe('REST /v1 over raw HTTP/1.1', () => {
  const suite = useApi();

  // An HTTP/1.1 request without Host was refused with tRPC's JSON envelope on /v1 too, where every
  // error is application/problem+json with its appCode (README, Decisions: Errors).
  it('refuses an HTTP/1.1 request without Host as problem+json on /v1 (400 INVALID_INPUT)', async () => {
    for (const target of ['/v1/concerts', '/v1/balance', '/docs']) {
      const r = await rawRequest(port(suite.api.url), `GET ${target} HTTP/1.1\r\nconnection: close\r\n\r\n`);
      expect({ target, status: r.status, type: r.headers['content-type'] }).toEqual({ target, status: 400, type: 'application/problem+json' });
      expect(JSON.parse(r.body)).toMatchObject({ type: 'urn:concert:problem:INVALID_INPUT', status: 400, appCode: 'INVALID_INPUT' });
    }
    // /trpc keeps its envelope.
    const trpc = await rawRequest(port(suite.api.url), 'GET /trpc/concerts.list HTTP/1.1\r\nconnection: close\r\n\r\n');
    expect([trpc.status, trpc.headers['content-type']]).toEqual([400, 'application/json']);
  });

  // RFC 9112, 3.2.2: "a server MUST accept the absolute-form in requests". GET
  // http://host/v1/concerts answered 404 PROCEDURE_NOT_FOUND in tRPC's envelope.
  it('serves a request-target in absolute form as its origin form', async () => {
    const base = suite.api.url;
    const list = await rawRequest(port(base), `GET ${base}/v1/concerts?limit=1 HTTP/1.1\r\nhost: ${new URL(base).host}\r\nconnection: close\r\n\r\n`);
    expect([list.status, list.headers['content-type']]).toEqual([200, 'application/json']);
    expect(JSON.parse(list.body)).toMatchObject({ items: expect.any(Array) });
    const missing = await rawRequest(port(base), `GET ${base}/v1/concerts/99999 HTTP/1.1\r\nhost: ${new URL(base).host}\r\nconnection: close\r\n\r\n`);
    expect([missing.status, missing.headers['content-type'], JSON.parse(missing.body).appCode]).toEqual([404, 'application/problem+json', 'CONCERT_NOT_FOUND']);
    const health = await rawRequest(port(base), `GET ${base.toUpperCase().replace('HTTP://', 'http://')}/healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
    expect(health.status).toBe(200);
  });

  // Found by an outside review of the REST surface (2026-12-05), each failing before its fix.
  it('answers CONNECT on /v1 as problem+json with Allow, and /trpc in its envelope', async () => {
    const p = port(suite.api.url);
    const rest = await rawRequest(p, 'CONNECT /v1/concerts HTTP/1.1\r\nhost: x\r\n\r\n');
    expect([rest.status, rest.headers['content-type'], rest.headers.allow]).toEqual([405, 'application/problem+json', 'GET, HEAD, POST, DELETE, OPTIONS']);
    expect(JSON.parse(rest.body)).toMatchObject({ status: 405 });
    const trpc = await rawRequest(p, 'CONNECT /trpc/concerts.list HTTP/1.1\r\nhost: x\r\n\r\n');
    expect([trpc.status, trpc.headers['content-type']]).toEqual([405, 'application/json']);
  });

  it('serves the OpenAPI document with a trailing slash, names its methods in Allow, and grants its preflight to any origin', async () => {
    const base = suite.api.url;
    const slash = await fetch(`${base}/v1/openapi.json/`);
    expect([slash.status, ((await slash.json()) as { openapi: string }).openapi]).toEqual([200, '3.1.0']);
    const post = await fetch(`${base}/v1/openapi.json`, { method: 'POST' });
    expect([post.status, post.headers.get('content-type'), post.headers.get('allow')]).toEqual([404, 'application/problem+json', 'GET, HEAD, OPTIONS']);
    const preflight = await fetch(`${base}/v1/openapi.json`, {
      method: 'OPTIONS',
      headers: { origin: 'https://explorer.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-request-id' },
    });
    expect([preflight.status, preflight.headers.get('access-control-allow-origin'), preflight.headers.get('access-control-allow-headers')]).toEqual([204, '*', 'x-request-id']);
    // Every other path's preflight is still the configured policy's: no origin is granted here.
    const other = await fetch(`${base}/v1/concerts`, { method: 'OPTIONS', headers: { origin: 'https://explorer.example', 'access-control-request-method': 'GET' } });
    expect([other.status, other.headers.get('access-control-allow-origin')]).toEqual([204, null]);
  });
});
