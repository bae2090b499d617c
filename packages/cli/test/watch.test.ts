import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from '../build.mjs';
import { admin as harnessAdmin } from '../../../test/harness.ts';
import { ADMIN_KEY, concert, inPty, stripAnsi, useGatedCli } from './helpers.ts';

// `concert admin watch` in a real pseudo-terminal while `concert simulate` runs a sale, and its
// --json stream read line by line as a script would.
const cli = useGatedCli();

async function sale(seatCount: number) {
  const now = Date.now();
  const c = await harnessAdmin(cli.api.url).admin.concerts.create.mutate({
    title: 'Watch Test',
    venue: 'Hall',
    schedules: [7, 8].map((d) => ({ startsAt: new Date(now + d * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount })),
  });
  await harnessAdmin(cli.api.url).admin.queue.configure.mutate({ concertId: c.concertId, maxActive: 4 });
  return c.concertId;
}

describe('concert admin watch', () => {
  it('redraws the sale in place every second during a rehearsal, and q quits', { timeout: 120_000 }, async () => {
    const concertId = await sale(40);
    const rehearsal = concert(['--admin-key', ADMIN_KEY, 'simulate', '--concert', String(concertId), '--users', '12', '--concurrency', '6'], cli.env);
    const watch = inPty(['--admin-key', ADMIN_KEY, 'admin', 'watch', String(concertId)], cli.env);
    try {
      await watch.waitFor(/Admitted .* [1-9]\d* in all/);
      // A few more refreshes with a busy line, then the last frame is the screen.
      const frames = () => watch.raw().split('\x1b[H');
      const seen = frames().length;
      await expect.poll(() => frames().length, { timeout: 10_000 }).toBeGreaterThan(seen + 2);
      const screen = frames().at(-1)!.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''); // eslint-disable-line no-control-regex
      console.log(`concert admin watch ${concertId}, mid-rehearsal:\n${screen}`);
      expect(screen).toMatch(/Line {7}(OPEN|ALL HELD|SOLD OUT)/);
      expect(screen).toMatch(/waiting \d+ · pre-queued 0 · active \d\/4/);
      expect(screen).toMatch(/ETA at the back/);
      expect(screen).toMatch(/Admitted {3}[▁▂▃▄▅▆▇█]+ \d+\/min now/);
      expect(screen.match(/^ {11}\d{4}-\d\d-\d\d \d\d:\d\d +\d+ +\d+ +\d+ +\d+ /gm)?.length).toBe(2);
      // In place: the screen is cleared once, then every frame starts at the top and clears only what is left below it.
      expect(watch.raw().split('\x1b[2J').length - 1).toBe(1);
      expect(frames().length - 1).toBeGreaterThanOrEqual(4);
      watch.type('q');
      expect(await watch.exited).toBe(0);
      expect(watch.raw()).toContain('\x1b[?25h'); // the cursor is given back
    } finally {
      watch.kill();
    }
    const done = await rehearsal;
    expect(done.code, `${done.stdout}\n${done.stderr}`).toBe(0);
  });

  it('Ctrl-C on the terminal quits with exit status 130, and gives the cursor back', { timeout: 60_000 }, async () => {
    const concertId = await sale(10);
    const watch = inPty(['--admin-key', ADMIN_KEY, 'admin', 'watch', String(concertId)], cli.env);
    try {
      await watch.waitFor(/ETA at the back/);
      watch.type('\x03');
      expect(await watch.exited).toBe(130);
      expect(watch.raw()).toContain('\x1b[?25h');
    } finally {
      watch.kill();
    }
  });

  // `timeout 60 concert admin watch 1`, a closed tmux pane's supervisor, `kill <pid>`: SIGTERM killed
  // the watch where it stood, and the terminal was left with its cursor hidden (seen in tmux:
  // cursor_flag 0 after `kill -TERM`, exit 143).
  it('a polite kill (SIGTERM, as timeout and supervisors send) gives the terminal back: cursor shown, modes restored, exit 143', { timeout: 60_000 }, async () => {
    const concertId = await sale(10);
    const watch = inPty(['--admin-key', ADMIN_KEY, 'admin', 'watch', String(concertId)], cli.env, { checkTerminal: true });
    try {
      await watch.waitFor(/ETA at the back/);
      watch.signal('SIGTERM');
      expect(await watch.exited).toBe(143);
      const raw = watch.raw();
      expect(raw.lastIndexOf('\x1b[?25h')).toBeGreaterThan(raw.lastIndexOf('\x1b[?25l'));
      expect(watch.screen()).toContain('[terminal restored]');
    } finally {
      watch.kill();
    }
  });

  // `concert admin watch 99` (a typo, or the API not started) cleared the operator's screen and
  // hid the cursor before its first request, then printed the error on a blank screen, at the row
  // the cursor had been on (seen in tmux: the shell's earlier lines gone).
  it('an unknown concert or an API not started fails without clearing the screen first', { timeout: 60_000 }, async () => {
    for (const env of [cli.env, { ...cli.env, CONCERT_API_URL: 'http://127.0.0.1:9' }]) {
      const watch = inPty(['--admin-key', ADMIN_KEY, 'admin', 'watch', '999999'], env, { checkTerminal: true });
      try {
        expect(await watch.exited).toBe(1);
        expect(watch.screen()).toMatch(/error: (Concert 999999 does not exist \(CONCERT_NOT_FOUND\)|Could not reach the API)/);
        expect(watch.screen()).toContain('[terminal restored]');
        expect(watch.raw()).not.toContain('\x1b[2J');
        expect(watch.raw()).not.toContain('\x1b[?25l');
      } finally {
        watch.kill();
      }
    }
  });

  // An API that stops answering without closing anything (its process stopped with kill -STOP, a
  // network dropping packets): the frame stood still with no word for 31 s (the request's 30 s
  // timeout), then said "retrying in 1s" while the next request hung another 30 s, and the watch
  // gave up after about 60 s.
  it('a hung API: within seconds the frame says its figures are stale, every second, gone once it answers; it gives up about 30 s after the API stopped', { timeout: 180_000 }, async () => {
    const concertId = await sale(10);
    const watch = inPty(['--admin-key', ADMIN_KEY, 'admin', 'watch', String(concertId)], cli.env);
    const lastFrame = () => stripAnsi(watch.raw().split('\x1b[H').at(-1)!);
    const stale = /No answer from the API for (\d+)s — figures from \d\d:\d\d:\d\d; still waiting for it/;
    const staleFor = () => Number(stale.exec(lastFrame())?.[1] ?? -1);
    try {
      await watch.waitFor(/ETA at the back/);
      cli.api.signal('SIGSTOP');
      const frozeAt = Date.now();
      await expect.poll(lastFrame, { timeout: 10_000, interval: 100 }).toMatch(stale);
      const toldAfterMs = Date.now() - frozeAt;
      // Told every second: the count goes on.
      const first = staleFor();
      await expect.poll(staleFor, { timeout: 5_000, interval: 100 }).toBeGreaterThan(first);
      console.log(`concert admin watch ${concertId}, the API stopped (told after ${toldAfterMs} ms):\n${lastFrame()}`);
      expect(lastFrame()).toMatch(/Line {7}OPEN/); // the figures stay on screen above the notice
      cli.api.signal('SIGCONT');
      // The request that waited is answered: the notice goes with the next frame.
      await expect.poll(lastFrame, { timeout: 15_000, interval: 100 }).not.toMatch(/No answer from the API|Connection lost/);
      expect(lastFrame()).toMatch(/ETA at the back/);
      // Redrawn in place all along: the screen was cleared once.
      expect(watch.raw().split('\x1b[2J').length - 1).toBe(1);

      // Stopped for good: the watch gives up about 30 s after (each poll times out at 10 s, and the
      // ride-through counts from the request that hung), not 60 s.
      await watch.waitFor(/ETA at the back/, watch.screen().length);
      cli.api.signal('SIGSTOP');
      const stoppedAt = Date.now();
      expect(await watch.exited).toBe(1);
      const tookMs = Date.now() - stoppedAt;
      console.log(`gave up ${tookMs} ms after the API stopped:\n${watch.screen().slice(-600)}`);
      expect(watch.screen()).toMatch(/error: The API did not answer in time; gave up after \d+s and \d+ tries/);
      expect(tookMs).toBeGreaterThan(25_000);
      expect(tookMs).toBeLessThan(45_000);
    } finally {
      cli.api.signal('SIGCONT');
      watch.kill();
    }
  });

  it('prints one JSON snapshot a second with --json, until interrupted', { timeout: 60_000 }, async () => {
    const concertId = await sale(10);
    const child = spawn(process.execPath, [BIN, '--admin-key', ADMIN_KEY, '--json', 'admin', 'watch', String(concertId)], { env: { ...process.env, ...cli.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // A watch that dies early fails with what it said, not with an empty stdout.
    const lines = () => {
      if (child.exitCode !== null) throw new Error(`concert admin watch --json exited ${child.exitCode} early: ${err}`);
      return out.split('\n').filter(Boolean).length;
    };
    await expect.poll(lines, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
    // Ctrl-C is an interrupt, as everywhere in the CLI: exit status 130 (q is the quit that exits 0).
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    // The interrupt is the last line on stderr; a refresh late by 3 s on a busy machine may have
    // put stale notices before it, and nothing else may be there.
    const errLines = err.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(errLines.at(-1)).toEqual({ error: { code: 'INTERRUPTED', appCode: null, message: 'Interrupted' } });
    for (const line of errLines.slice(0, -1)) expect(Object.keys(line)).toEqual(['stale']);
    const snapshots = out
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { at: string; concertId: number; line: { state: string; waiting: number; admissionsPerMinute: number[] }; shows: Array<{ available: number; bookingOpensAt: string }> });
    expect(snapshots.length).toBeGreaterThanOrEqual(3);
    for (const s of snapshots) {
      expect(s.concertId).toBe(concertId);
      expect(s.line.state).toBe('OPEN');
      expect(s.line.admissionsPerMinute).toHaveLength(30);
      expect(s.shows.map((x) => x.available)).toEqual([10, 10]);
      // Each show says when its booking opens (here already open: before the snapshot).
      for (const x of s.shows) expect(Date.parse(x.bookingOpensAt)).toBeLessThanOrEqual(Date.parse(s.at));
    }
    // About a second apart (each gap also carries the jitter of one request's latency).
    const span = Date.parse(snapshots.at(-1)!.at) - Date.parse(snapshots[0]!.at);
    expect(span / (snapshots.length - 1)).toBeGreaterThanOrEqual(700);
    expect(span / (snapshots.length - 1)).toBeLessThan(2_500);

    // --count stops by itself; a bad concert is the API's 404 with its appCode.
    const two = await concert(['--admin-key', ADMIN_KEY, '--json', 'admin', 'watch', String(concertId), '--count', '2'], cli.env);
    expect(two.code).toBe(0);
    expect(two.stdout.trim().split('\n')).toHaveLength(2);
    const missing = await concert(['--admin-key', ADMIN_KEY, '--json', 'admin', 'watch', '999999', '--count', '1'], cli.env);
    expect(missing.code).toBe(1);
    expect(missing.error().appCode).toBe('CONCERT_NOT_FOUND');
  });
});
