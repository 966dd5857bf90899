// Calls per second per identity: a token bucket each, so one caller (a runaway node agent, a
// stolen token) cannot take the whole server. Buckets of callers gone quiet are dropped, and
// the table is bounded so that many distinct anonymous peers cannot grow it without end.
export interface RateLimitOptions {
  /** Tokens added per second; 0 turns the limit off. */
  perSecond: number;
  /** Bucket size: calls allowed at once above the rate. */
  burst: number;
  /** Most identities tracked; the least recently seen is dropped first. Default 10,000. */
  maxIdentities?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxIdentities: number;

  constructor(private readonly o: RateLimitOptions) {
    this.now = o.now ?? Date.now;
    this.maxIdentities = o.maxIdentities ?? 10_000;
  }

  get enabled(): boolean {
    return this.o.perSecond > 0;
  }

  /** Takes one token of `identity`'s bucket; false when it is empty (refuse the call). */
  take(identity: string): boolean {
    if (!this.enabled) return true;
    const now = this.now();
    let b = this.buckets.get(identity);
    if (b === undefined) {
      b = { tokens: this.o.burst, at: now };
      if (this.buckets.size >= this.maxIdentities) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    } else {
      b.tokens = Math.min(this.o.burst, b.tokens + ((now - b.at) / 1000) * this.o.perSecond);
      b.at = now;
      // Map order is insertion order: re-inserting keeps the least recently seen first.
      this.buckets.delete(identity);
    }
    this.buckets.set(identity, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}
