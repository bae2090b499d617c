import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Asset } from './rest.openapi.ts';

/**
 * GET /docs: Scalar's API reference rendering /v1/openapi.json. Its standalone browser bundle comes
 * from the npm package and is served from here, and the page's Content-Security-Policy lets the
 * browser reach nothing but this server (no CDN, no web fonts, no telemetry).
 */

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // The renderer injects its styles at run time.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Concert booking — REST API reference</title>
</head>
<body>
<div id="app"></div>
<script src="/docs/scalar.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// Loaded by a file of its own, not inline, so the page needs no 'unsafe-inline' script.
const INIT = `Scalar.createApiReference('#app', {
  url: '/v1/openapi.json',
  withDefaultFonts: false,
  defaultOpenAllTags: true,
  documentDownloadType: 'json',
  showDeveloperTools: 'never',
  showToolbar: 'never',
  hideClientButton: true,
  telemetry: false,
  agent: { disabled: true },
  mcp: { disabled: true },
});
`;

const text = (type: string, body: string): Asset => ({ type, body: Buffer.from(body), cache: 'no-cache', headers: { 'content-security-policy': CSP } });

let bundle: Asset | undefined;
function scalarBundle(): Asset {
  if (!bundle) {
    const entry = createRequire(import.meta.url).resolve('@scalar/api-reference');
    const file = path.join(entry.slice(0, entry.lastIndexOf(`${path.sep}dist${path.sep}`)), 'dist', 'browser', 'standalone.js');
    // 4.8 MB as it ships, about a quarter of that gzipped: compressed once, on the first request.
    bundle = { type: 'text/javascript; charset=utf-8', body: gzipSync(readFileSync(file)), cache: 'public, max-age=86400', headers: { 'content-encoding': 'gzip', vary: 'accept-encoding' } };
  }
  return bundle;
}

/** The reference page and its two scripts; undefined for any other /docs path. */
export function docsAsset(pathname: string): Asset | undefined {
  if (pathname === '/docs' || pathname === '/docs/') return text('text/html; charset=utf-8', PAGE);
  if (pathname === '/docs/init.js') return text('text/javascript; charset=utf-8', INIT);
  if (pathname === '/docs/scalar.js') return scalarBundle();
  return undefined;
}
