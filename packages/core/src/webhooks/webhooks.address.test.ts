import { describe, expect, it } from 'vitest';
import { assertDeliverable, isPrivateAddress } from './webhooks.address.ts';

describe('webhook endpoint addresses (production policy)', () => {
  it('refuses loopback, private, link-local and reserved addresses, also inside an IPv6 address', () => {
    const refused = [
      '127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '240.0.0.1',
      // documentation ranges (TEST-NET-1..3, 2001:db8::/32): reserved, never a partner's server
      '192.0.2.1', '198.51.100.7', '203.0.113.9', '2001:db8::1',
      '::1', '::', 'fd00::1', 'fe80::1',
      // IPv4-mapped, IPv4-compatible, NAT64 and 6to4 addresses carry an IPv4 address that is judged as such
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b::169.254.169.254', '2002:7f00:1::', '2002:a00:1::1',
    ];
    expect(refused.filter((a) => !isPrivateAddress(a))).toEqual([]);
    // The local-use NAT64 prefix (RFC 8215) translates to whatever IPv4 the deployment's own
    // translator reaches, its metadata service included; 3fff::/20 documents (RFC 9637). Both
    // passed (an outside hostile review, fourth round).
    const unlisted = ['64:ff9b:1::a9fe:a9fe', '64:ff9b:1:a9fe:a9:fe00::', '64:ff9b:1:ffff::1', '3fff::1', '3fff:fff::1'];
    expect(unlisted.filter((a) => !isPrivateAddress(a))).toEqual([]);
    const allowed = ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '64:ff9b::808:808', '::ffff:8.8.8.8', '2002:808:808::1'];
    expect(allowed.filter((a) => isPrivateAddress(a))).toEqual([]);
  });

  it('checks the URL as written: an IPv6 literal carrying a private IPv4 address is refused', async () => {
    await expect(assertDeliverable('https://[64:ff9b::169.254.169.254]/h', { production: true, allowPrivate: false })).rejects.toThrow(/loopback or private/);
    await expect(assertDeliverable('https://192.0.2.1/h', { production: true, allowPrivate: false })).rejects.toThrow(/loopback or private/);
  });
});
