import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';
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
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  // Local-use NAT64 (RFC 8215): IPv4 addresses behind the deployment's own translator.
  ['64:ff9b:1::', 48],
  ['100::', 64],
  // Benchmarking (RFC 5180), the twin of 198.18.0.0/15 above.
  ['2001:2::', 48],
  ['2001:db8::', 32],
  ['3fff::', 20],
  // Segment Routing SIDs (RFC 9602): not globally reachable.
  ['5f00::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  // Site-local (deprecated by RFC 3879, still routed inside older networks).
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** IPv6 ranges that carry an IPv4 address, judged as that address: [range, prefix, where the IPv4 address is (16-bit groups)]. */
const CARRIES_IPV4 = (
  [
    ['::', 96, 6], // IPv4-compatible (deprecated)
    ['::ffff:0:0', 96, 6], // IPv4-mapped
    ['::ffff:0:0:0', 96, 6], // IPv4-translated (RFC 2765)
    ['64:ff9b::', 96, 6], // NAT64
    ['2002::', 16, 1], // 6to4
  ] as const
).map(([net, prefix, at]) => {
  const range = new BlockList();
  range.addSubnet(net, prefix, 'ipv6');
  return { compatible: net === '::', range, at };
});

function groups(address: string): number[] {
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const text = dotted ? `${dotted[1]}${((+dotted[2]! << 8) | +dotted[3]!).toString(16)}:${((+dotted[4]! << 8) | +dotted[5]!).toString(16)}` : address;
  const [head, tail] = text.split('::') as [string, string | undefined];
  const part = (t: string) => (t === '' ? [] : t.split(':').map((g) => parseInt(g, 16)));
  if (tail === undefined) return part(head);
  const h = part(head);
  const t = part(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  for (const { compatible, range, at } of CARRIES_IPV4) {
    if (!range.check(address, 'ipv6')) continue;
    const g = groups(address);
    const [hi = 0, lo = 0] = [g[at], g[at + 1]];
    // '::' and '::1' are in the IPv4-compatible range too: they stay judged as IPv6 below.
    if (compatible && hi === 0) break;
    return PRIVATE.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4');
  }
  return PRIVATE.check(address, 'ipv6');
}

/** Every address a host name resolves to; the system's resolver unless a test injects one. */
export type ResolveHost = (host: string) => Promise<LookupAddress[]>;
export const systemResolve: ResolveHost = (host) => lookup(host, { all: true });

export interface EndpointPolicy {
  production: boolean;
  allowPrivate: boolean;
}

/** Where an INVALID_INPUT about the endpoint points in the input (its issues' path). */
const URL_FIELD = { path: ['url'] };

/**
 * Refuses an endpoint the deployment must not call: plain http in production, and (unless
 * allowed) a host that is or resolves to a loopback or private address. Checked when the
 * endpoint is added and again before every delivery, since DNS answers can change.
 */
export async function assertDeliverable(url: string, policy: EndpointPolicy, resolve: ResolveHost = systemResolve): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppError('INVALID_INPUT', 'url must be an absolute http(s) URL', URL_FIELD);
  }
  if (parsed.protocol !== 'https:' && (policy.production || parsed.protocol !== 'http:')) {
    throw new AppError('INVALID_INPUT', policy.production ? 'A webhook url must use https' : 'A webhook url must use http or https', URL_FIELD);
  }
  if (parsed.username || parsed.password) throw new AppError('INVALID_INPUT', 'A webhook url must not carry credentials', URL_FIELD);
  if (policy.allowPrivate) return;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : await resolve(host).then(
    (found) => found.map((a) => a.address),
    () => {
      throw new AppError('INVALID_INPUT', `The webhook host ${host} does not resolve`, URL_FIELD);
    },
  );
  if (addresses.length === 0 || addresses.some(isPrivateAddress)) {
    throw new AppError('INVALID_INPUT', `The webhook host ${host} is a loopback or private address (set WEBHOOK_ALLOW_PRIVATE=true to allow it)`, URL_FIELD);
  }
}

/**
 * A `lookup` for the delivery's sockets (net/tls.connect) that judges what it resolves by the
 * rules above and hands on only an answer with no private address in it. The check before a
 * delivery and the connection each ask DNS; a server answering a public address to the first
 * and a private one to the second (DNS rebinding) is caught here, on the address connected to.
 */
export function guardedLookup(resolve: ResolveHost): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    resolve(hostname).then(
      (found) => {
        const refused = found.find((a) => isPrivateAddress(a.address));
        const usable = family === 4 || family === 6 ? found.filter((a) => a.family === family) : found;
        if (refused) {
          callback(Object.assign(new Error(`The webhook host ${hostname} resolved to ${refused.address} when connecting, a loopback or private address`), { code: 'EWEBHOOKPRIVATE' }), '');
        } else if (usable.length === 0) {
          callback(Object.assign(new Error(`The webhook host ${hostname} does not resolve`), { code: 'ENOTFOUND', hostname }), '');
        } else if (options.all) {
          callback(null, usable);
        } else {
          callback(null, usable[0]!.address, usable[0]!.family);
        }
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err)), ''),
    );
  };
}

/** Deliveries' connection pool: every connection it opens goes to an address `guardedLookup` allowed. */
export function deliveryAgent(resolve: ResolveHost): Agent {
  return new Agent({ connect: { lookup: guardedLookup(resolve) } });
}
