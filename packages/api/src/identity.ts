import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '@concert/core';
import { errors as joseErrors, jwtVerify } from 'jose';
import { appFail } from './errors.ts';

const USER_ID = /^[1-9]\d{0,14}$/;
/**
 * A minute of leeway for the issuer's clock: on how far ahead of ours a token's `iat` and `nbf`
 * may be (an identity provider whose clock runs a few seconds ahead sets both to its now: a fresh
 * login was TOKEN_INVALID until our clock caught up), and on the furthest its `exp` may be (`AUTH_JWT_MAX_LIFETIME_SECONDS`, 30 days by default: the
 * longest access-token lifetime of the common identity providers): `exp` is required so that a
 * token stops working, and with HS256 there is no revoking one short of rotating the secret for
 * everyone, so a token with `exp: 1e308` would be a credential for good.
 */
const CLOCK_LEEWAY_SECONDS = 60;

/**
 * A bad identity token is TOKEN_INVALID or TOKEN_EXPIRED, the codes of a bad queue token; its
 * details say which credential it was, so a client can tell "sign in again" from "join the line
 * again" (the CLI told a fan whose login had expired to join the waiting room again).
 */
const IDENTITY = { credential: 'identity' } as const;

/** Who is calling: `x-user-id` in dev mode, an HS256 bearer JWT (`sub` = user id) in jwt mode. */
export async function resolveUserId(
  auth: Config['auth'],
  headers: { userId: string | undefined; authorization: string | undefined },
): Promise<number> {
  if (auth.mode === 'dev') {
    const raw = headers.userId?.trim();
    if (!raw) appFail('IDENTITY_REQUIRED', 'Send the x-user-id header');
    if (!USER_ID.test(raw)) appFail('IDENTITY_REQUIRED', 'x-user-id must be a positive whole number');
    return Number(raw);
  }
  const m = /^Bearer\s+(\S+)$/i.exec(headers.authorization?.trim() ?? '');
  if (!m) appFail('IDENTITY_REQUIRED', 'Send an Authorization: Bearer <jwt> header');
  try {
    const { payload } = await jwtVerify(m[1]!, secretKey(auth.jwtSecret!), { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'], clockTolerance: CLOCK_LEEWAY_SECONDS });
    // A string of digits only: a number or an array that merely prints as one is refused.
    const sub: unknown = payload.sub;
    if (typeof sub !== 'string' || !USER_ID.test(sub)) appFail('TOKEN_INVALID', 'The token subject is not a user id', IDENTITY);
    const now = Date.now() / 1000;
    // The leeway is for a token not yet valid by our clock; an expired one stays expired (jose
    // applies its tolerance to both).
    if (payload.exp! <= now) appFail('TOKEN_EXPIRED', 'The identity token has expired', IDENTITY);
    if (payload.exp! - now > auth.jwtMaxLifetimeSeconds + CLOCK_LEEWAY_SECONDS) {
      appFail('TOKEN_INVALID', `The token expires more than ${auth.jwtMaxLifetimeSeconds} s from now (AUTH_JWT_MAX_LIFETIME_SECONDS)`, IDENTITY);
    }
    // jose checks `iat` only with maxTokenAge: one issued in the future (past the leeway) was never
    // issued by a working identity provider. (jose has already refused an `iat` that is no number.)
    if (payload.iat !== undefined && payload.iat - now > CLOCK_LEEWAY_SECONDS) appFail('TOKEN_INVALID', 'The token was issued in the future', IDENTITY);
    return Number(sub);
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) appFail('TOKEN_EXPIRED', 'The identity token has expired', IDENTITY);
    if (err instanceof joseErrors.JOSEError) appFail('TOKEN_INVALID', 'The identity token is not valid', IDENTITY);
    throw err;
  }
}

const keys = new Map<string, Uint8Array>();
function secretKey(secret: string): Uint8Array {
  let key = keys.get(secret);
  if (!key) keys.set(secret, (key = new TextEncoder().encode(secret)));
  return key;
}

/** Constant-time comparison of the presented admin key with the configured one. */
export function adminKeyMatches(presented: string | undefined, expected: string): boolean {
  if (!presented) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
