import type { IncomingMessage } from 'node:http';
import type { Core } from '@concert/core';

export interface Context {
  core: Core;
  headers: {
    userId: string | undefined;
    authorization: string | undefined;
    queueToken: string | undefined;
    adminKey: string | undefined;
  };
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export function contextFactory(core: Core) {
  return ({ req }: { req: IncomingMessage }): Context => ({
    core,
    headers: {
      userId: header(req, 'x-user-id'),
      authorization: header(req, 'authorization'),
      queueToken: header(req, 'x-queue-token'),
      adminKey: header(req, 'x-admin-key'),
    },
  });
}
