import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useApi } from '../../../test/harness.ts';
import { REST_ROUTES } from '../src/rest/rest.routes.ts';

const run = promisify(execFile);

/** Debian's chromium (.ci/run installs it); without it this suite cannot run and says so. */
function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      // not on the PATH
    }
  }
  return undefined;
}
const chromium = findChromium();
const NO_CHROMIUM = 'no chromium on the PATH (Debian: apt-get install -y chromium; .ci/run installs it)';
// Skipped, saying so, only outside CI: in CI (CI=true, as .ci/run sets) a missing chromium fails.
const skipRendering = !chromium && !process.env.CI;
if (skipRendering) console.warn(`rest.docs: SKIPPED — ${NO_CHROMIUM}`);

/** Headless Chromium that can reach nothing but 127.0.0.1 (any other host fails to resolve). */
async function headless(url: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const profile = await mkdtemp(path.join(tmpdir(), 'concert-chromium-'));
  try {
    return await run(
      chromium!,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        `--user-data-dir=${profile}`,
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
        '--enable-logging=stderr',
        '--virtual-time-budget=20000',
        ...args,
        url,
      ],
      { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
    );
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

describe('GET /docs', () => {
  const suite = useApi();

  it.skipIf(skipRendering)('renders every operation in headless Chromium, with nothing fetched from beyond the server', { timeout: 180_000 }, async () => {
    if (!chromium) throw new Error(`rest.docs: ${NO_CHROMIUM}`);
    const { stdout, stderr } = await headless(`${suite.api.url}/docs`, ['--dump-dom']);
    // The renderer marks where long words may break ("sold<wbr>-out").
    const dom = stdout.replaceAll('<wbr>', '');
    // Scalar rendered the document: its title and every operation's summary are in the DOM.
    expect(dom).toContain('Concert booking');
    const missing = REST_ROUTES.filter((r) => !dom.includes(r.summary.replaceAll('&', '&amp;'))).map((r) => `${r.method} ${r.path}: ${r.summary}`);
    expect(missing).toEqual([]);
    for (const tag of ['catalog', 'queue', 'reservations', 'payments', 'balance', 'waitlist']) expect(dom).toContain(tag);
    // The page's CSP lets it reach only this server: nothing was refused, so nothing was attempted.
    expect(stderr.split('\n').filter((l) => /Refused to|Content Security Policy/.test(l))).toEqual([]);
  });

  it('serves the renderer from the server: the page, its bundle (gzip or not) and the document', async () => {
    const page = await fetch(`${suite.api.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect([...html.matchAll(/src="([^"]+)"/g)].map((m) => m[1])).toEqual(['/docs/scalar.js', '/docs/init.js']);
    const bundle = await fetch(`${suite.api.url}/docs/scalar.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(1_000_000);
    const raw = await fetch(`${suite.api.url}/docs/scalar.js`, { headers: { 'accept-encoding': 'identity' } });
    expect(raw.headers.get('content-encoding')).toBe('identity');
    expect(Number(raw.headers.get('content-length'))).toBeGreaterThan(1_000_000);
    expect((await fetch(`${suite.api.url}/docs/init.js`)).status).toBe(200);
    expect((await fetch(`${suite.api.url}/v1/openapi.json`)).status).toBe(200);
  });

  // `gzip;q=0` says gzip is not acceptable (RFC 9110, 12.5.3), and the client got the gzipped
  // bundle anyway: /\bgzip\b/ matched it (an outside hostile review, fourth round).
  it('sends the bundle gzipped only to a client whose Accept-Encoding takes gzip', async () => {
    const encodings: Array<[string, string]> = [
      ['gzip;q=0', 'identity'],
      ['identity, gzip;q=0', 'identity'],
      ['GZIP; Q=0.000', 'identity'],
      ['*, gzip;q=0', 'identity'],
      ['deflate, br', 'identity'],
      ['gzip;q=0.5', 'gzip'],
      ['br, GZip', 'gzip'],
      ['*', 'gzip'],
    ];
    for (const [accept, encoding] of encodings) {
      // HEAD: the headers say what the body would be, without 1-5 MB per case.
      const r = await fetch(`${suite.api.url}/docs/scalar.js`, { method: 'HEAD', headers: { 'accept-encoding': accept } });
      expect({ accept, status: r.status, encoding: r.headers.get('content-encoding') }).toEqual({ accept, status: 200, encoding });
    }
  });
});
