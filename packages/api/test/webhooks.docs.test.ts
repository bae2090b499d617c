import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
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

  /**
   * The receiver read its body with `rawBody += chunk`, decoding each chunk on its own: a body that
   * arrives in two chunks split inside a multi-byte character (a Korean concert title, a long
   * reservation over a real network's segments) read as U+FFFD twice, its signature failed, and
   * the receiver answered 400 to a genuine delivery (found sending such a body to the page's receiver).
   */
  it('verifies a genuine delivery whose body arrives split inside a UTF-8 character', { timeout: 60_000 }, async () => {
    const md = await readFile(path.join(ROOT, 'docs/webhooks.md'), 'utf8');
    const snippet = /```ts\n([\s\S]*?)```/.exec(md)![1]!;
    const dir = await mkdtemp(path.join(ROOT, 'packages/api/test/.receiver-'));
    const file = path.join(dir, 'receiver.ts');
    await writeFile(file, snippet);
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const port = await freePort();
    const receiver = spawn(process.execPath, [file], { env: { ...process.env, PORT: String(port), CONCERT_WEBHOOK_SECRET: secret }, stdio: 'ignore' });
    try {
      const id = randomUUID();
      const body = JSON.stringify({ id, type: 'reservation.held', createdAt: new Date().toISOString(), data: { reservation: { reservationId: randomUUID(), concertTitle: '아이유 콘서트' } } });
      const bytes = Buffer.from(body, 'utf8');
      const at = new Date();
      const head =
        `POST /hooks HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${bytes.length}\r\nconnection: close\r\n` +
        `webhook-id: ${id}\r\nwebhook-timestamp: ${Math.floor(at.getTime() / 1000)}\r\nwebhook-signature: ${new Webhook(secret).sign(id, at, body)}\r\n\r\n`;
      const cut = bytes.indexOf(Buffer.from('아', 'utf8')) + 1; // inside the character's three bytes
      const send = () =>
        new Promise<string>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => {
            socket.write(head);
            socket.write(bytes.subarray(0, cut));
            setTimeout(() => socket.end(bytes.subarray(cut)), 50);
          });
          let answer = '';
          socket.on('data', (c: Buffer) => (answer += c.toString()));
          socket.on('error', reject);
          socket.on('close', () => resolve(answer.split('\r\n')[0]!));
        });
      const status = await vi.waitFor(send, { timeout: 20_000, interval: 200 });
      expect(status).toBe('HTTP/1.1 204 No Content');
    } finally {
      receiver.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
