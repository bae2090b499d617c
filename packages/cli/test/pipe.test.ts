import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from './helpers.ts';

// `concert … | head`: the reader closes the pipe after the lines it wanted, and the CLI's next
// write fails with EPIPE. Here the reader is gone before the first write, so every write fails.
let bin: string;
beforeAll(async () => {
  bin = await buildOnce();
});

function withReaderGone(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONCERT_API_URL: 'http://127.0.0.1:9' } });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('a pipe whose reader stops reading', () => {
  it('ends the CLI quietly with status 141, as SIGPIPE ends other programs, not with an EPIPE stack trace', async () => {
    for (const args of [['--help'], ['queue', 'join', '--help'], ['--version']]) {
      const r = await withReaderGone(args);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(141);
    }
  });
});
