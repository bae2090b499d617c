import { describe, expect, it } from 'vitest';
import { useApi } from '../../../test/harness.ts';
import { appCodesOf, httpText, rawRequest } from '../../../test/raw-http.ts';

/**
 * Claims of the README checked from outside. "Errors" in Decisions: a wrong method on /trpc is
 * 405 INVALID_INPUT. PUT, PATCH and DELETE without a content type used to reach tRPC's handler,
 * which answered 415 UNSUPPORTED_MEDIA_TYPE ("Missing content-type header"): the client was told
 * to fix a header when the method was what was wrong.
 */
describe('README claims, from outside', () => {
  const suite = useApi();

  it('a method tRPC does not take is 405 INVALID_INPUT with Allow, whatever the content type', async () => {
    const port = Number(new URL(suite.api.url).port);
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      for (const headers of [{}, { 'content-type': 'application/json' }, { 'content-type': 'text/plain' }] as Record<string, string>[]) {
        for (const path of ['/trpc/concerts.list', '/trpc/balance.charge']) {
          const r = await rawRequest(port, httpText(method, path, { headers: { ...headers, 'x-user-id': '1' }, body: '{}' }));
          expect({ method, path, headers, status: r.status, appCodes: appCodesOf(r.body).appCodes, allow: r.headers.allow }).toEqual({
            method,
            path,
            headers,
            status: 405,
            appCodes: ['INVALID_INPUT'],
            allow: 'GET, POST',
          });
        }
      }
    }
    // The methods it does take are unchanged.
    expect((await fetch(`${suite.api.url}/trpc/concerts.list`)).status).toBe(200);
    expect((await fetch(`${suite.api.url}/trpc/concerts.list`, { method: 'HEAD' })).status).toBeLessThan(500);
  });
});
