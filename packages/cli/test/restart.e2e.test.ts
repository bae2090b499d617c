import { describe, expect, it } from 'vitest';
import { admin as harnessAdmin, client } from '../../../test/harness.ts';
import { ADMIN_KEY, concert, concertLive, useRestartableCli } from './helpers.ts';

// The commands that poll ride through a rolling restart of the API: the built binary talks to the
// API through an address that stays (a proxy, as a load balancer), the process behind it is
// replaced mid-way, and for a while nothing answers there (connections reset, then refused).
const cli = useRestartableCli();

async function sale(maxActive: number) {
  const a = harnessAdmin(cli.direct());
  const now = Date.now();
  const c = await a.admin.concerts.create.mutate({
    title: 'Restart Test',
    venue: 'Hall',
    schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount: 10 }],
  });
  await a.admin.queue.configure.mutate({ concertId: c.concertId, maxActive });
  const fans = await Promise.all([0, 1].map(async (i) => (await a.admin.users.create.mutate({ name: `fan ${i}`, initialBalance: 200_000 })).userId));
  return { concertId: c.concertId, fans: fans as [number, number] };
}

describe('a restart of the API', () => {
  it('admin watch --json keeps going: no line while the API is away, a retrying line on stderr per try, then snapshots again', { timeout: 120_000 }, async () => {
    const { concertId } = await sale(5);
    const watch = concertLive(['--admin-key', ADMIN_KEY, '--json', 'admin', 'watch', String(concertId)], cli.env);
    const lines = () => watch.stdout().split('\n').filter(Boolean);
    try {
      await expect.poll(() => (watch.running() ? lines().length : -1), { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
      const { resume } = await cli.restart();
      // Two failed tries (the call in the cut, and the retry a second later), still running.
      await watch.waitForStderr(/"retrying":\{"attempt":2,/);
      const during = lines().length;
      expect(watch.running()).toBe(true);
      await resume();
      await expect.poll(() => (watch.running() ? lines().length : -1), { timeout: 20_000 }).toBeGreaterThanOrEqual(during + 2);
      watch.kill('SIGINT');
      const done = await watch.done;
      expect(done.code, done.stderr).toBe(130);
      // stdout: snapshots only, every line, before and after the restart.
      for (const line of lines()) expect((JSON.parse(line) as { concertId: number }).concertId).toBe(concertId);
      // stderr: one line per failed try, the same envelope as an error's, then the interrupt.
      const err = done.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, { attempt?: number; inMs?: number; error?: { code: string } }>);
      expect(err.at(-1)).toEqual({ error: { code: 'INTERRUPTED', appCode: null, message: 'Interrupted' } });
      const tries = err.slice(0, -1).map((l) => l.retrying!);
      expect(tries.map((t) => t.attempt)).toEqual(tries.map((_, i) => i + 1));
      expect(tries.slice(0, 3).map((t) => t.inMs)).toEqual([1000, 2000, 4000].slice(0, tries.length));
      for (const t of tries) expect(t.error!.code).toBe('NETWORK_ERROR');
    } finally {
      watch.kill('SIGKILL');
    }
  });

  it('queue join --wait keeps waiting through it, and ends ACTIVE when its turn comes after', { timeout: 120_000 }, async () => {
    const { concertId, fans } = await sale(1);
    const [a, b] = fans.map(String) as [string, string];
    const first = await concert(['--user', a, '--json', 'queue', 'join', String(concertId)], cli.env);
    expect(first.json().status, first.stderr).toBe('ACTIVE');
    const waiting = concertLive(['--user', b, 'queue', 'join', String(concertId), '--wait'], cli.env);
    try {
      await waiting.waitForStderr(/In line for concert \d+ · position 1 · 0 ahead/);
      const { resume } = await cli.restart();
      await waiting.waitForStderr(/Connection lost, retrying \(2\) in 2s…/);
      expect(waiting.running()).toBe(true);
      // While the API is away from the fan, the one ahead gives the slot up (on the new process).
      await client(cli.direct(), { userId: Number(a), queueToken: first.json().token }, { batch: false }).queue.leave.mutate({});
      await resume();
      const done = await waiting.done;
      expect(done.code, done.stderr).toBe(0);
      expect(done.stdout).toMatch(/status\s+ACTIVE/);
      expect(done.stderr).toMatch(/^Connection lost, retrying \(1\) in 1s… \(Could not reach the API \(\w+\)\); gives up at \d\d:\d\d:\d\d; your place is kept$/m);
    } finally {
      waiting.kill('SIGKILL');
    }
  });
});
