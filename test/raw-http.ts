import net from 'node:net';

/** What came back on a raw connection: the parsed response, or how the connection ended without one. */
export interface RawResponse {
  /** 0 when the server closed the connection without an answer. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The tRPC error envelope's data, when the body is one. */
  data?: { code?: string; httpStatus?: number; appCode?: string };
  /** The connection was reset or timed out instead of closing cleanly. */
  error?: string;
}

/**
 * Sends bytes exactly as given (no normalisation: fetch would refuse or rewrite most of what the
 * robustness suites send) and reads one response until the server closes the connection.
 */
export function rawRequest(port: number, bytes: string | Buffer | Array<string | Buffer>, opts: { host?: string; timeoutMs?: number; pauseMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve) => {
    const socket = net.connect(port, opts.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const timer = setTimeout(() => {
      error = 'timeout';
      socket.destroy();
    }, opts.timeoutMs ?? 15_000);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (e) => (error ??= (e as NodeJS.ErrnoException).code ?? e.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ ...parseResponse(Buffer.concat(chunks)), ...(error ? { error } : {}) });
    });
    socket.on('connect', async () => {
      const parts = Array.isArray(bytes) ? bytes : [bytes];
      for (const [i, part] of parts.entries()) {
        if (socket.destroyed) return;
        if (i > 0 && opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
        socket.write(part);
      }
    });
  });
}

/** Parses the first HTTP/1.1 response in `buf` (content-length, chunked, or read to close). */
export function parseResponse(buf: Buffer): RawResponse {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: buf.toString('latin1') };
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let rest = buf.subarray(end + 4);
  let body: Buffer;
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = rest.indexOf('\r\n');
      if (eol < 0) break;
      const size = parseInt(rest.subarray(0, eol).toString('latin1'), 16);
      if (!size) break;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    body = rest.subarray(0, Number(headers['content-length']));
  } else {
    body = rest;
  }
  const text = body.toString('utf8');
  let data: RawResponse['data'];
  try {
    const json = JSON.parse(text) as { error?: { json?: { data?: RawResponse['data'] } } } | Array<{ error?: { json?: { data?: RawResponse['data'] } } }>;
    data = Array.isArray(json) ? undefined : json.error?.json?.data;
  } catch {
    data = undefined;
  }
  return { status, headers, body: text, ...(data ? { data } : {}) };
}

/** A request with `Connection: close`, so the answer ends when the server closes. */
export function httpText(method: string, target: string, opts: { headers?: Record<string, string>; body?: string | Buffer; host?: string } = {}): Buffer {
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  const headers: Record<string, string> = { host: opts.host ?? 'localhost', connection: 'close', ...(body ? { 'content-length': String(body.length) } : {}), ...opts.headers };
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1');
}
