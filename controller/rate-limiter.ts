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
  /**
   * Equal jitter (half the delay fixed, half random): keys that failed together, such as every
   * delivery while its target is down, then do not all retry in the same moment.
   */
  jitter?: boolean;
}

/** delay = baseMs * 2^failures, capped at capMs (client-go's ItemExponentialFailureRateLimiter). */
export class ExponentialRateLimiter implements RateLimiter {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly jitter: boolean;
  private readonly failures = new Map<string, number>();

  constructor({ baseMs, capMs, jitter = false }: ExponentialRateLimiterOptions) {
    if (!(baseMs >= 0) || !(capMs >= 0)) {
      throw new RangeError('ExponentialRateLimiter: baseMs and capMs must be >= 0');
    }
    this.baseMs = baseMs;
    this.capMs = capMs;
    this.jitter = jitter;
  }

  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    return backoffDelay(failures + 1, this.baseMs, this.capMs, this.jitter);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}
