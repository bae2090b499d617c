import { execFile } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import { buildOnce } from './helpers.ts';

// The installed command runs on whatever Node the user has; npm only warns about `engines`. On a
// Node older than the package's floor, `concert book` held the seats, then died at the pay question
// on a missing `node:util` export (error … (INTERNAL), exit 1), the hold left behind: it must refuse
// to start instead, saying which Node it needs. An older Node is played by a preload that changes
// `process.versions.node` (this machine has only the supported ones).
let bin: string;
beforeAll(async () => {
  bin = await buildOnce();
});

function onNode(version: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const preload = `data:text/javascript,Object.defineProperty(process.versions, "node", { value: ${JSON.stringify(version)} })`;
  const env: Record<string, string | undefined> = { ...process.env, CONCERT_API_URL: 'http://127.0.0.1:9' };
  delete env.FORCE_COLOR;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', preload, bin, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('an unsupported Node', () => {
  it('is refused at start, naming the Node it needs, in both output modes (exit 1, nothing on stdout)', { timeout: 60_000 }, async () => {
    expect(pkg.engines.node).toBe('>=20.17');
    const text = await onNode('18.20.8', ['--user', '1', 'book', '--concert', '1']);
    expect(text.code).toBe(1);
    expect(text.stdout).toBe('');
    expect(text.stderr).toBe('error: concert needs Node.js 20.17 or later; this is Node.js 18.20.8 (UNSUPPORTED_NODE)\nInstall a newer Node.js, then run concert again\n');
    const json = await onNode('20.16.0', ['--json', 'concerts']);
    expect(json.code).toBe(1);
    expect(json.stdout).toBe('');
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'UNSUPPORTED_NODE', appCode: null, message: 'concert needs Node.js 20.17 or later; this is Node.js 20.16.0' } });
  });

  it('lets the oldest supported Node and newer ones start', { timeout: 60_000 }, async () => {
    for (const version of ['20.17.0', '22.0.0', '24.21.0']) {
      const r = await onNode(version, ['--version']);
      expect(r, version).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    }
  });
});
