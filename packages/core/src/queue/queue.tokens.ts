import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Queue tokens: `q1.<payload>.<mac>`, payload = concertId.userId.tokenId.enteredAtMs (base64url),
 * mac = HMAC-SHA256 over the payload with QUEUE_TOKEN_SECRET. tokenId carries 128 random bits;
 * the MAC makes any change to the concert, the user or the id evident without a lookup.
 */
export interface TokenClaims {
  concertId: number;
  userId: number;
  tokenId: string;
  enteredAt: number;
}

const PREFIX = 'q1';

export function newTokenId(): string {
  return randomBytes(16).toString('base64url');
}

export function signToken(secret: string, c: TokenClaims): string {
  const payload = Buffer.from(`${c.concertId}.${c.userId}.${c.tokenId}.${c.enteredAt}`).toString('base64url');
  return `${PREFIX}.${payload}.${mac(secret, payload)}`;
}

/** The claims of a genuine token, or undefined for anything forged, altered or malformed. */
export function verifyToken(secret: string, token: string): TokenClaims | undefined {
  if (token.length > 300) return undefined;
  const [prefix, payload, sig, extra] = token.split('.');
  if (prefix !== PREFIX || !payload || !sig || extra !== undefined) return undefined;
  const expected = Buffer.from(mac(secret, payload));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const m = /^([1-9]\d{0,15})\.([1-9]\d{0,15})\.([A-Za-z0-9_-]{22})\.(\d{1,16})$/.exec(Buffer.from(payload, 'base64url').toString());
  if (!m) return undefined;
  return { concertId: Number(m[1]), userId: Number(m[2]), tokenId: m[3]!, enteredAt: Number(m[4]) };
}

/**
 * verifyToken with a memory of the genuine tokens it has seen. A fan polls queue.status with the
 * same token every few seconds, and its HMAC was a fifth of what the API spent on a poll (README,
 * Benchmark). Only a token that verified is remembered, by its exact text, so anything forged,
 * altered or malformed is checked afresh every time; the memory is bounded, the oldest entry
 * forgotten first (a forgotten token is only verified again). Claims are shared, hence frozen.
 */
export class TokenVerifier {
  private readonly genuine = new Map<string, Readonly<TokenClaims>>();

  constructor(
    private readonly secret: string,
    private readonly max = 50_000,
  ) {}

  verify(token: string): Readonly<TokenClaims> | undefined {
    const known = this.genuine.get(token);
    if (known) return known;
    const claims = verifyToken(this.secret, token);
    if (!claims) return undefined;
    if (this.genuine.size >= this.max) this.genuine.delete(this.genuine.keys().next().value!);
    const frozen = Object.freeze(claims);
    this.genuine.set(token, frozen);
    return frozen;
  }

  /** How many tokens are remembered (for tests). */
  get size(): number {
    return this.genuine.size;
  }
}

function mac(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}
