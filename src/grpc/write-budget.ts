// One caller's budget of bytes written into etcd (grpc.limits.writeBytesPerSecond and
// writeBurstBytes): a write is charged what it actually stores before it is sent, refused
// whole when the budget is short, and refunded when it did not happen (a lost race).
import type { RateLimiter } from './rate-limit.js';

export interface WriteBudget {
  /** Takes `bytes`; false (nothing taken) when the budget is short. */
  take(bytes: number): boolean;
  refund(bytes: number): void;
  /** Milliseconds until `bytes` would be available. */
  waitMs(bytes: number): number;
}

export const UNLIMITED: WriteBudget = { take: () => true, refund: () => {}, waitMs: () => 0 };

/** The budget of `key` (an identity, or `anonymous@<peer>`) in a shared limiter. */
export function budgetOf(limiter: RateLimiter, key: string): WriteBudget {
  if (!limiter.enabled) return UNLIMITED;
  return {
    take: (bytes) => limiter.take(key, bytes),
    refund: (bytes) => limiter.refund(key, bytes),
    waitMs: (bytes) => limiter.waitMs(key, bytes),
  };
}

export class WriteBudgetExceededError extends Error {
  constructor(
    readonly bytes: number,
    readonly waitMs: number,
  ) {
    super(`the change writes ${bytes} bytes, more than the caller's write budget has left (grpc.limits.writeBytesPerSecond); nothing was written; retry in ${Math.ceil(waitMs / 1000)} s`);
    this.name = 'WriteBudgetExceededError';
  }
}
