import net from 'node:net';

/** What came back on a raw connection: the parsed response, or how the connection ended without one. */
export interface RawResponse {
  /** 0 when the connection ended without a (complete) answer. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The connection was reset or timed out instead of answering. */
  error?: string;
  /** How long the answer (or the end) took. */
  ms: number;
}

export interface RawOptions {
  host?: string;
  /** Give up (and report error 'timeout') after this long. */
  timeoutMs?: number;
  /** Send the parts of an array with this pause between them (a slow client). */
  pauseMs?: number;
  /** Hang up this long after the last byte is sent, answered or not (a client that goes away). */
  hangUpAfterMs?: number;
}

/**
 * Sends bytes exactly as given (fetch would refuse or rewrite most of what the robustness suites
 * send) and reads the first final response, ending as soon as it is complete.
 */
export function rawRequest(port: number, bytes: string | Buffer | Array<string | Buffer>, opts: RawOptions = {}): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, opts.host ?? '127.0.0.1');
    let buf = Buffer.alloc(0);
    let error: string | undefined;
    let done = false;
    const finish = (r: Omit<RawResponse, 'ms'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...r, ...(error && r.status === 0 ? { error } : {}), ms: performance.now() - started });
    };
    const timer = setTimeout(() => {
      error = 'timeout';
      finish({ status: 0, headers: {}, body: buf.toString('latin1') });
    }, opts.timeoutMs ?? 20_000);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseResponse(buf, false);
      if (r) finish(r);
    });
    socket.on('error', (e) => (error ??= (e as NodeJS.ErrnoException).code ?? e.message));
    socket.on('close', () => finish(parseResponse(buf, true) ?? { status: 0, headers: {}, body: buf.toString('latin1') }));
    socket.on('connect', async () => {
      const parts = Array.isArray(bytes) ? bytes : [bytes];
      for (const [i, part] of parts.entries()) {
        if (socket.destroyed) return;
        if (i > 0 && opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
        if (!socket.destroyed) socket.write(part);
      }
      if (opts.hangUpAfterMs !== undefined) setTimeout(() => finish({ status: 0, headers: {}, body: '' }), opts.hangUpAfterMs);
    });
  });
}

/**
 * The first final (non-1xx) HTTP/1.x response in `buf`, or undefined while it is incomplete;
 * `closed` says the connection has ended, so a body without a length ends here.
 */
export function parseResponse(buf: Buffer, closed: boolean): Omit<RawResponse, 'ms'> | undefined {
  let start = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', start);
    if (end < 0) return undefined;
    const [statusLine, ...lines] = buf.subarray(start, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
    if (status >= 100 && status < 200) {
      start = end + 4;
      continue;
    }
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    let rest = buf.subarray(end + 4);
    if (status === 204 || status === 304) return { status, headers, body: '' };
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = rest.indexOf('\r\n');
        if (eol < 0) return closed ? { status, headers, body: Buffer.concat(parts).toString('utf8') } : undefined;
        const size = parseInt(rest.subarray(0, eol).toString('latin1'), 16);
        if (!size) return { status, headers, body: Buffer.concat(parts).toString('utf8') };
        if (rest.length < eol + 2 + size + 2) return closed ? { status, headers, body: Buffer.concat(parts).toString('utf8') } : undefined;
        parts.push(rest.subarray(eol + 2, eol + 2 + size));
        rest = rest.subarray(eol + 2 + size + 2);
      }
    }
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (rest.length < n && !closed) return undefined;
      return { status, headers, body: rest.subarray(0, n).toString('utf8') };
    }
    return closed ? { status, headers, body: rest.toString('utf8') } : undefined;
  }
}

/** appCodes of an answer: a tRPC error envelope's, one per failed call of a batch, or a REST problem's. */
export function appCodesOf(body: string): { errors: number; appCodes: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { errors: 0, appCodes: [] };
  }
  const items = Array.isArray(json) ? json : [json];
  const appCodes: string[] = [];
  let errors = 0;
  const problem = (json as { type?: unknown; appCode?: unknown } | null)?.type;
  if (typeof problem === 'string' && problem.startsWith('urn:concert:problem:')) {
    const code = (json as { appCode?: unknown }).appCode;
    return { errors: 1, appCodes: typeof code === 'string' ? [code] : [] };
  }
  for (const item of items) {
    const error = (item as { error?: { json?: { data?: { appCode?: unknown } } } } | null)?.error;
    if (!error) continue;
    errors++;
    const code = error.json?.data?.appCode;
    if (typeof code === 'string') appCodes.push(code);
  }
  return { errors, appCodes };
}

/** A request with `Connection: close`, so the answer ends when the server closes. */
export function httpText(method: string, target: string, opts: { headers?: Record<string, string>; body?: string | Buffer; host?: string } = {}): Buffer {
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  const headers: Record<string, string> = { host: opts.host ?? 'localhost', connection: 'close', ...(body ? { 'content-length': String(body.length) } : {}), ...opts.headers };
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1');
}
