// Identical calls in flight share one execution: the first caller's starts it, the others
// join it and get the same result. Keyed by whatever makes two calls identical; the key is
// forgotten as soon as the execution settles, so a later identical call runs again.
//
// Only while a caller still waits for it: each caller says until when it waits, and a call that
// comes after every caller of the execution has stopped waiting starts a new one (the old one goes
// on, its result told to no one but its own bookkeeping). Found by black-box probing: a call hung
// at the ActionController for its whole 60 s timeout, and identical retries with 2 s deadlines,
// sent after the ActionController had recovered, joined it for those 60 s and were never sent.
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, { promise: Promise<T>; joined: number; waitedUntil: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Runs `run` unless a call with `key` is in flight that a caller still waits for; `shared` tells
   * a joiner from the first caller. `waitsUntil` (epoch ms; infinite: no deadline) is until when
   * this caller waits for the result. `run` is given how many callers its execution has so far.
   */
  do(key: string, run: (callers: () => number) => Promise<T>, waitsUntil = Number.POSITIVE_INFINITY): { promise: Promise<T>; shared: boolean } {
    const existing = this.inFlight.get(key);
    if (existing && this.now() < existing.waitedUntil) {
      existing.joined++;
      existing.waitedUntil = Math.max(existing.waitedUntil, waitsUntil);
      return { promise: existing.promise, shared: true };
    }
    const entry: { promise: Promise<T>; joined: number; waitedUntil: number } = { promise: undefined as unknown as Promise<T>, joined: 1, waitedUntil: waitsUntil };
    entry.promise = Promise.resolve().then(() => run(() => entry.joined));
    this.inFlight.set(key, entry);
    // Only this execution's own entry: a newer one under the key is not forgotten with it.
    const forget = (): void => {
      if (this.inFlight.get(key) === entry) this.inFlight.delete(key);
    };
    entry.promise.then(forget, forget);
    return { promise: entry.promise, shared: false };
  }

  get size(): number {
    return this.inFlight.size;
  }
}
