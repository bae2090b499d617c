import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin as harnessAdmin } from '../../../test/harness.ts';
import { ADMIN_KEY, concert, type CliSuite, startCliSuite } from './helpers.ts';

// Defects found by scripting booking flows with --json from the outside: the built binary against
// the API as its own process.
let suite: CliSuite | undefined;
let api: CliSuite['api'];
let env: CliSuite['env'];

async function newSale(opts: { users?: number; balance?: number } = {}) {
  const a = harnessAdmin(api.url);
  const now = Date.now();
  const c = await a.admin.concerts.create.mutate({
    title: 'Review Sale',
    schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: 10 }],
  });
  const userIds = await Promise.all(Array.from({ length: opts.users ?? 1 }, async (_, i) => (await a.admin.users.create.mutate({ name: `fan ${i}`, initialBalance: opts.balance ?? 1_000_000 })).userId));
  return { concertId: c.concertId, scheduleId: c.schedules[0]!.scheduleId, userIds };
}

beforeAll(async () => {
  suite = await startCliSuite();
  ({ api, env } = suite);
});

afterAll(() => suite?.stop());

describe('--json flows, reviewed from outside', () => {
  it('pay retried with its key after joining the line again keeps the newer place in the session', async () => {
    const { concertId, scheduleId, userIds } = await newSale();
    const as = (...args: string[]) => concert(['--user', String(userIds[0]), '--json', ...args], env);
    expect((await as('queue', 'join', String(concertId))).code).toBe(0);
    const hold = await as('hold', String(scheduleId), '1');
    expect(hold.code, hold.stderr).toBe(0);
    const reservationId = hold.json().reservationId as string;
    const pay = await as('pay', reservationId, '--idempotency-key', 'review-pay-0001');
    expect(pay.code, pay.stderr).toBe(0);
    expect(pay.json().queueTokenExpired).toBe(true);

    // A new turn in line, then the payment retried with its key: the server replays the first
    // answer (queueTokenExpired: true) and leaves the new token alone (API.md, payments)...
    const again = await as('queue', 'join', String(concertId));
    expect(again.json().status).toBe('ACTIVE');
    const replay = await as('pay', reservationId, '--idempotency-key', 'review-pay-0001');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.json().paymentId).toBe(pay.json().paymentId);

    // ...so the session must keep it too: the next hold used to fail TOKEN_INVALID (exit 1), and
    // queue status "No queue token saved" (exit 2), while the server still had the fan ACTIVE.
    const next = await as('hold', String(scheduleId), '2');
    expect(next.code, next.stderr).toBe(0);
    expect(next.json().status).toBe('HELD');
  });
});

describe('admin concerts create --file, reviewed from outside', () => {
  it('a concert file the server refuses (a show in the past) is bad usage, exit 2, its field named as the local check names it', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dir = mkdtempSync(path.join(tmpdir(), 'concert-file-'));
    try {
      writeFileSync(path.join(dir, 'past.json'), JSON.stringify({ title: 'Yesterday', schedules: [{ startsAt: '2020-01-01T19:00:00+09:00', seatCount: 5 }] }));
      const r = await concert(['--admin-key', ADMIN_KEY, '--json', 'admin', 'concerts', 'create', '--file', 'past.json'], env, { cwd: dir });
      expect(r.stdout).toBe('');
      // It was exit 1 with INVALID_INPUT and the path as schedules.0.startsAt; the CLI's exit
      // statuses put an invalid concert file under bad usage (exit 2), as a bad price is.
      expect(r.code, r.stderr).toBe(2);
      expect(r.error()).toMatchObject({ code: 'USAGE', appCode: null, issues: [{ path: 'schedules[0].startsAt' }] });
      expect(r.error().message).toContain('past.json is not a valid concert');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
