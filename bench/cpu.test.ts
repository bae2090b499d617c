import { beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * A reading of PostgreSQL's CPU lists every `postgres` process's utime+stime, and reads the
 * cutime+cstime of those reaped. A backend reaped by the postmaster between the two (a pgbench
 * run's backends exit just as its run ends and the closing reading is taken) was counted twice:
 * its own seconds, and its whole life again in the postmaster's cutime growth; in the opening
 * reading it took its whole life off the window (found by a review). A reading is now taken
 * again until no reaping happened across it.
 * A fake /proc: postmaster pid 10, one backend pid 20 that spends 1 s during the window.
 */
const proc = { backendAlive: true, backendTicks: 0, postmasterCutime: 0, reapOnListing: false };
vi.mock('node:fs', () => ({
  readdirSync: () => (proc.backendAlive ? ['10', '20', 'self'] : ['10', 'self']),
  readFileSync: (file: string) => {
    if (file === '/proc/stat') return 'cpu  0 0 0 0 0 0 0 0\n';
    const [, pid, what] = file.split('/').slice(1);
    if (what === 'comm') return 'postgres\n';
    if (what === 'schedstat') return '0 0 0\n';
    if (pid === '20') {
      if (!proc.backendAlive) throw new Error('ENOENT');
      const line = `20 (postgres) S ${'0 '.repeat(10)}${proc.backendTicks} 0 0 0 0`;
      // Reaped right after its listing, before the second pass reads the postmaster.
      if (proc.reapOnListing) {
        proc.backendAlive = false;
        proc.postmasterCutime += proc.backendTicks;
      }
      return line;
    }
    if (pid === '10') return `10 (postgres) S ${'0 '.repeat(10)}0 0 ${proc.postmasterCutime} 0 0`;
    return `${pid} (node) S ${'0 '.repeat(10)}0 0 0 0 0`;
  },
}));

const { metered } = await import('./cpu.ts');
const redis = { info: async () => 'used_cpu_user:0\nused_cpu_sys:0\n' } as never;

describe('PostgreSQL CPU of a metered window', () => {
  beforeEach(() => Object.assign(proc, { backendAlive: true, backendTicks: 0, postmasterCutime: 0, reapOnListing: false }));

  it('a backend reaped before the after-reading counts its 1 s once', async () => {
    const { cpu } = await metered(1, redis, async () => {
      proc.backendTicks = 100;
      proc.backendAlive = false;
      proc.postmasterCutime = 100;
    });
    expect(cpu.postgres + cpu.postgresReaped).toBeCloseTo(1, 5);
  });

  it('a backend reaped between the after-reading\'s two passes counts its 1 s once', async () => {
    const { cpu } = await metered(1, redis, async () => {
      proc.backendTicks = 100;
      proc.reapOnListing = true;
    });
    expect(cpu.postgres + cpu.postgresReaped).toBeCloseTo(1, 5);
  });

  it('a backend reaped between the before-reading\'s two passes never makes the window negative', async () => {
    proc.backendTicks = 500; // 5 s spent before the window; it exits as the window opens
    proc.reapOnListing = true;
    const { cpu } = await metered(1, redis, async () => {
      proc.reapOnListing = false;
    });
    expect(cpu.postgres + cpu.postgresReaped).toBeCloseTo(0, 5);
  });
});
