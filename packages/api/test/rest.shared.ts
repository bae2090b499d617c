/** Plain-fetch helpers for the REST suites: what a curl user or a mobile app sends. */
import { expect } from 'vitest';

export interface RestCall {
  user?: number;
  token?: string;
  key?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

// A test reads the JSON answers field by field; the response schemas check their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface RestAnswer<T = any> {
  status: number;
  type: string;
  headers: Headers;
  body: T;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function rest<T = any>(base: string, method: string, path: string, call: RestCall = {}): Promise<RestAnswer<T>> {
  const headers: Record<string, string> = {};
  if (call.user !== undefined) headers['x-user-id'] = String(call.user);
  if (call.token) headers['x-queue-token'] = call.token;
  if (call.key) headers['idempotency-key'] = call.key;
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  Object.assign(headers, call.headers);
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: call.body === undefined ? undefined : typeof call.body === 'string' ? call.body : JSON.stringify(call.body),
  });
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  return { status: res.status, type, headers: res.headers, body: type.includes('json') ? JSON.parse(text) : text };
}

/** A problem+json answer with the status of the appCode's row in the contract's error table. */
export function expectProblem(a: RestAnswer, status: number, appCode: string): void {
  expect({ status: a.status, appCode: a.body?.appCode, detail: a.body?.detail }).toMatchObject({ status, appCode });
  expect(a.type).toBe('application/problem+json');
  expect(a.body).toMatchObject({ type: `urn:concert:problem:${appCode}`, status, appCode });
  expect(typeof a.body.title).toBe('string');
  expect(typeof a.body.detail).toBe('string');
  expect(a.body.detail.length).toBeGreaterThan(0);
}
