import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { APP_CODES } from '@concert/core';
import { APP_CODE_MEANING, type Auth, ENTRIES } from '../../../scripts/api-reference.entries.ts';
import { procedureDefs, REFERENCE_FILE, renderReference } from '../../../scripts/api-reference.ts';
import { admin, client, outcome, useApi } from '../../../test/harness.ts';

/**
 * docs/API.md is the project's API reference. It is generated from the routers, and this suite
 * keeps it honest: the committed file is what the code renders today, every procedure has an
 * entry (and nothing else does), every example is a valid input, and the documented auth and
 * errors are what a running server answers.
 */
describe('docs/API.md, the API reference', () => {
  const defs = procedureDefs();

  it('is what the routers render today (run `pnpm docs:api` after changing a procedure)', () => {
    const committed = readFileSync(REFERENCE_FILE, 'utf8');
    const rendered = renderReference();
    // A line-level diff in the failure message is more useful than two 1,000-line strings.
    const a = committed.split('\n');
    const b = rendered.split('\n');
    const firstDiff = b.findIndex((line, n) => line !== a[n]);
    expect(firstDiff === -1 && a.length === b.length ? 'same' : `differs from line ${firstDiff + 1}: committed ${JSON.stringify(a[firstDiff])}, rendered ${JSON.stringify(b[firstDiff])}`).toBe('same');
  }, 120_000);

  it('has one entry per procedure, and every appCode in its error table', () => {
    expect(Object.keys(ENTRIES).sort()).toEqual([...defs.keys()].sort());
    expect(Object.keys(APP_CODE_MEANING).sort()).toEqual([...APP_CODES].sort());
    for (const entry of Object.values(ENTRIES)) for (const code of entry.errors) expect(APP_CODES).toContain(code);
  });

  it('gives a valid example input for every procedure', () => {
    for (const [p, entry] of Object.entries(ENTRIES)) {
      const parser = defs.get(p)!.inputs[0];
      const parsed = parser ? parser.safeParse(entry.example) : { success: true as const };
      expect(parsed.success ? 'valid' : `${p}: ${JSON.stringify(parsed.error?.issues)}`).toBe('valid');
    }
  });

  describe('against a running server', () => {
    const suite = useApi();
    const UNIVERSAL = ['INVALID_INPUT', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE'];
    const AUTH_CODES = ['IDENTITY_REQUIRED', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'USER_NOT_FOUND', 'QUEUE_NOT_ACTIVE', 'TOKEN_WRONG_CONCERT', 'ADMIN_KEY_INVALID'];

    /** Calls a procedure by its dotted path, as the generic client proxy allows. */
    function call(c: ReturnType<typeof client>, p: string, input: unknown): Promise<string> {
      let node: unknown = c;
      for (const part of p.split('.')) node = (node as Record<string, unknown>)[part];
      const kind = defs.get(p)!.type === 'query' ? 'query' : 'mutate';
      return outcome((node as Record<string, (i: unknown) => Promise<unknown>>)[kind]!(input));
    }

    /** What each auth level answers to a caller who shows nothing, and to one who shows only an identity. */
    const EXPECTED: Record<Auth, { anonymous: string | null; identified: string | null }> = {
      '-': { anonymous: null, identified: null },
      id: { anonymous: 'IDENTITY_REQUIRED', identified: null },
      'id+token': { anonymous: 'IDENTITY_REQUIRED', identified: 'TOKEN_INVALID' },
      'id+active': { anonymous: 'IDENTITY_REQUIRED', identified: 'TOKEN_INVALID' },
      admin: { anonymous: 'ADMIN_KEY_INVALID', identified: 'ADMIN_KEY_INVALID' },
    };

    it('answers each procedure with the documented auth and only documented errors', async () => {
      await admin(suite.api.url).admin.seedDemo.mutate({});
      const fan = (await admin(suite.api.url).admin.users.create.mutate({ name: 'Reference Reader', initialBalance: 500_000 })).userId;
      const seen: string[] = [];
      for (const [p, entry] of Object.entries(ENTRIES)) {
        const allowed = new Set([...UNIVERSAL, ...entry.errors]);
        const anonymous = await call(client(suite.api.url, {}, { batch: false }), p, entry.example);
        const identified = await call(client(suite.api.url, { userId: fan }, { batch: false }), p, entry.example);
        const expected = EXPECTED[entry.auth];
        if (expected.anonymous) expect(`${p} anonymous: ${anonymous}`).toBe(`${p} anonymous: ${expected.anonymous}`);
        else expect(`${p} anonymous: ${AUTH_CODES.includes(anonymous) ? anonymous : 'passes auth'}`).toBe(`${p} anonymous: passes auth`);
        if (expected.identified) {
          // The ACTIVE-token check needs the concert, so a target that does not exist answers its NOT_FOUND first.
          const answered = entry.auth === 'id+active' && identified.endsWith('_NOT_FOUND') && allowed.has(identified) ? expected.identified : identified;
          expect(`${p} identified: ${answered}`).toBe(`${p} identified: ${expected.identified}`);
        }
        else {
          expect(`${p} identified: ${AUTH_CODES.includes(identified) ? identified : 'passes auth'}`).toBe(`${p} identified: passes auth`);
          // Past auth, the procedure ran on a real example: whatever it answered must be documented.
          expect(`${p} identified: ${identified === 'OK' || allowed.has(identified) ? 'documented' : identified}`).toBe(`${p} identified: documented`);
        }
        if (entry.auth === 'admin') {
          const asOperator = await call(admin(suite.api.url), p, entry.example);
          expect(`${p} operator: ${asOperator === 'OK' || allowed.has(asOperator) ? 'documented' : asOperator}`).toBe(`${p} operator: documented`);
          seen.push(`${p}=${asOperator}`);
        } else seen.push(`${p}=${identified}`);
      }
      console.log(`api-reference: outcomes of the documented examples: ${seen.join(', ')}`);
    }, 120_000);
  });
});
