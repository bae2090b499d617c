import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { admin, client, createTestDatabase, outcome, recordStatements, startApi, testEnv } from '../../../test/harness.ts';

/**
 * A sale opening: thousands of fans this process has never seen enter at once, and each one's
 * user was looked up by a query of its own (5,000 enters at once spent a quarter of the API's CPU
 * on them, `pnpm bench`). The lookups of one turn of the event loop go in one statement.
 */
describe('users new to a process, arriving at once', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('are looked up in a few statements, not one each; a phantom among them is refused, and found once it exists', { timeout: 60_000 }, async () => {
    const db = await createTestDatabase();
    const api = await startApi(testEnv(db.url, { RATE_LIMITS: 'off' }), { background: false });
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    try {
      const now = Date.now();
      const { concertId } = await admin(api.url).admin.concerts.create.mutate({
        title: 'Lookups',
        schedules: [{ startsAt: new Date(now + 86_400_000), bookingOpensAt: new Date(now - 60_000), seatCount: 10 }],
      });
      const fans = (await sql.query<{ id: string }>(`INSERT INTO users (name) SELECT 'fan ' || g FROM generate_series(1, 200) g RETURNING id`)).rows.map((r) => Number(r.id));
      const phantom = fans.at(-1)! + 1_000;
      // Every statement the API sends on its database connections, from here on.
      const sent = recordStatements();

      // From another process, as fans are: in this one, the requests would take turns with the server.
      // The users' table is locked until every enter has asked for its user: on a busy machine the
      // enters arrive spread out, each lookup ended before the next came, and they went one a
      // statement (120 statements for 201 users in one CI run). Locked, the first lookups wait, and
      // the users asked for meanwhile wait together for the next statement, as at a real opening.
      const asked = vi.spyOn(api.core.users, 'assertExists');
      await sql.query('BEGIN');
      await sql.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      const entering = enterFromAnotherProcess(api.url, concertId, [...fans, phantom]);
      await vi.waitFor(() => expect(asked.mock.calls.length).toBeGreaterThanOrEqual(fans.length + 1), { timeout: 45_000, interval: 20 });
      await sql.query('COMMIT');
      const got = await entering;
      expect(got.filter((g) => g === 'OK')).toHaveLength(fans.length);
      expect(got.at(-1)).toBe('USER_NOT_FOUND');
      const lookups = sent.filter((s) => /from "users"/i.test(s));
      console.log(`${fans.length + 1} users new to the process entered at once: ${lookups.length} lookup statement(s)`);
      expect(lookups.length).toBeGreaterThan(0);
      expect(lookups.length).toBeLessThan(fans.length / 2);

      // Known now: no statement at all.
      sent.length = 0;
      await Promise.all(fans.slice(0, 20).map((userId) => client(api.url, { userId }, { batch: false }).queue.enter.mutate({ concertId })));
      expect(sent.filter((s) => /from "users"/i.test(s))).toEqual([]);

      // A refusal is not remembered: the user, made now, is found.
      await sql.query(`INSERT INTO users (id, name) OVERRIDING SYSTEM VALUE VALUES ($1, 'late fan')`, [phantom]);
      expect(await outcome(client(api.url, { userId: phantom }, { batch: false }).queue.enter.mutate({ concertId }))).toBe('OK');
    } finally {
      await sql.end();
      await api.close();
      await db.drop();
    }
  });
});

/** Each user's queue.enter, all at once from a child process: 'OK' or the error's appCode, in order. */
async function enterFromAnotherProcess(url: string, concertId: number, userIds: number[]): Promise<string[]> {
  const script = `
    const [url, concertId, ids] = [process.argv[1], Number(process.argv[2]), JSON.parse(process.argv[3])];
    // A connection each first (kept alive), so that the enters arrive together, as a sale's opening does.
    Promise.all(ids.map(() => fetch(url + '/health').then((r) => r.text()))).then(() => Promise.all(ids.map(async (id) => {
      const res = await fetch(url + '/trpc/queue.enter', { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': String(id) }, body: JSON.stringify({ json: { concertId } }) });
      const body = await res.json();
      return body.result ? 'OK' : String(body.error?.json?.data?.appCode ?? res.status);
    }))).then((got) => process.stdout.write(JSON.stringify(got)));`;
  const child = spawn(process.execPath, ['-e', script, url, String(concertId), JSON.stringify(userIds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  expect(code).toBe(0);
  return JSON.parse(out) as string[];
}
