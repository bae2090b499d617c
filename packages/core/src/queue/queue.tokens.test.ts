import { describe, expect, it } from 'vitest';
import { newTokenId, signToken, TokenVerifier, verifyToken } from './queue.tokens.ts';

const SECRET = 'a queue token secret of at least 32 characters';
const claims = (n: number) => ({ concertId: 7, userId: n, tokenId: newTokenId(), enteredAt: 1_700_000_000_000 + n });

/** Every way of changing one character of a token's text. */
function alterations(token: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < token.length; i++) {
    const c = token[i] === 'A' ? 'B' : 'A';
    out.push(token.slice(0, i) + c + token.slice(i + 1));
  }
  return out;
}

describe('TokenVerifier', () => {
  it('answers as verifyToken does, for genuine tokens seen before and not, and for every one-character alteration of them', () => {
    const verifier = new TokenVerifier(SECRET, 1_000);
    const tokens = Array.from({ length: 20 }, (_, i) => signToken(SECRET, claims(i + 1)));
    // Twice over: the second pass is answered from the memory of the first.
    for (const pass of [1, 2]) {
      for (const token of tokens) {
        expect(verifier.verify(token), `pass ${pass}`).toEqual(verifyToken(SECRET, token));
        for (const altered of alterations(token)) expect(verifier.verify(altered)).toEqual(verifyToken(SECRET, altered));
      }
    }
    // Only the genuine ones are remembered.
    expect(verifier.size).toBe(tokens.length);
  });

  it('refuses a token signed with another secret, also after remembering it under its own', () => {
    const token = signToken('another secret, also thirty-two characters long', claims(1));
    const mine = new TokenVerifier(SECRET);
    const theirs = new TokenVerifier('another secret, also thirty-two characters long');
    expect(theirs.verify(token)).toBeDefined();
    expect(mine.verify(token)).toBeUndefined();
    expect(mine.size).toBe(0);
  });

  it('keeps at most `max` tokens, forgetting the oldest first, and still verifies a forgotten one', () => {
    const verifier = new TokenVerifier(SECRET, 3);
    const tokens = Array.from({ length: 5 }, (_, i) => signToken(SECRET, claims(i + 1)));
    for (const token of tokens) verifier.verify(token);
    expect(verifier.size).toBe(3);
    expect(verifier.verify(tokens[0]!)).toEqual(verifyToken(SECRET, tokens[0]!));
    expect(verifier.size).toBe(3);
  });

  it('hands out claims nobody can change under another caller', () => {
    const verifier = new TokenVerifier(SECRET);
    const token = signToken(SECRET, claims(1));
    const first = verifier.verify(token)!;
    expect(() => {
      (first as { userId: number }).userId = 2;
    }).toThrow(TypeError);
    expect(verifier.verify(token)!.userId).toBe(1);
  });
});
