// A failure from etcd (or from our own deadline) as one line the operator can act on.
import { errorMessage } from '../../controller/errors.js';
import { DeadlineError } from './deadline.js';
import { CliError } from './errors.js';
import { formatDuration } from './format.js';

/** `where` is "etcd at URLS"; `timeoutMs` the deadline that was missed, if that was it. */
export function etcdFailure(err: unknown, where: string, timeoutMs: number): CliError {
  if (err instanceof CliError) return err;
  const name = err instanceof Error ? err.constructor.name : '';
  const message = errorMessage(err);
  if (err instanceof DeadlineError || /deadline/i.test(message) || name === 'GRPCDeadlineExceededError') {
    return new CliError(`cannot reach ${where}: no answer within ${formatDuration(timeoutMs)}`);
  }
  if (/unauthenticated|authentication|permission denied|invalid auth token/i.test(message + name)) {
    return new CliError(`${where} refused the request: ${firstLine(message)}`);
  }
  if (
    /Unavailable|BrokenCircuit|ConnectFailed|ClientClosed|Cancelled/.test(name) ||
    /UNAVAILABLE|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENOTFOUND|No connection|circuit breaker/i.test(message)
  ) {
    const cause = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:|$)/.exec(message)?.[1];
    const reason = cause ?? (/circuit breaker/i.test(message) ? 'connection failed repeatedly' : firstLine(message));
    return new CliError(`cannot reach ${where}: ${reason.trim()}`);
  }
  return new CliError(`etcd request failed (${where}): ${firstLine(message)}`);
}

export function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
