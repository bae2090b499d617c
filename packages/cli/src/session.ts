import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { UsageError } from './errors.ts';

/** A queue token remembered for one API, user and concert, so commands chain without passing it around. */
export interface SavedToken {
  api: string;
  user: string;
  concertId: number;
  token: string;
  status: 'PRE_QUEUE' | 'WAITING' | 'ACTIVE' | 'EXPIRED' | 'SOLD_OUT';
  activeUntil: string | null;
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
 * so a script's successive commands see each other's tokens. Two commands writing at the same
 * instant may lose one update; the token is then simply fetched again by `queue join`.
 */
export class SessionStore {
  constructor(readonly file: string) {}

  get(api: string, user: string, concertId: number): SavedToken | undefined {
    return this.read().tokens[key(api, user, concertId)];
  }

  set(entry: Omit<SavedToken, 'savedAt' | 'api'> & { api: string }): void {
    const data = this.read();
    const api = apiKey(entry.api);
    data.tokens[key(api, entry.user, entry.concertId)] = { ...entry, api, savedAt: new Date().toISOString() };
    this.write(data);
  }

  delete(api: string, user: string, concertId: number): void {
    const data = this.read();
    if (!data.tokens[key(api, user, concertId)]) return;
    delete data.tokens[key(api, user, concertId)];
    this.write(data);
  }

  list(): SavedToken[] {
    return Object.values(this.read().tokens);
  }

  private read(): SessionFile {
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<SessionFile>;
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
      // A config directory that is a file, or read-only: Node's own `EEXIST: file already exists,
      // mkdir …` came out as an INTERNAL error, naming neither the session file nor the setting.
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new UsageError(
        `Cannot write the session file ${this.file} (${code})`,
        'Point CONCERT_CONFIG_DIR (else XDG_CONFIG_HOME, else HOME) at a directory you can write',
      );
    }
  }
}

function key(api: string, user: string, concertId: number): string {
  return `${apiKey(api)} ${user} ${concertId}`;
}
