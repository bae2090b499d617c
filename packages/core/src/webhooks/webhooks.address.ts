import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { AppError } from '../errors.ts';

/** Loopback, private, link-local, shared, multicast and reserved ranges: never a partner's server. */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface EndpointPolicy {
  production: boolean;
  allowPrivate: boolean;
}

/**
 * Refuses an endpoint the deployment must not call: plain http in production, and (unless
 * allowed) a host that is or resolves to a loopback or private address. Checked when the
 * endpoint is added and again before every delivery, since DNS answers can change.
 */
export async function assertDeliverable(url: string, policy: EndpointPolicy): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppError('INVALID_INPUT', 'url must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'https:' && (policy.production || parsed.protocol !== 'http:')) {
    throw new AppError('INVALID_INPUT', policy.production ? 'A webhook url must use https' : 'A webhook url must use http or https');
  }
  if (parsed.username || parsed.password) throw new AppError('INVALID_INPUT', 'A webhook url must not carry credentials');
  if (policy.allowPrivate) return;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : await lookup(host, { all: true }).then(
    (found) => found.map((a) => a.address),
    () => {
      throw new AppError('INVALID_INPUT', `The webhook host ${host} does not resolve`);
    },
  );
  if (addresses.length === 0 || addresses.some(isPrivateAddress)) {
    throw new AppError('INVALID_INPUT', `The webhook host ${host} is a loopback or private address (set WEBHOOK_ALLOW_PRIVATE=true to allow it)`);
  }
}
