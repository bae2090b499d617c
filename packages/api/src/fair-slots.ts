/**
 * A concurrency limit shared fairly between owners: at most `size` functions run at once, and
 * while some wait, the free slots go round-robin between the owners that wait (one call of each
 * owner in turn, an owner's own calls in the order they came). With free slots nothing waits.
 *
 * Hand-written because the libraries of the kind are either shared and first-come-first-served
 * (p-limit, p-queue: one owner's batch of 50 calls is ahead of everybody who comes after it) or
 * per key with no bound shared between keys (p-key-limit).
 */
export class FairSlots {
  private running = 0;
  /** Owners with calls waiting, in the order they are served next (a Map keeps insertion order). */
  private readonly waiting = new Map<object, Array<() => void>>();

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`FairSlots: size must be a positive integer, not ${size}`);
  }

  /** Functions running now. */
  get active(): number {
    return this.running;
  }

  /** Calls waiting for a slot, of every owner. */
  get pending(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  /** Runs `fn` in a slot once `owner`'s turn comes; its result or error is the returned promise's. */
  async run<T>(owner: object, fn: () => T | PromiseLike<T>): Promise<T> {
    if (this.running < this.size && this.waiting.size === 0) this.running++;
    else {
      // The slot is counted as taken by `grant` when the turn comes.
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(owner);
        if (queue) queue.push(resolve);
        else this.waiting.set(owner, [resolve]);
      });
    }
    try {
      return await fn();
    } finally {
      this.running--;
      this.grant();
    }
  }

  private grant(): void {
    while (this.running < this.size) {
      const next = this.waiting.entries().next();
      if (next.done) return;
      const [owner, queue] = next.value;
      const resume = queue.shift()!;
      // The owner goes to the back of the turn order, if it has more calls waiting.
      this.waiting.delete(owner);
      if (queue.length > 0) this.waiting.set(owner, queue);
      this.running++;
      resume();
    }
  }
}
