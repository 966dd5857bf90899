// Exponential backoff, one formula for every retry loop: base · 2^(attempt-1), capped, with
// optional "equal jitter" (half fixed, half random) so many retriers do not retry in step.

/** Delay before retry number `attempt` (1 = the first retry). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, jitter = false): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return jitter ? exp / 2 + Math.random() * (exp / 2) : exp;
}
