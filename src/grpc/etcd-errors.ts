// What an etcd failure means for a caller, and per-call deadlines so no etcd call can hang.
import {
  ClientClosedError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
} from 'etcd3';

export type EtcdFailure = 'timeout' | 'unavailable' | 'too-large' | 'internal';

export function classifyEtcdError(err: unknown): EtcdFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof GRPCDeadlineExceededError || /deadline/i.test(message)) return 'timeout';
  // etcd's --max-txn-ops and --max-request-bytes.
  if (/too many operations|request is too large|message larger than max/i.test(message)) return 'too-large';
  if (err instanceof GRPCResourceExhastedError || err instanceof GRPCInvalidArgumentError) return 'internal';
  if (
    err instanceof GRPCUnavailableError ||
    err instanceof ClientClosedError ||
    /unavailable|ECONNREFUSED|ECONNRESET|No connection|broken|circuit/i.test(message)
  ) {
    return 'unavailable';
  }
  return 'internal';
}

/** The deadline for one etcd call: the per-call timeout, but never past the client's own deadline. */
export function etcdDeadline(timeoutMs: number, callerDeadline?: number): number {
  const own = Date.now() + timeoutMs;
  return callerDeadline !== undefined && callerDeadline < own ? callerDeadline : own;
}

/** A grpc-js server call's deadline as epoch milliseconds (undefined when the client set none). */
export function callerDeadlineMs(deadline: Date | number | undefined): number | undefined {
  if (deadline === undefined) return undefined;
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}
