import { describe, expect, it } from 'vitest';
import { FairSlots } from './fair-slots.ts';

/** A promise and its resolver. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const ticks = async (n = 5) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

describe('FairSlots', () => {
  it('runs at once while a slot is free', async () => {
    const slots = new FairSlots(2);
    let started = 0;
    const a = slots.run({}, () => ++started);
    const b = slots.run({}, () => ++started);
    // Both were called synchronously, before any await.
    expect(started).toBe(2);
    expect(await Promise.all([a, b])).toEqual([1, 2]);
    expect(slots.active).toBe(0);
  });

  it('serves waiting owners in turn, one call each, and an owner its calls in order', async () => {
    const slots = new FairSlots(1);
    const blocker = deferred();
    const order: string[] = [];
    const [A, B, C] = [{}, {}, {}];
    const busy = slots.run({}, () => blocker.promise);
    const calls = [
      ...['a1', 'a2', 'a3'].map((n) => slots.run(A, () => order.push(n))),
      slots.run(B, () => order.push('b1')),
      ...['c1', 'c2'].map((n) => slots.run(C, () => order.push(n))),
    ];
    expect(slots.pending).toBe(6);
    blocker.resolve();
    await Promise.all([busy, ...calls]);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'c2', 'a3']);
  });

  it('puts an owner that comes later behind the owners already waiting, not behind all their calls', async () => {
    const slots = new FairSlots(1);
    const blocker = deferred();
    const order: string[] = [];
    const batch = {};
    const busy = slots.run({}, () => blocker.promise);
    const flood = Array.from({ length: 50 }, (_, i) => slots.run(batch, () => order.push(`batch${i}`)));
    const probe = slots.run({}, () => order.push('probe'));
    blocker.resolve();
    await Promise.all([busy, probe, ...flood]);
    expect(order.indexOf('probe')).toBe(1);
  });

  it('never runs more than its size, and runs every call once, under random work from many owners', async () => {
    const size = 3;
    const slots = new FairSlots(size);
    const owners = Array.from({ length: 7 }, () => ({}));
    let running = 0;
    let most = 0;
    const ran: number[] = [];
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        slots.run(owners[i % owners.length]!, async () => {
          most = Math.max(most, ++running);
          await ticks(1 + (i % 4));
          if (i % 13 === 0) await new Promise((r) => setTimeout(r, 1));
          running--;
          ran.push(i);
        }),
      ),
    );
    expect(most).toBe(size);
    expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(slots.active).toBe(0);
    expect(slots.pending).toBe(0);
  });

  it('passes on a rejection or a synchronous throw, and frees the slot', async () => {
    const slots = new FairSlots(1);
    await expect(slots.run({}, () => Promise.reject(new Error('async')))).rejects.toThrow('async');
    await expect(
      slots.run({}, () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(slots.active).toBe(0);
    expect(await slots.run({}, () => 'after')).toBe('after');
  });

  it('frees the slot of a waiting call that throws, for the next owner', async () => {
    const slots = new FairSlots(1);
    const blocker = deferred();
    const busy = slots.run({}, () => blocker.promise);
    const failing = slots.run({}, () => {
      throw new Error('gone');
    });
    const next = slots.run({}, () => 'next');
    blocker.resolve();
    await expect(failing).rejects.toThrow('gone');
    expect(await next).toBe('next');
    await busy;
  });

  it('refuses a size that is not a positive integer', () => {
    for (const size of [0, -1, 1.5, Number.NaN]) expect(() => new FairSlots(size)).toThrow(RangeError);
  });
});
