import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ApiClient } from '../src/client.ts';
import { createApiClient } from '../src/client.ts';
import { adminWatchCommand, LATE_AFTER_MS } from '../src/commands/admin/watch.ts';
import { Ctx, type Io } from '../src/context.ts';
import { CliFailure, describeError, isTransient } from '../src/errors.ts';
import { plain } from '../src/format.ts';
import { lostLine } from '../src/line.ts';
import { Outage, type Retry, RIDE_THROUGH_MS } from '../src/retry.ts';
import type { QueueTicket, SaleWatch } from '../src/types.ts';
import { freePort } from '../../../test/harness.ts';

// Which failures a polling command (admin watch, a wait in line) rides through, and on what schedule.

/** A server that answers each path its own way: a proxy's pages, a reset, a non-tRPC JSON body. */
let server: http.Server;
let base = '';
beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url?.startsWith('/bad-gateway/')) res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
    else if (req.url?.startsWith('/unavailable-json/')) res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"no healthy upstream"}');
    else if (req.url?.startsWith('/reset/')) req.socket.resetAndDestroy();
    else res.writeHead(404, { 'content-type': 'text/html' }).end('<html>Not Found</html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** What a call of the real client fails with against `api`. */
async function failureOf(api: string): Promise<unknown> {
  try {
    await createApiClient(api, { adminKey: 'k' }, { timeoutMs: 5_000 }).admin.watch.query({ concertId: 1 });
  } catch (err) {
    return err;
  }
  throw new Error('the call succeeded');
}

/** An error as the tRPC client carries the API's answer. */
const answered = (code: string, appCode: string) => Object.assign(new Error(appCode), { name: 'TRPCClientError', data: { code, appCode } });

describe('transient failures', () => {
  it('no answer, or a proxy answering for an API that is away, is transient; the envelope is NETWORK_ERROR as before', async () => {
    const refused = await failureOf(`http://127.0.0.1:${await freePort()}`);
    expect(isTransient(refused)).toBe(true);
    expect(describeError(refused).payload).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringContaining('ECONNREFUSED') });

    const reset = await failureOf(`${base}/reset`);
    expect(isTransient(reset)).toBe(true);

    const badGateway = await failureOf(`${base}/bad-gateway`);
    expect(isTransient(badGateway)).toBe(true);
    expect(describeError(badGateway).payload).toEqual({ code: 'NETWORK_ERROR', appCode: null, message: 'Could not reach the API (HTTP 502 Bad Gateway)' });

    const unavailable = await failureOf(`${base}/unavailable-json`);
    expect(isTransient(unavailable)).toBe(true);
    expect(describeError(unavailable).payload.message).toBe('Could not reach the API (HTTP 503)');

    // The API's own SERVICE_UNAVAILABLE (its database or queue store is down) too.
    expect(isTransient(answered('SERVICE_UNAVAILABLE', 'SERVICE_UNAVAILABLE'))).toBe(true);
  });

  it('an answer about the call itself, a page that is not a gateway error, and Ctrl-C are not', async () => {
    const notFoundPage = await failureOf(`${base}/elsewhere`);
    expect(isTransient(notFoundPage)).toBe(false);
    expect(describeError(notFoundPage).payload).toMatchObject({ code: 'NETWORK_ERROR', message: 'Could not reach the API (HTTP 404 Not Found)' });
    for (const [code, appCode] of [
      ['UNAUTHORIZED', 'ADMIN_KEY_INVALID'],
      ['NOT_FOUND', 'CONCERT_NOT_FOUND'],
      ['BAD_REQUEST', 'VALIDATION_FAILED'],
      ['TOO_MANY_REQUESTS', 'RATE_LIMITED'],
      ['INTERNAL_SERVER_ERROR', 'INTERNAL'],
    ]) {
      expect(isTransient(answered(code!, appCode!)), code).toBe(false);
    }
    const abort = new AbortController();
    abort.abort();
    const interrupted = await createApiClient(base, {}, { signal: abort.signal })
      .admin.watch.query({ concertId: 1 })
      .catch((err: unknown) => err);
    expect(describeError(interrupted).payload.code).toBe('INTERRUPTED');
    expect(isTransient(interrupted)).toBe(false);
    expect(isTransient(new Error('a bug'))).toBe(false);
  });
});

describe('the retry schedule', () => {
  const refused = Object.assign(new Error('fetch failed'), { name: 'TRPCClientError', cause: Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }) });

  it('backs off 1 s, 2 s, then every 4 s, and the last try falls at 30 s; its failure ends the command with the same code', () => {
    let now = 0;
    const outage = new Outage({ now: () => now, hint: 'join again' });
    const delays: number[] = [];
    let failure: unknown;
    try {
      for (;;) {
        const r = outage.failed(refused);
        expect(r.giveUpAt.getTime()).toBe(RIDE_THROUGH_MS);
        expect(r.error).toMatchObject({ code: 'NETWORK_ERROR', appCode: null });
        delays.push(r.delayMs);
        now += r.delayMs + 10; // each try takes 10 ms to fail
      }
    } catch (err) {
      failure = err;
    }
    expect(delays).toEqual([1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 2920]);
    expect(failure).toBeInstanceOf(CliFailure);
    const d = describeError(failure);
    expect(d.exitCode).toBe(1);
    expect(d.payload).toEqual({ code: 'NETWORK_ERROR', appCode: null, message: 'Could not reach the API (ECONNREFUSED); gave up after 30s and 10 tries' });
    expect(d.hint).toBe('join again');
  });

  // A request that hung until its timeout (a stopped API) failed long after the API stopped: the
  // ride-through counted from the timeout, and the watch gave up a timeout later than 30 s.
  it('counts the 30 s from when the failed call was made, when it says', () => {
    let now = 10_000;
    const outage = new Outage({ now: () => now });
    const hung = outage.failed(refused, 0, 0); // asked at 0, timed out at 10 s
    expect(hung.giveUpAt.getTime()).toBe(RIDE_THROUGH_MS);
    now = RIDE_THROUGH_MS + 1;
    expect(() => outage.failed(refused, 0, 25_000)).toThrow(/gave up after 30s and 2 tries/);
  });

  it("never retries sooner than the fan's pace (pollAfterMs), starts over after an answer, and throws anything else at once", () => {
    let now = 0;
    const outage = new Outage({ now: () => now });
    expect(outage.failed(refused, 20_000).delayMs).toBe(20_000);
    now = 20_000;
    expect(outage.failed(refused, 20_000).delayMs).toBe(10_000); // the last try, at 30 s
    outage.over();
    now = 40_000;
    const again = outage.failed(refused, 500);
    expect(again).toMatchObject({ attempt: 1, delayMs: 1000 });
    expect(again.giveUpAt.getTime()).toBe(70_000);
    const denied = answered('UNAUTHORIZED', 'ADMIN_KEY_INVALID');
    expect(() => outage.failed(denied)).toThrow(denied);
  });

  it("the fan's live line while the API is away keeps saying the place is kept, as narrow as it must be", () => {
    const t = { concertId: 13 } as QueueTicket;
    const lost: Retry = { attempt: 2, delayMs: 2000, error: { code: 'NETWORK_ERROR', appCode: null, message: 'x' }, giveUpAt: new Date() };
    expect(lostLine(plain, t, lost, 0)).toBe('⠋ Connection lost, retrying (2)… · your place in line for concert 13 is kept');
    expect(lostLine(plain, t, lost, 0, 60)).toBe('⠋ Connection lost, retrying (2)… · your place is kept');
    expect(lostLine(plain, t, lost, 0, 39)).toBe('⠋ Connection lost, retrying (2)…');
  });
});

describe('concert admin watch, in process', () => {
  const snapshot = (at: Date) =>
    ({
      at,
      concertId: 1,
      title: 'Retry',
      lapsingWithinSeconds: 60,
      line: {
        state: 'OPEN', opensAt: null, waiting: 0, preQueued: 0, active: 0, maxActive: 5, droppedIdleTotal: 0, etaBackSeconds: null, admissionsPerMinute: Array(30).fill(0), admittedLastMinute: 0, admittedTotal: 0,
      },
      shows: [],
    }) as unknown as SaleWatch;
  const io = () => {
    let out = '';
    let err = '';
    const stdout = new PassThrough().on('data', (d: Buffer) => (out += d));
    const stderr = new PassThrough().on('data', (d: Buffer) => (err += d));
    const value: Io = { stdin: new PassThrough(), stdout, stderr, env: {}, cwd: process.cwd(), signal: new AbortController().signal };
    return { io: value, out: () => out, err: () => err };
  };
  const watching = (m: ReturnType<typeof io>, query: () => Promise<SaleWatch>, json = false) => {
    const ctx = new Ctx(m.io, { adminKey: 'k', json });
    Object.defineProperty(ctx, 'clientWithTimeout', { value: () => ({ admin: { watch: { query } } } as unknown as ApiClient) });
    return ctx;
  };
  const refused = () => Object.assign(new Error('fetch failed'), { name: 'TRPCClientError', cause: Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }) });

  it('with --json, a lost second prints nothing on stdout and one retrying line on stderr, then the snapshots resume', async () => {
    const m = io();
    let calls = 0;
    const ctx = watching(m, async () => (calls++ === 1 ? Promise.reject(refused()) : snapshot(new Date())), true);
    expect(await adminWatchCommand(ctx, 1, { count: 2 })).toEqual({ refreshes: 2 });
    expect(m.out().trim().split('\n').map((l) => JSON.parse(l).concertId)).toEqual([1, 1]);
    const retrying = JSON.parse(m.err()) as { retrying: { attempt: number; inMs: number; giveUpAt: string; error: { code: string; message: string } } };
    expect(retrying.retrying).toMatchObject({ attempt: 1, inMs: 1000, error: { code: 'NETWORK_ERROR', appCode: null, message: 'Could not reach the API (ECONNREFUSED)' } });
    expect(Date.parse(retrying.retrying.giveUpAt)).toBeGreaterThan(Date.now());
  });

  // A slow answer is late, not lost: no `retrying`, no error; while it is late, --json says so on
  // stderr once a second (stdout keeps only snapshots), and without a terminal a line says so once.
  it('a refresh later than LATE_AFTER_MS is told as stale (a JSON line a second on stderr with --json; one line in text), then the answer carries on', { timeout: 30_000 }, async () => {
    for (const json of [true, false]) {
      const m = io();
      let calls = 0;
      let answer: (() => void) | undefined;
      const first = snapshot(new Date());
      const ctx = watching(m, () => (calls++ === 0 ? Promise.resolve(first) : new Promise<SaleWatch>((resolve) => (answer = () => resolve(snapshot(new Date()))))), json);
      const done = adminWatchCommand(ctx, 1, { count: 2 });
      if (json) {
        await vi.waitFor(() => expect(m.err().split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 50 });
        const lines = m.err().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { stale: { noAnswerForMs: number; figuresFrom: string } });
        expect(lines[0]!.stale.noAnswerForMs).toBeGreaterThanOrEqual(LATE_AFTER_MS);
        expect(lines[1]!.stale.noAnswerForMs).toBeGreaterThan(lines[0]!.stale.noAnswerForMs);
        for (const l of lines) expect(l).toEqual({ stale: { noAnswerForMs: expect.any(Number), figuresFrom: first.at.toISOString() } });
      } else {
        await vi.waitFor(() => expect(m.out()).toMatch(/No answer from the API for \d+s — figures from \d\d:\d\d:\d\d; still waiting for it/), { timeout: 10_000, interval: 50 });
      }
      answer!();
      expect(await done).toEqual({ refreshes: 2 });
      if (json) expect(m.out().trim().split('\n')).toHaveLength(2);
      else expect(m.out().match(/No answer from the API/g)).toHaveLength(1);
      expect(m.out() + m.err()).not.toMatch(/retrying|Connection lost/);
    }
  });

  it('a refused first call and a non-transient error end it at once, as before', async () => {
    const first = io();
    await expect(adminWatchCommand(watching(first, () => Promise.reject(refused())), 1, { count: 3 })).rejects.toMatchObject({ name: 'TRPCClientError' });
    const denied = io();
    let calls = 0;
    const started = Date.now();
    const ctx = watching(denied, async () => (calls++ === 0 ? snapshot(new Date()) : Promise.reject(answered('UNAUTHORIZED', 'ADMIN_KEY_INVALID'))));
    await expect(adminWatchCommand(ctx, 1, { count: 3 })).rejects.toMatchObject({ data: { appCode: 'ADMIN_KEY_INVALID' } });
    expect(Date.now() - started).toBeLessThan(RIDE_THROUGH_MS / 10);
    expect(denied.out()).not.toContain('retrying');
  });
});
