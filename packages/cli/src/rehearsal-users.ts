import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseJsonFile } from './json-file.ts';
import { apiKey } from './session.ts';

/** A rehearsal fan `simulate` made, and the shows it has bought seats of (the ticket limit is per show). */
export interface RehearsalUser {
  userId: number;
  boughtOn: number[];
}

interface PoolFile {
  version: 1;
  apis: Record<string, RehearsalUser[]>;
}

/**
 * The users `simulate` made, per API, kept next to the session file, so the next rehearsal reuses
 * them instead of adding N more users to the database each run. Users cannot be deleted without
 * breaking the audit (their ledgers and tickets stay), so reuse is what keeps the table from growing.
 */
export class RehearsalPool {
  constructor(
    readonly file: string,
    readonly api: string,
  ) {}

  /** Up to `n` users who have bought nothing of `scheduleId` (so the 4-seat limit cannot bite). */
  take(n: number, scheduleId: number): RehearsalUser[] {
    return this.read().filter((u) => !u.boughtOn.includes(scheduleId)).slice(0, n);
  }

  /** Records new users and what everyone bought, and forgets users that could not be used. */
  update(added: number[], boughtOn: Map<number, number>, dropped: number[]): void {
    const data = this.readFile();
    const key = apiKey(this.api);
    const users = (data.apis[key] ?? []).filter((u) => !dropped.includes(u.userId));
    for (const userId of added) users.push({ userId, boughtOn: [] });
    for (const u of users) {
      const scheduleId = boughtOn.get(u.userId);
      if (scheduleId !== undefined && !u.boughtOn.includes(scheduleId)) u.boughtOn.push(scheduleId);
    }
    data.apis[key] = users;
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`);
    renameSync(tmp, this.file);
  }

  private read(): RehearsalUser[] {
    return this.readFile().apis[apiKey(this.api)] ?? [];
  }

  private readFile(): PoolFile {
    try {
      const parsed = parseJsonFile(readFileSync(this.file, 'utf8')) as Partial<PoolFile>;
      if (parsed.version === 1 && parsed.apis && typeof parsed.apis === 'object') return { version: 1, apis: parsed.apis };
    } catch {
      // Missing or unreadable: no users to reuse; the next write replaces it.
    }
    return { version: 1, apis: {} };
  }
}
