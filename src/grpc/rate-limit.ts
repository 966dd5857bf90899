// Token buckets per identity: calls per second, bytes written to etcd per second, failed
// authentications per peer. One caller (a runaway node agent, a stolen token, a guesser) cannot
// take the whole server. Buckets of callers gone quiet are dropped, and the table is bounded so
// that many distinct anonymous peers cannot grow it without end.
export interface RateLimitOptions {
  /** Tokens added per second; 0 turns the limit off. */
  perSecond: number;
  /** Bucket size: what may be taken at once above the rate. */
  burst: number;
  /** Most identities tracked; the least recently seen is dropped first. Default 10,000. */
  maxIdentities?: number;
  /** The clock of the refill, in monotonic ms: a step of the wall clock must not stretch or cut an interval (default performance.now). */
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
    this.now = o.now ?? (() => performance.now());
    this.maxIdentities = o.maxIdentities ?? 10_000;
  }

  get enabled(): boolean {
    return this.o.perSecond > 0;
  }

  /**
   * Takes `cost` tokens of `identity`'s bucket; false when there are fewer (refuse, nothing
   * taken). A cost above the burst is taken as the burst: it passes only on a full bucket, so
   * nothing is refused for ever.
   */
  take(identity: string, cost = 1): boolean {
    if (!this.enabled) return true;
    const b = this.refilled(identity);
    const c = Math.min(cost, this.o.burst);
    if (b.tokens < c) return false;
    b.tokens -= c;
    return true;
  }

  /** Gives back what take() took for work that did not happen (a transaction that lost a race). */
  refund(identity: string, cost: number): void {
    if (!this.enabled) return;
    const b = this.refilled(identity);
    b.tokens = Math.min(this.o.burst, b.tokens + Math.min(cost, this.o.burst));
  }

  /** Whether `identity` has less than one token left, without taking any. */
  exhausted(identity: string): boolean {
    if (!this.enabled) return false;
    const b = this.buckets.get(identity);
    return b !== undefined && this.refilled(identity).tokens < 1;
  }

  /** Tokens `identity` has now (the burst for one not seen). */
  available(identity: string): number {
    if (!this.enabled) return Infinity;
    return this.buckets.has(identity) ? this.refilled(identity).tokens : this.o.burst;
  }

  /** Milliseconds until `identity` has `cost` tokens (capped at the burst). */
  waitMs(identity: string, cost: number): number {
    if (!this.enabled) return 0;
    const missing = Math.min(cost, this.o.burst) - this.available(identity);
    return missing <= 0 ? 0 : Math.ceil((missing / this.o.perSecond) * 1000);
  }

  get size(): number {
    return this.buckets.size;
  }

  private refilled(identity: string): Bucket {
    const now = this.now();
    let b = this.buckets.get(identity);
    if (b === undefined) {
      b = { tokens: this.o.burst, at: now };
      if (this.buckets.size >= this.maxIdentities) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    } else {
      // A clock that went back refills nothing and takes nothing (it once emptied every bucket for
      // as long as the step).
      b.tokens = Math.min(this.o.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.o.perSecond);
      b.at = now;
      // Map order is insertion order: re-inserting keeps the least recently seen first.
      this.buckets.delete(identity);
    }
    this.buckets.set(identity, b);
    return b;
  }
}
