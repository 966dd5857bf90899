// How long a failing key waits before its next attempt. Mirrors client-go's
// workqueue rate limiters so a key that keeps failing backs off instead of hot-looping,
// while keys that succeed again start from the base delay.
import { backoffDelay } from './backoff.js';

export interface RateLimiter {
  /** Delay in ms before `key` may be retried; each call counts as one more failure. */
  when(key: string): number;
  /** The key succeeded (or was dropped): forget its failure history. */
  forget(key: string): void;
  /** How many times `when` was called for `key` since it was last forgotten. */
  numRequeues(key: string): number;
}

export interface ExponentialRateLimiterOptions {
  baseMs: number;
  capMs: number;
}

/** delay = baseMs * 2^failures, capped at capMs (client-go's ItemExponentialFailureRateLimiter). */
export class ExponentialRateLimiter implements RateLimiter {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly failures = new Map<string, number>();

  constructor({ baseMs, capMs }: ExponentialRateLimiterOptions) {
    if (!(baseMs >= 0) || !(capMs >= 0)) {
      throw new RangeError('ExponentialRateLimiter: baseMs and capMs must be >= 0');
    }
    this.baseMs = baseMs;
    this.capMs = capMs;
  }

  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    return backoffDelay(failures + 1, this.baseMs, this.capMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}
