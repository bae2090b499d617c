import Table from 'cli-table3';
import pc from 'picocolors';
import cliTruncate from 'cli-truncate';
import stringWidth from 'string-width';

export type Colors = ReturnType<typeof pc.createColors>;

/** Colours only for a terminal, and never when NO_COLOR is set (https://no-color.org); FORCE_COLOR forces them on. */
export function colorsFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): Colors {
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  const enabled = env.NO_COLOR !== undefined && env.NO_COLOR !== '' ? false : forced || stream.isTTY === true;
  return pc.createColors(enabled);
}

export const plain: Colors = pc.createColors(false);

/** Money is a whole number of won. */
export function won(amount: number): string {
  const sign = amount < 0 ? '-' : '';
  return `${sign}₩${Math.abs(amount).toLocaleString('en-US')}`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** A moment in the machine's local time zone: `2026-11-30 19:00 Mon`. */
export function localTime(d: Date, opts: { seconds?: boolean; weekday?: boolean } = {}): string {
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}${opts.seconds ? `:${pad(d.getSeconds())}` : ''}`;
  return `${date} ${time}${opts.weekday === false ? '' : ` ${WEEKDAYS[d.getDay()]}`}`;
}

/** `4m 05s`, `1h 02m`, `12s`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
}

/** The time of day alone, `14:05:09`: for a moment within the next minutes. */
export function clockTime(d: Date): string {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A wait told roughly, as people say it: `in about 40 s`, `in about 1 min`, `in about 2 h`. */
export function inAbout(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return `in about ${s} s`;
  const min = Math.round(s / 60);
  return min < 60 ? `in about ${min} min` : `in about ${Math.round(min / 60)} h`;
}

/** A measured time, to the millisecond below a second: `850 ms`, `1.25 s`, `2m 05.3s`. */
export function elapsed(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)}m ${((ms % 60_000) / 1000).toFixed(1).padStart(4, '0')}s`;
}

/** How long is left until `until`, or `expired`. */
export function timeLeft(until: Date, now: Date): string {
  const ms = until.getTime() - now.getTime();
  return ms <= 0 ? 'expired' : `${duration(ms)} left`;
}

export function table(c: Colors, head: string[], rows: Array<Array<string | number>>, opts: { align?: Array<'left' | 'right'> } = {}): string {
  const t = new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [], compact: true },
    ...(opts.align ? { colAligns: opts.align } : {}),
  });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

/** Label: value lines, labels aligned. */
export function fields(c: Colors, pairs: Array<[string, string]>): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${c.dim(k.padEnd(w))}  ${v}`).join('\n');
}

export function statusColor(c: Colors, status: string): string {
  switch (status) {
    case 'PAID':
    case 'ACTIVE':
    case 'COMPLETED':
    case 'AVAILABLE':
    case 'ACCEPTED':
    case 'DELIVERED':
      return c.green(status);
    case 'HELD':
    case 'WAITING':
    case 'OFFERED':
    case 'PENDING':
    case 'REFUNDED':
      return c.yellow(status);
    case 'EXPIRED':
    case 'CANCELLED':
    case 'SOLD':
    case 'LAPSED':
    case 'FAILED':
    case 'SOLD_OUT':
      return c.red(status);
    default:
      return status;
  }
}

/** A bar of `width` cells, `fraction` of them filled. */
export function bar(fraction: number, width = 20): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`;
}

/** How many terminal cells `s` takes: colour codes none, East Asian wide characters and emoji two (string-width). */
export const displayWidth = (s: string): number => stringWidth(s);

/**
 * `s` cut to at most `width` cells, ending in `…` when cut, its colour codes kept and closed
 * (cli-truncate, on string-width and slice-ansi). A line redrawn in place must fit the terminal:
 * one that wraps leaves its wrapped part behind at every redraw.
 */
export const fitWidth = (s: string, width: number): string => cliTruncate(s, width);
