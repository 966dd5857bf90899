// One reading of a duration for the configuration and the command line: "500ms", "30s",
// "1.5m", "1h", or a bare number of milliseconds.
import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * UNITS[m[2] ?? 'ms']!;
}

/**
 * The longest duration accepted: Node's timers hold at most 2^31 − 1 ms (24.8 days) and fire a
 * longer one after 1 ms. Found by black-box probing: a 600h lease made every timer fire at once
 * (16,428 warnings in 4 s), and a 2000h one left a dead replica's leader key for months.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** A configuration duration: "500ms", "30s", "5m", "1h", or a number of milliseconds; at most MAX_DURATION_MS. */
export const durationSchema = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 500ms, 30s, 5m, 1h)` });
    return z.NEVER;
  }
  if (ms > MAX_DURATION_MS) {
    ctx.addIssue({ code: 'custom', message: `${typeof v === 'number' ? `${v} ms` : `"${v}"`} is longer than 596h (24.8 days), the longest a timer holds` });
    return z.NEVER;
  }
  return ms;
});
