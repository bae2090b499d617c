import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, testEnv } from '../../../../test/harness.ts';
import { type Core, createCore, loadConfig } from '../index.ts';
import type { ResolveHost } from './webhooks.address.ts';

/**
 * A hostile DNS server for the endpoint's host name: answers each question with the next of
 * `answers`, and with the last one from then on (a TTL of 0 lets a real one do the same).
 */
function stubDns(): { answers: string[]; asked: string[]; resolve: ResolveHost } {
  const dns = {
    answers: ['93.184.216.34'],
    asked: [] as string[],
    resolve: async (host: string) => {
      const address = dns.answers.length > 1 ? dns.answers.shift()! : dns.answers[0]!;
      dns.asked.push(`${host} -> ${address}`);
      return [{ address, family: isIP(address) }];
    },
  };
  return dns;
}

/** A receiver on 127.0.0.1 that counts what reaches it and answers `status`. */
async function listen(status: number, headers: Record<string, string> = {}): Promise<{ server: Server; port: number; got: string[] }> {
  const got: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      got.push(`${req.method} ${req.url}`);
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, got };
}

/** Holds a seat: a `reservation.held` event for every endpoint that takes it. */
async function holdASeat(core: Core): Promise<void> {
  const c = await core.concerts.create({
    title: `Rebinding ${randomUUID()}`,
    venue: '',
    schedules: [{ startsAt: new Date(Date.now() + 86_400_000), bookingOpensAt: new Date(Date.now() - 1000), seatCount: 2 }],
  });
  const user = (await core.admin.createUser({ name: 'fan', initialBalance: 0 })).userId;
  const ticket = await core.queue.enter(user, c.concertId);
  await core.reservations.hold(user, { scheduleId: c.schedules[0]!.scheduleId, seatNumbers: [1], idempotencyKey: randomUUID() }, core.queue.gate(user, ticket.token));
}

function useCore(env: Record<string, string>, resolve?: ResolveHost): { core: Core } {
  const suite = {} as { core: Core; db: TestDatabase };
  beforeAll(async () => {
    suite.db = await createTestDatabase();
    suite.core = await createCore(loadConfig(testEnv(suite.db.url, env)), { webhookResolve: resolve });
  });
  afterAll(async () => {
    await suite.core?.close();
    await suite.db?.drop();
  });
  return suite;
}

/**
 * DNS rebinding (a review): the endpoint's host name was checked with one lookup and `fetch`
 * connected after a lookup of its own, so a DNS server answering a public address to the check
 * and 127.0.0.1 to the connection had the backend post to a service on its own loopback.
 */
describe('a webhook host that resolves to a public address for the check and to loopback for the connection', () => {
  const dns = stubDns();
  const s = useCore({ WEBHOOK_ALLOW_PRIVATE: 'false' }, dns.resolve);
  let receiver: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => (receiver = await listen(204)));
  afterAll(() => new Promise<void>((resolve) => receiver.server.close(() => resolve())));

  it('is refused at the connection: nothing reaches the local receiver, and the attempt is recorded as failed with the reason', async () => {
    // `localhost`: the system's own resolver says 127.0.0.1 too, as a connection that bypassed the stub would find.
    const { webhookId } = await s.core.webhooks.create({ url: `http://localhost:${receiver.port}/hooks`, events: ['reservation.held'], description: '' });
    await holdASeat(s.core);
    // The delivery's check is answered a public address, whatever asks after it 127.0.0.1.
    dns.answers = ['93.184.216.34', '127.0.0.1'];
    dns.asked.length = 0;
    expect(await s.core.webhooks.deliverDue()).toBe(1);
    await expect
      .poll(async () => (await s.core.webhooks.deliveries({ webhookId, limit: 10 })).items, { timeout: 10_000, interval: 50 })
      .toEqual([expect.objectContaining({ type: 'reservation.held', attempt: 1, status: 'PENDING', httpStatus: null, error: 'fetch failed: The webhook host localhost resolved to 127.0.0.1 when connecting, a loopback or private address' })]);
    expect(receiver.got).toEqual([]);
    // The connection asked the stub, and was answered 127.0.0.1.
    expect(dns.asked).toEqual(['localhost -> 93.184.216.34', 'localhost -> 127.0.0.1']);
  });
});

describe('webhook deliveries where private endpoints are allowed (development, tests)', () => {
  const s = useCore({ WEBHOOK_ALLOW_PRIVATE: 'true' });
  let receiver: Awaited<ReturnType<typeof listen>>;
  let redirecting: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    receiver = await listen(204);
    redirecting = await listen(307, { location: `http://127.0.0.1:${receiver.port}/elsewhere` });
  });
  afterAll(async () => {
    for (const r of [receiver, redirecting]) await new Promise<void>((resolve) => r.server.close(() => resolve()));
  });

  it('deliver to http://127.0.0.1 as before, and do not follow a redirect', async () => {
    const direct = await s.core.webhooks.create({ url: `http://127.0.0.1:${receiver.port}/hooks`, events: ['reservation.held'], description: '' });
    const redirected = await s.core.webhooks.create({ url: `http://127.0.0.1:${redirecting.port}/hooks`, events: ['reservation.held'], description: '' });
    await holdASeat(s.core);
    expect(await s.core.webhooks.deliverDue()).toBe(2);
    await expect
      .poll(async () => (await s.core.webhooks.deliveries({ webhookId: direct.webhookId, limit: 10 })).items, { timeout: 10_000, interval: 50 })
      .toEqual([expect.objectContaining({ attempt: 1, status: 'DELIVERED', httpStatus: 204, error: null })]);
    await expect
      .poll(async () => (await s.core.webhooks.deliveries({ webhookId: redirected.webhookId, limit: 10 })).items, { timeout: 10_000, interval: 50 })
      .toEqual([expect.objectContaining({ attempt: 1, status: 'PENDING', httpStatus: 307, error: 'HTTP 307' })]);
    expect(receiver.got).toEqual(['POST /hooks']);
    expect(redirecting.got).toEqual(['POST /hooks']);
  });
});
