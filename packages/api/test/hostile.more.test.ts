import { describe, expect, it } from 'vitest';
import { useApi } from '../../../test/harness.ts';
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
