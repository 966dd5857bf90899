// Calls in flight per identity: a caller may not start more than `max` calls that have not yet
// been answered, however many connections and streams it opens. A slot is held until the
// handler answers (not merely until the client gives up: cancelling a call does not stop the
// etcd work behind it), or until the call ends without reaching its handler.
export interface Slot {
  /** The handler took the call: only its answer releases the slot now. */
  own(): void;
  readonly owned: boolean;
  /** Idempotent. */
  release(): void;
  /** Releases after `ms` unless released before: a handler that never answers cannot hold it for ever. */
  releaseAfter(ms: number): void;
}

export class InFlightLimiter {
  private readonly counts = new Map<string, number>();

  /** `max` 0 turns the limit off (slots are still handed out, and counted). */
  constructor(private readonly max: number) {}

  /** A slot for `identity`, or undefined when it already has `max` calls in flight. */
  acquire(identity: string): Slot | undefined {
    const n = this.counts.get(identity) ?? 0;
    if (this.max > 0 && n >= this.max) return undefined;
    this.counts.set(identity, n + 1);
    let released = false;
    let owned = false;
    let timer: NodeJS.Timeout | undefined;
    const release = (): void => {
      if (released) return;
      released = true;
      if (timer) clearTimeout(timer);
      const left = (this.counts.get(identity) ?? 1) - 1;
      if (left <= 0) this.counts.delete(identity);
      else this.counts.set(identity, left);
    };
    return {
      own: () => {
        owned = true;
      },
      get owned() {
        return owned;
      },
      release,
      releaseAfter: (ms) => {
        if (released || timer) return;
        timer = setTimeout(release, ms);
        timer.unref();
      },
    };
  }

  inFlight(identity: string): number {
    return this.counts.get(identity) ?? 0;
  }

  /** Identities with calls in flight (the table holds no one else). */
  get size(): number {
    return this.counts.size;
  }
}
