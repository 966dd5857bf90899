// Identical calls in flight share one execution: the first caller's starts it, the others
// join it and get the same result. Keyed by whatever makes two calls identical; the key is
// forgotten as soon as the execution settles, so a later identical call runs again.
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, { promise: Promise<T>; joined: number }>();

  /** Runs `run` unless a call with `key` is in flight; `shared` tells a joiner from the first caller. */
  do(key: string, run: () => Promise<T>): { promise: Promise<T>; shared: boolean } {
    const existing = this.inFlight.get(key);
    if (existing) {
      existing.joined++;
      return { promise: existing.promise, shared: true };
    }
    const entry = { promise: Promise.resolve().then(run), joined: 1 };
    this.inFlight.set(key, entry);
    const forget = (): void => void this.inFlight.delete(key);
    entry.promise.then(forget, forget);
    return { promise: entry.promise, shared: false };
  }

  /** Callers of the call in flight under `key` so far (0 when none). */
  callers(key: string): number {
    return this.inFlight.get(key)?.joined ?? 0;
  }

  get size(): number {
    return this.inFlight.size;
  }
}
