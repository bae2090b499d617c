import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it, vi } from 'vitest';
import { admin, freePort, ROOT, useApi } from '../../../test/harness.ts';
import { buySeats, makeShow } from './aftersale.shared.ts';

/**
 * docs/webhooks.md's receiver, as a TypeScript receiver copies it. Its snippet passed Node's
 * `request.headers` (values string | string[] | undefined) to the library's verify, which takes
 * strings: under `strict` it did not compile (TS2345), and it named `rawBody` and `request`
 * without saying where they come from (found writing a receiver from the page). The snippet is
 * now a whole receiver: it must type-check under strict, and run, verifying a live delivery.
 */
describe('the receiver in docs/webhooks.md', () => {
  const suite = useApi();

  it('type-checks under strict and verifies a delivery from a live server', { timeout: 60_000 }, async () => {
    const md = await readFile(path.join(ROOT, 'docs/webhooks.md'), 'utf8');
    const snippet = /```ts\n([\s\S]*?)```/.exec(md)?.[1];
    expect(snippet).toBeDefined();
    // Inside packages/api, so that `standardwebhooks` resolves as it would in a receiver's project.
    const dir = await mkdtemp(path.join(ROOT, 'packages/api/test/.receiver-'));
    const file = path.join(dir, 'receiver.ts');
    await writeFile(file, snippet!);
    try {
      const program = ts.createProgram([file], {
        strict: true,
        noEmit: true,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        types: ['node'],
        skipLibCheck: true,
      });
      const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      expect(errors).toEqual([]);

      const port = await freePort();
      const created = await admin(suite.api.url).admin.webhooks.create.mutate({ url: `http://127.0.0.1:${port}/hooks`, events: ['reservation.held'] });
      // Node 24 runs the TypeScript as it is (type stripping).
      const receiver = spawn(process.execPath, [file], { env: { ...process.env, PORT: String(port), CONCERT_WEBHOOK_SECRET: created.secret }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      receiver.stdout.on('data', (c: Buffer) => (out += c.toString()));
      receiver.stderr.on('data', (c: Buffer) => (out += c.toString()));
      try {
        const { concertId, scheduleId, userIds } = await makeShow(suite.api.url, 1, 1);
        const held = await buySeats(suite.api.url, userIds[0]!, concertId, scheduleId, [1]);
        await vi.waitFor(() => expect(out).toContain(`reservation.held ${held.reservationId}`), { timeout: 20_000, interval: 100 });
        const { items } = await admin(suite.api.url).admin.webhooks.deliveries.query({ webhookId: created.webhookId });
        expect(items.map((d) => [d.status, d.httpStatus])).toEqual([['DELIVERED', 204]]);
      } finally {
        receiver.kill();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
