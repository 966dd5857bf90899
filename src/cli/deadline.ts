// How long a command waits: --timeout as the deadline of each call, or, for the commands that
// wait (watch, resync --wait), as the bound of the wait; and one call raced against its deadline
// and the interruption signal.
import { CliError, INTERRUPTED, UsageError } from './errors.js';
import { parseDuration } from './format.js';
import { MAX_DURATION_MS } from '../config/duration.js';

export const DEFAULT_TIMEOUT = '3s';

export interface Timeouts {
  /** Deadline of each etcd or gRPC call. */
  callMs: number;
  /**
   * For commands that wait: how long, when --timeout was given. Their calls then keep the
   * default deadline, so a short bound does not fail a slow first call.
   */
  boundMs: number | undefined;
}

/** `text` is --timeout's value; `given` whether the user gave it; `waits` whether the command waits. */
export function timeouts(text: string, given: boolean, waits: boolean): Timeouts {
  const timeout = parseDuration(text);
  if (timeout === undefined) throw new UsageError(`--timeout "${text}" is not a duration (use e.g. 500ms, 3s, 1m)`);
  if (timeout <= 0) throw new UsageError(`--timeout "${text}" must be longer than 0`);
  // A longer timer fires at once: 1000h ended every command at once with "no answer within 1000h".
  if (timeout > MAX_DURATION_MS) throw new UsageError(`--timeout "${text}" is longer than 596h (24.8 days), the longest a timer holds`);
  return { callMs: waits ? parseDuration(DEFAULT_TIMEOUT)! : timeout, boundMs: waits && given ? timeout : undefined };
}

/** Our own deadline passed (the client library may still be retrying). */
export class DeadlineError extends Error {
  constructor() {
    super('deadline');
    this.name = 'DeadlineError';
  }
}

/**
 * `fn`'s result, or a DeadlineError a little after `timeoutMs` even if the client library
 * retries, or an "interrupted" CliError when `signal` aborts.
 */
export async function withDeadline<T>(fn: () => Promise<T>, timeoutMs: number, signal: AbortSignal | undefined): Promise<T> {
  if (signal?.aborted) throw new CliError('interrupted', INTERRUPTED);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError()), timeoutMs + 250);
    onAbort = () => reject(new CliError('interrupted', INTERRUPTED));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([fn(), bound]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
