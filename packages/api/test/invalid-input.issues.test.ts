import { beforeAll, describe, expect, it } from 'vitest';
import { admin, client, expectAppError, useApi } from '../../../test/harness.ts';
import { rest } from './rest.shared.ts';

/**
 * The contract: "input validation errors also carry the zod issues". An input field that the
 * server refuses after its schema has passed (a show starting in the past, a page cursor it
 * never gave out, a webhook url with credentials) is as much a validation error as one the schema
 * refuses: a client that maps `issues[].path` to its form fields must find the field there too,
 * on /trpc (`data.issues`) and on /v1 (the problem's `issues`). These answers came without any
 * issues (found from outside: `admin.concerts.create` with a past `startsAt`, `GET
 * /v1/waitlist?cursor=abc`, `GET /v1/balance/history?cursor=abc`).
 */

type Issue = { code: string; path: PropertyKey[]; message: string };
const issuesOf = (err: { data?: unknown }) => (err.data as { issues?: Issue[] }).issues;

describe('INVALID_INPUT names the field in issues, whoever found it', () => {
  const suite = useApi();
  let userId: number;

  beforeAll(async () => {
    ({ userId } = await admin(suite.api.url).admin.users.create.mutate({ name: 'form filler' }));
  });

  it('admin.concerts.create with a show in the past', async () => {
    const err = await expectAppError(
      admin(suite.api.url).admin.concerts.create.mutate({
        title: 'Last night',
        schedules: [{ startsAt: new Date(Date.now() + 86_400_000) }, { startsAt: new Date(Date.now() - 60_000) }],
      }),
      'INVALID_INPUT',
    );
    expect(err.message).toContain('schedules[1].startsAt must be in the future');
    expect(issuesOf(err)).toEqual([expect.objectContaining({ path: ['schedules', 1, 'startsAt'], message: err.message })]);
  });

  it('a page cursor the server never gave out, on every paged list over tRPC', async () => {
    const fan = client(suite.api.url, { userId });
    const ops = admin(suite.api.url);
    const { webhookId } = await ops.admin.webhooks.create.mutate({ url: 'http://127.0.0.1:9/hook', events: ['payment.completed'] });
    const calls: Record<string, () => Promise<unknown>> = {
      'concerts.list': () => fan.concerts.list.query({ cursor: 'abc' }),
      'reservations.mine': () => fan.reservations.mine.query({ cursor: 'abc' }),
      'balance.history': () => fan.balance.history.query({ cursor: 'abc' }),
      'waitlist.mine': () => fan.waitlist.mine.query({ cursor: 'abc' }),
      'admin.concerts.list': () => ops.admin.concerts.list.query({ cursor: 'abc' }),
      'admin.holds.list': () => ops.admin.holds.list.query({ cursor: 'abc' }),
      'admin.webhooks.deliveries': () => ops.admin.webhooks.deliveries.query({ webhookId, cursor: 'abc' }),
    };
    for (const [procedure, call] of Object.entries(calls)) {
      const err = await expectAppError(call(), 'INVALID_INPUT');
      expect({ procedure, paths: issuesOf(err)?.map((i) => i.path) }).toEqual({ procedure, paths: [['cursor']] });
    }
  });

  it('a page cursor the server never gave out, on every paged list over REST', async () => {
    for (const path of ['/v1/concerts', '/v1/reservations', '/v1/balance/history', '/v1/waitlist']) {
      const a = await rest(suite.api.url, 'GET', `${path}?cursor=abc`, { user: userId });
      expect({ path, status: a.status, appCode: a.body.appCode, issuePaths: (a.body.issues as Issue[] | undefined)?.map((i) => i.path) }).toEqual({
        path,
        status: 400,
        appCode: 'INVALID_INPUT',
        issuePaths: [['cursor']],
      });
      expect(a.body.detail).toMatch(/cursor/);
    }
  });

  it('admin.webhooks.create with credentials in the url', async () => {
    const err = await expectAppError(
      admin(suite.api.url).admin.webhooks.create.mutate({ url: 'http://user:secret@127.0.0.1:9/hook', events: ['payment.completed'] }),
      'INVALID_INPUT',
    );
    expect(err.message).toBe('A webhook url must not carry credentials');
    expect(issuesOf(err)?.map((i) => i.path)).toEqual([['url']]);
  });
});
