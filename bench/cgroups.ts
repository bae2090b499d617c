import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * One CPU group per service, the way a service manager runs them (systemd gives every service a
 * cgroup of its own, and the services weigh the same however many processes each has).
 *
 * Why the bench needs it: started by hand (`pg_ctlcluster`, a shell), nothing is in a cgroup,
 * and the kernel's autogroup (`/proc/sys/kernel/sched_autogroup_enabled`) shares the cores
 * between sessions instead. PostgreSQL calls setsid() in every child of the postmaster
 * (InitPostmasterChild, so that the postmaster can signal a child's whole process group), so
 * each backend is a session, and 20 busy backends weighed 20 times the single-threaded API (and
 * its load generator beside it, in the bench's session): under the holds the API's thread was
 * runnable but waiting for a core 47–48% of the time while the cores were 88–90% busy. That is this machine's setup,
 * not a deployment's, and it also explains why renicing the API never helped (a nice value only
 * counts inside its autogroup).
 *
 * Only processes in the root cgroup are moved (one a service manager placed is left where it is),
 * or in a group of this module's that a bench killed before its restore left behind; `restore()`
 * moves them back and removes the groups. Needs root and the `cpu` controller
 * (cgroup v1's hierarchy, or v2's with `cpu` available); otherwise `unavailable` says why.
 */
export interface ServiceGroups {
  /** Moves a process (every thread of it) into the group `name`, made on first use; says what it did. */
  place(name: string, pid: number): string;
  /** Moves PostgreSQL's postmaster and its current children into `name` (new backends follow the postmaster). */
  placeTree(name: string, rootPid: number): string;
  /**
   * Every process in the groups goes back to the root cgroup, and the groups are removed (a group
   * that cannot be, because a process forked into it at that moment, is kept and tried again next
   * time). `final` (the default) also undoes what was turned on to make them (v2's cpu controller);
   * a restore in the middle of a run passes false, so that groups made again are weighted again.
   */
  restore(opts?: { final?: boolean }): void;
  /** The cgroup a process is in (for the CPU controller), '/' for the root. */
  groupOf(pid: number): string;
  readonly version: 1 | 2;
}

const V1 = '/sys/fs/cgroup/cpu';
const V2 = '/sys/fs/cgroup';
const PREFIX = 'concert-bench-';

/** The groups a killed bench left behind: their processes go back to the root, and they are removed. */
export function sweepStale(root: { v1: string; v2: string } = { v1: V1, v2: V2 }): string[] {
  const base = existsSync(path.join(root.v1, 'cpu.shares')) ? root.v1 : existsSync(path.join(root.v2, 'cgroup.controllers')) ? root.v2 : undefined;
  if (!base) return [];
  const swept: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(base).filter((e) => e.startsWith(PREFIX));
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (emptyInto(path.join(base, entry), base)) swept.push(entry);
  }
  return swept;
}

/** Moves every process of `group` into `base`'s own, until it stays empty (new ones may fork meanwhile), then removes it. */
function emptyInto(group: string, base: string): boolean {
  for (let pass = 0; pass < 20; pass++) {
    let pids: string[];
    try {
      pids = readFileSync(path.join(group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    } catch {
      return false;
    }
    for (const pid of pids) {
      try {
        writeFileSync(path.join(base, 'cgroup.procs'), pid);
      } catch {
        // ended meanwhile
      }
    }
    try {
      rmdirSync(group);
      return true;
    } catch {
      // not empty yet: a process forked into it after the read
    }
  }
  return false;
}

export function serviceGroups(root: { v1: string; v2: string } = { v1: V1, v2: V2 }): ServiceGroups | { unavailable: string } {
  let version: 1 | 2;
  let base: string;
  /** Whether this turned the cpu controller on for the root's children (restore turns it off again). */
  let enabledCpu = false;
  if (existsSync(path.join(root.v1, 'cgroup.procs')) && existsSync(path.join(root.v1, 'cpu.shares'))) {
    version = 1;
    base = root.v1;
  } else if (existsSync(path.join(root.v2, 'cgroup.controllers')) && /\bcpu\b/.test(readFileSync(path.join(root.v2, 'cgroup.controllers'), 'utf8'))) {
    version = 2;
    base = root.v2;
    try {
      if (!/\bcpu\b/.test(readFileSync(path.join(base, 'cgroup.subtree_control'), 'utf8'))) {
        writeFileSync(path.join(base, 'cgroup.subtree_control'), '+cpu');
        enabledCpu = true;
      }
    } catch (err) {
      return { unavailable: `cannot enable the cpu controller in ${base} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
    }
  } else {
    return { unavailable: 'no cgroup cpu controller (neither v1 nor v2)' };
  }
  const made = new Set<string>();
  const groupOf = (pid: number): string => cpuGroupOf(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), version);
  const dir = (name: string) => path.join(base, `${PREFIX}${name}`);
  const move = (name: string, pid: number) => {
    if (!made.has(name)) {
      mkdirSync(dir(name), { recursive: true });
      made.add(name);
    }
    writeFileSync(path.join(dir(name), 'cgroup.procs'), String(pid));
  };
  // Writable only by root: find out now, with a group made and removed, rather than mid-run.
  try {
    mkdirSync(dir(`probe-${process.pid}`), { recursive: true });
    rmdirSync(dir(`probe-${process.pid}`));
  } catch (err) {
    return { unavailable: `cannot make a cgroup in ${base} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  // In the root, or in a group of ours that a bench killed before its restore left behind.
  const movable = (group: string) => group === '/' || group.startsWith(`/${PREFIX}`);
  return {
    version,
    groupOf,
    place(name, pid) {
      const now = groupOf(pid);
      if (!movable(now)) return `${name} left in ${now}`;
      move(name, pid);
      return `${name} in its own group`;
    },
    placeTree(name, rootPid) {
      const now = groupOf(rootPid);
      if (!movable(now)) return `${name} left in ${now}`;
      move(name, rootPid);
      for (const child of childrenOf(rootPid)) {
        try {
          if (movable(groupOf(child))) move(name, child);
        } catch {
          // ended meanwhile
        }
      }
      return `${name} in its own group`;
    },
    restore({ final = true } = {}) {
      for (const name of [...made]) {
        if (emptyInto(dir(name), base)) made.delete(name);
      }
      if (final && enabledCpu) {
        try {
          writeFileSync(path.join(base, 'cgroup.subtree_control'), '-cpu');
          enabledCpu = false;
        } catch {
          // another group uses it now: left on, as a service manager would have it
        }
      }
    },
  };
}

/** The CPU controller's cgroup path from a /proc/<pid>/cgroup text. */
export function cpuGroupOf(text: string, version: 1 | 2): string {
  for (const line of text.split('\n')) {
    const [, , controllers, where] = /^(\d+):([^:]*):(.*)$/.exec(line) ?? [];
    if (where === undefined) continue;
    if (version === 2 ? controllers === '' : controllers!.split(',').includes('cpu')) return where;
  }
  return '/';
}

/** Child processes of `pid` (from /proc/<n>/stat's fourth field). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: fields after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return out;
}
