import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ZHoldInput, ZId, zInt, ZPageInput, ZTier, ZUuid } from './schemas.ts';

const messages = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
  r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('integers in inputs', () => {
  // A price of 1e20 in a concert file got two messages for the one field, one of them naming
  // 9007199254740991 (zod's `.int()` checks the safe range besides the field's own).
  it('out of range: one message, naming the field’s own bound', () => {
    expect(messages(ZTier.safeParse({ grade: 'R', price: 1e20, fromSeat: 1, toSeat: 2 }))).toEqual(['price: Too big: expected number to be <=100000000']);
    expect(messages(ZTier.safeParse({ grade: 'R', price: -1, fromSeat: 1, toSeat: 2 }))).toEqual(['price: Too small: expected number to be >=0']);
    expect(messages(ZHoldInput.safeParse({ scheduleId: 1, seatNumbers: [1e21], idempotencyKey: 'k'.repeat(16) }))).toEqual([
      'seatNumbers.0: Too big: expected number to be <=1000',
    ]);
    expect(messages(ZId.safeParse(1e21))).toEqual([': Too big: expected number to be <=9007199254740991']);
    expect(messages(ZId.safeParse(0))).toEqual([': Too small: expected number to be >=1']);
  });

  it('a fraction, or what is not a finite number, is refused once', () => {
    expect(messages(ZId.safeParse(1.5))).toEqual([': Invalid input: expected int, received number']);
    for (const bad of [Infinity, -Infinity, Number.NaN, '12']) expect(messages(ZId.safeParse(bad))).toHaveLength(1);
  });

  it('takes every integer in range, both ends included', () => {
    const seat = zInt(1, 1000);
    for (const n of [1, 2, 999, 1000]) expect(seat.parse(n)).toBe(n);
    for (const n of [0, 1001, 1.000001]) expect(seat.safeParse(n).success).toBe(false);
  });
});

describe('cursors', () => {
  // The API reference read "cursor: 0–200 characters" while an empty cursor was refused.
  it('an empty cursor is refused as one, with the schema saying at least 1 character', () => {
    expect(messages(ZPageInput.safeParse({ cursor: '' }))).toEqual(['cursor: must be a nextCursor this server gave, or left out for the first page']);
    expect(z.toJSONSchema(ZPageInput, { io: 'input' })).toMatchObject({ properties: { cursor: { anyOf: [{ minLength: 1, maxLength: 200 }, { type: 'null' }] } } });
    expect(ZPageInput.parse({ cursor: null })).toEqual({ limit: 20 });
  });
});

describe('UUIDs', () => {
  // The max UUID in upper case was "Invalid UUID" while every other UUID was read in either case.
  it('are read in either letter case, as their lower-case form, and refused when not 8-4-4-4-12 hex', () => {
    for (const id of ['FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '00000000-0000-0000-0000-000000000000', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11']) {
      expect(ZUuid.parse(id)).toBe(id.toLowerCase());
    }
    for (const bad of ['not-a-uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g', 'a0eebc999c0b4ef8bb6d6bb9bd380a11', '']) expect(ZUuid.safeParse(bad).success).toBe(false);
  });
});
