import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { UsageError } from './errors.ts';
import { parseJsonFile } from './json-file.ts';

/** A queue token remembered for one API, user and concert, so commands chain without passing it around. */
export interface SavedToken {
  api: string;
  user: string;
  concertId: number;
  token: string;
  status: 'PRE_QUEUE' | 'WAITING' | 'ACTIVE' | 'EXPIRED' | 'SOLD_OUT';
  activeUntil: string | null;
  /** When the server let this token in (its clock); absent in files written before it was kept. */
  enteredAt?: string;
  savedAt: string;
}

interface SessionFile {
  version: 1;
  tokens: Record<string, SavedToken>;
}

/** `$CONCERT_CONFIG_DIR/session.json`, else `$XDG_CONFIG_HOME/concert/session.json`, else `~/.config/concert/session.json`. */
export function sessionPath(env: NodeJS.ProcessEnv): string {
  if (env.CONCERT_CONFIG_DIR) return path.join(env.CONCERT_CONFIG_DIR, 'session.json');
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || homedir(), '.config');
  return path.join(base, 'concert', 'session.json');
}

/** The API's address normalised, so `http://127.0.0.1:3000/` and `http://127.0.0.1:3000` share tokens. */
export function apiKey(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return url;
  }
}

/**
 * Read fresh on every access and replaced atomically on every write (tokens are secrets: mode 0600),
 * so a script's successive commands see each other's tokens. A change (read, change, replace) holds
 * a lock file beside it, so commands run side by side keep each other's tokens: without it, the
 * last to replace the file dropped what the others had added meanwhile (8 of 20 fans joined at once
 * by a script lost their tokens, and their holds were TOKEN_INVALID).
 */
export class SessionStore {
  constructor(readonly file: string) {}

  get(api: string, user: string, concertId: number): SavedToken | undefined {
    return this.read().tokens[key(api, user, concertId)];
  }

  set(entry: Omit<SavedToken, 'savedAt' | 'api'> & { api: string }): void {
    const api = apiKey(entry.api);
    this.change((data) => {
      data.tokens[key(api, entry.user, entry.concertId)] = { ...entry, api, savedAt: new Date().toISOString() };
      return true;
    });
  }

  delete(api: string, user: string, concertId: number): void {
    if (!this.read().tokens[key(api, user, concertId)]) return;
    this.change((data) => delete data.tokens[key(api, user, concertId)]);
  }

  /**
   * Reads, changes and replaces the file under an exclusive lock file (`session.json.lock`). The
   * change takes a millisecond or two; a lock older than LOCK_STALE_MS was left by a process that
   * died holding it and is broken. Never waits more than LOCK_WAIT_MS: past that the change is
   * made without the lock (a lost update, as before, rather than a command that hangs).
   */
  private change(fn: (data: SessionFile) => boolean): void {
    const lock = `${this.file}.lock`;
    let fd: number | undefined;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      for (const deadline = Date.now() + LOCK_WAIT_MS; fd === undefined && Date.now() < deadline; ) {
        try {
          fd = openSync(lock, 'wx', 0o600);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          if (lockAge(lock) > LOCK_STALE_MS) rmSync(lock, { force: true });
          else Atomics.wait(PAUSE, 0, 0, 5);
        }
      }
    } catch (err) {
      throw cannotWrite(this.file, err);
    }
    try {
      const data = this.read();
      if (fn(data)) this.write(data);
    } finally {
      if (fd !== undefined) {
        closeSync(fd);
        rmSync(lock, { force: true });
      }
    }
  }

  list(): SavedToken[] {
    return Object.values(this.read().tokens);
  }

  private read(): SessionFile {
    try {
      const parsed = parseJsonFile(readFileSync(this.file, 'utf8')) as Partial<SessionFile>;
      if (parsed && parsed.version === 1 && parsed.tokens && typeof parsed.tokens === 'object') return { version: 1, tokens: parsed.tokens };
    } catch {
      // Missing or unreadable: start afresh; a corrupt file is replaced on the next write.
    }
    return { version: 1, tokens: {} };
  }

  private write(data: SessionFile): void {
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, this.file);
    } catch (err) {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // Nothing was written there.
      }
      throw cannotWrite(this.file, err);
    }
  }
}

const LOCK_WAIT_MS = 2_000;
const LOCK_STALE_MS = 10_000;
/** A few milliseconds' pause between tries for the lock (Atomics.wait: the change is synchronous). */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

function lockAge(lock: string): number {
  try {
    return Date.now() - statSync(lock).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * A config directory that is a file, or read-only: Node's own `EEXIST: file already exists, mkdir …`
 * came out as an INTERNAL error, naming neither the session file nor the setting.
 */
function cannotWrite(file: string, err: unknown): UsageError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new UsageError(`Cannot write the session file ${file} (${code})`, 'Point CONCERT_CONFIG_DIR (else XDG_CONFIG_HOME, else HOME) at a directory you can write');
}

function key(api: string, user: string, concertId: number): string {
  return `${apiKey(api)} ${user} ${concertId}`;
}
