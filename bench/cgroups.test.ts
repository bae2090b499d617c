import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childrenOf, cpuGroupOf, serviceGroups, sweepStale } from './cgroups.ts';

const V1_TEXT = '9:name=systemd:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/concert-bench-api\n0::/\n';

describe('cpuGroupOf', () => {
  it('reads the cpu controller’s line of cgroup v1, and the unified line of v2', () => {
    expect(cpuGroupOf(V1_TEXT, 1)).toBe('/concert-bench-api');
    expect(cpuGroupOf('3:cpu,cpuacct:/system.slice/postgresql@15-main.service\n0::/\n', 1)).toBe('/system.slice/postgresql@15-main.service');
    expect(cpuGroupOf('0::/system.slice/postgresql@15-main.service\n', 2)).toBe('/system.slice/postgresql@15-main.service');
    expect(cpuGroupOf(V1_TEXT, 2)).toBe('/');
    expect(cpuGroupOf('', 1)).toBe('/');
  });
});

describe('serviceGroups', () => {
  // This machine's own hierarchy: it needs root, as the bench does.
  const groups = serviceGroups();
  // And a runner in the root group: where a service manager placed it, nothing here would move.
  const usable = !('unavailable' in groups) && groups.groupOf(process.pid) === '/';
  const children: ChildProcess[] = [];
  /** A process in a process group of its own, so that the shell's children are killed with it. */
  const sleeper = (args: string[] = ['sleep', '60'], stdin: 'ignore' | 'pipe' = 'ignore') => {
    const c = spawn(args[0]!, args.slice(1), { stdio: [stdin, 'ignore', 'ignore'], detached: true });
    children.push(c);
    return c;
  };
  afterEach(() => {
    // A failed test's groups go too (restore is idempotent).
    if (!('unavailable' in groups)) groups.restore();
    for (const c of children.splice(0)) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it('says why when there is no cpu controller to use', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cgroups-'));
    try {
      expect(serviceGroups({ v1: path.join(dir, 'cpu'), v2: dir })).toEqual({ unavailable: 'no cgroup cpu controller (neither v1 nor v2)' });
      // A v2 hierarchy without the cpu controller is not used either.
      writeFileSync(path.join(dir, 'cgroup.controllers'), 'memory pids\n');
      expect(serviceGroups({ v1: path.join(dir, 'cpu'), v2: dir })).toEqual({ unavailable: 'no cgroup cpu controller (neither v1 nor v2)' });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('finds the children of a process', async () => {
    const parent = sleeper(['sh', '-c', 'sleep 60 & sleep 60 & wait']);
    await expect.poll(() => childrenOf(parent.pid!).length).toBe(2);
  });

  it.runIf(usable)('moves a process and a process tree into groups of their own, and back', async () => {
    if ('unavailable' in groups) return;
    const one = sleeper();
    const tree = sleeper(['sh', '-c', 'sleep 60 & sleep 60 & wait']);
    await expect.poll(() => childrenOf(tree.pid!).length).toBe(2);
    const name = `test-${process.pid}`;
    expect(groups.groupOf(one.pid!)).toBe('/');
    expect(groups.place(`${name}-one`, one.pid!)).toBe(`${name}-one in its own group`);
    expect(groups.groupOf(one.pid!)).toBe(`/concert-bench-${name}-one`);
    expect(groups.placeTree(`${name}-tree`, tree.pid!)).toBe(`${name}-tree in its own group`);
    for (const pid of [tree.pid!, ...childrenOf(tree.pid!)]) expect(groups.groupOf(pid)).toBe(`/concert-bench-${name}-tree`);
    const base = groups.version === 1 ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
    groups.restore();
    for (const pid of [one.pid!, tree.pid!, ...childrenOf(tree.pid!)]) expect(groups.groupOf(pid)).toBe('/');
    expect(existsSync(path.join(base, `concert-bench-${name}-one`))).toBe(false);
    expect(existsSync(path.join(base, `concert-bench-${name}-tree`))).toBe(false);
  });

  it.runIf(usable)('leaves a process in a group that is not its own (a service manager’s) where it is', () => {
    if ('unavailable' in groups) return;
    const base = groups.version === 1 ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
    const foreign = path.join(base, `service-manager-test-${process.pid}`);
    const one = sleeper();
    mkdirSync(foreign);
    try {
      writeFileSync(path.join(foreign, 'cgroup.procs'), String(one.pid));
      expect(groups.place(`test-${process.pid}-foreign`, one.pid!)).toBe(`test-${process.pid}-foreign left in /service-manager-test-${process.pid}`);
      groups.restore();
      expect(groups.groupOf(one.pid!)).toBe(`/service-manager-test-${process.pid}`);
    } finally {
      writeFileSync(path.join(base, 'cgroup.procs'), String(one.pid));
      rmdirSync(foreign);
    }
  });

  // A bench killed before its restore left PostgreSQL in its group: the next run read that as a
  // service manager's placement, left it there, and never moved it back.
  it.runIf(usable)('takes over a group of its own that a killed run left behind, and restores it', () => {
    if ('unavailable' in groups) return;
    const name = `test-${process.pid}-stale`;
    const stale = sleeper();
    const base = groups.version === 1 ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
    // What the killed run left: its group, with the process still in it.
    const left = path.join(base, `concert-bench-${name}`);
    mkdirSync(left);
    try {
      writeFileSync(path.join(left, 'cgroup.procs'), String(stale.pid));
      expect(groups.place(name, stale.pid!)).toBe(`${name} in its own group`);
      groups.restore();
      expect(groups.groupOf(stale.pid!)).toBe('/');
      expect(existsSync(left)).toBe(false);
    } finally {
      if (existsSync(left)) {
        writeFileSync(path.join(base, 'cgroup.procs'), String(stale.pid));
        rmdirSync(left);
      }
    }
  });

  it.runIf(usable)('a backend forked after the move is in its parent’s group, and restore moves it back too', async () => {
    if ('unavailable' in groups) return;
    // A shell that forks a sleep whenever it is told (a line on stdin), as a postmaster forks backends.
    const parent = sleeper(['sh', '-c', 'while read l; do sleep 60 & done'], 'pipe');
    const name = `test-${process.pid}-fork`;
    groups.placeTree(name, parent.pid!);
    parent.stdin!.write('go\n');
    await expect.poll(() => childrenOf(parent.pid!).length).toBe(1);
    const [child] = childrenOf(parent.pid!);
    expect(groups.groupOf(child!)).toBe(`/concert-bench-${name}`);
    groups.restore();
    expect(groups.groupOf(child!)).toBe('/');
    expect(readFileSync(`/proc/${child}/cgroup`, 'utf8')).not.toContain('concert-bench');
  });

  // A killed bench's group under another name than this run's stayed behind, empty or not, and
  // a run with BENCH_GROUPS=off left PostgreSQL in it while saying "in no CPU group".
  it.runIf(usable)('sweepStale empties and removes every group a killed run left, whatever its name', () => {
    if ('unavailable' in groups) return;
    const base = groups.version === 1 ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
    const left = [path.join(base, `concert-bench-test-${process.pid}-swept`), path.join(base, `concert-bench-test-${process.pid}-empty`)];
    const one = sleeper();
    for (const dir of left) mkdirSync(dir);
    try {
      writeFileSync(path.join(left[0]!, 'cgroup.procs'), String(one.pid));
      expect(sweepStale()).toEqual(expect.arrayContaining(left.map((d) => path.basename(d))));
      expect(groups.groupOf(one.pid!)).toBe('/');
      for (const dir of left) expect(existsSync(dir)).toBe(false);
    } finally {
      for (const dir of left) {
        if (!existsSync(dir)) continue;
        for (const pid of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) writeFileSync(path.join(base, 'cgroup.procs'), pid);
        rmdirSync(dir);
      }
    }
  });
});
