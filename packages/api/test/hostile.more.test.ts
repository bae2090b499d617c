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
});
