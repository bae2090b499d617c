import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppCode, Core } from '@concert/core';
import type { Metrics } from './metrics.ts';

/** What the request log line reports about a request, filled in as it runs. */
export interface RequestInfo {
  requestId: string;
  userId?: number;
  appCodes: AppCode[];
}

export interface Context {
  core: Core;
  metrics: Metrics | undefined;
  info: RequestInfo;
  /** Sets a response header (Retry-After on RATE_LIMITED). */
  setHeader: (name: string, value: string) => void;
  headers: {
    userId: string | undefined;
    authorization: string | undefined;
    queueToken: string | undefined;
    adminKey: string | undefined;
  };
}

/** The HTTP layer attaches each request's info here before tRPC builds the context. */
export const requestInfo = new WeakMap<IncomingMessage, RequestInfo>();

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export function contextFactory(core: Core, metrics?: Metrics) {
  return ({ req, res }: { req: IncomingMessage; res: ServerResponse }): Context => ({
    core,
    metrics,
    info: requestInfo.get(req) ?? { requestId: 'unknown', appCodes: [] },
    setHeader: (name, value) => {
      if (!res.headersSent) res.setHeader(name, value);
    },
    headers: {
      userId: header(req, 'x-user-id'),
      authorization: header(req, 'authorization'),
      queueToken: header(req, 'x-queue-token'),
      adminKey: header(req, 'x-admin-key'),
    },
  });
}
