// What an etcd failure means for a caller, and per-call deadlines so no etcd call can hang.
import {
  ClientClosedError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
} from 'etcd3';
import { errorMessage } from '../../controller/errors.js';
import { notSentMessage } from '../grpc/not-sent.js';
import type { TooLargeForOneWrite } from '../../reconcilers/ports.js';

export type EtcdFailure = 'timeout' | 'unavailable' | 'too-large' | 'no-space' | 'refused' | 'internal';

const TOO_MANY_REQUESTS = /too many requests/i;

export function classifyEtcdError(err: unknown): EtcdFailure {
  const message = errorMessage(err);
  if (err instanceof GRPCDeadlineExceededError || /deadline/i.test(message)) return 'timeout';
  // etcd's --max-txn-ops and --max-request-bytes.
  if (/too many operations|request is too large|message larger than max/i.test(message)) return 'too-large';
  // etcd's NOSPACE alarm: every write (a transaction with a put) is refused until an operator
  // frees space and disarms it; reads and deletes still work.
  if (/database space exceeded/i.test(message)) return 'no-space';
  // etcd's ErrGRPCAuthFailed and ErrGRPCPermissionDenied: statemanager's own user name, password
  // or role is wrong. Nothing was done, and nothing will be until an operator fixes them; a
  // stale token is not here (the clients authenticate again and resend).
  if (/authentication failed|invalid user ID or password|permission denied|user name is empty|user name not found/i.test(message)) return 'refused';
  // etcd's ErrTooManyRequests (its apply loop far behind its commits): refused before its Raft
  // proposal, nothing applied; etcd3 casts it to GRPCResourceExhastedError, which read as internal.
  if (TOO_MANY_REQUESTS.test(message)) return 'unavailable';
  if (err instanceof GRPCResourceExhastedError || err instanceof GRPCInvalidArgumentError) return 'internal';
  if (
    err instanceof GRPCUnavailableError ||
    err instanceof ClientClosedError ||
    // etcd's transient refusals while its Raft group changes (a leader moved, a member stopping):
    // nothing was applied, and the same request succeeds once it settles. "raft proposal dropped"
    // came as UNKNOWN during a forced leader move (black-box probing) and was an internal error.
    /unavailable|ECONNREFUSED|ECONNRESET|No connection|broken|circuit|no leader|leader changed|request timed out|client is closed|proposal dropped|server stopped/i.test(message)
  ) {
    return 'unavailable';
  }
  return 'internal';
}

/**
 * Whether a failed etcd write certainly applied nothing: it never left this process (no
 * connection to any member, the client closed, every member's circuit open), or etcd refused it
 * whole (too large, out of space, statemanager's credentials, too many requests). A timeout or a connection dropped
 * under it may have been applied.
 */
export function notApplied(err: unknown): boolean {
  if (err instanceof ClientClosedError) return true;
  const message = errorMessage(err);
  if (notSentMessage(message) || /circuit breaker is open|Connection pool has no hosts/i.test(message) || TOO_MANY_REQUESTS.test(message)) return true;
  const failure = classifyEtcdError(err);
  return failure === 'too-large' || failure === 'no-space' || failure === 'refused';
}

/** The deadline for one etcd call: the per-call timeout, but never past the client's own deadline. */
export function etcdDeadline(timeoutMs: number, callerDeadline?: number): number {
  const own = Date.now() + timeoutMs;
  return callerDeadline !== undefined && callerDeadline < own ? callerDeadline : own;
}


/**
 * etcd could not be reached or had no leader: the write did not happen, and nothing is wrong
 * with the key. Retried after a short delay instead of the key's growing backoff, so every key
 * is written within a second of etcd coming back.
 */
export class EtcdUnavailableError extends Error {
  readonly retryAfterMs: number;

  constructor(cause: unknown) {
    super(`etcd unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'EtcdUnavailableError';
    // Jittered, so the keys of a large fleet do not retry in step.
    this.retryAfterMs = 200 + Math.floor(Math.random() * 300);
  }
}

/**
 * etcd refused a write for want of space (its NOSPACE alarm is raised): nothing was written. Not
 * retried at once like EtcdUnavailableError (an alarm lasts until an operator acts, and every
 * key retrying twice a second would keep etcd busy refusing them): the key backs off as after any
 * failure, and the etcd probe queues every key again when the alarm is cleared.
 */
export class EtcdNoSpaceError extends Error {
  constructor(cause: unknown) {
    super(`etcd is out of space (NOSPACE alarm), nothing was written: ${errorMessage(cause)}`);
    this.name = 'EtcdNoSpaceError';
  }
}

/**
 * etcd refused statemanager's credentials or its role's permissions: nothing was written. Like
 * EtcdNoSpaceError it lasts until an operator acts, so the key backs off as after any failure.
 */
export class EtcdRefusedError extends Error {
  constructor(cause: unknown) {
    super(`etcd refused statemanager's credentials or permissions (etcd.username, etcd.password, its role), nothing was written: ${errorMessage(cause)}`);
    this.name = 'EtcdRefusedError';
  }
}

/**
 * etcd refused a transaction as larger than it takes (--max-txn-ops, --max-request-bytes): nothing
 * was written. Writes grouped into it can go in smaller groups; a single write too large for etcd
 * fails as it is.
 */
export class EtcdTooLargeError extends Error implements TooLargeForOneWrite {
  readonly tooLarge = true;
  constructor(cause: unknown) {
    super(`etcd refused the transaction as too large (its --max-txn-ops or --max-request-bytes), nothing was written: ${errorMessage(cause)}`);
    this.name = 'EtcdTooLargeError';
  }
}

/**
 * Rethrow a failed call's error, as EtcdUnavailableError when etcd was unreachable or leaderless,
 * EtcdNoSpaceError when it is out of space, EtcdRefusedError when it refused our credentials,
 * EtcdTooLargeError when the transaction was over its limits.
 */
export function asStoreError(err: unknown): Error {
  const kind = classifyEtcdError(err);
  if (kind === 'unavailable' || kind === 'timeout') return new EtcdUnavailableError(err);
  if (kind === 'no-space') return new EtcdNoSpaceError(err);
  if (kind === 'refused') return new EtcdRefusedError(err);
  if (kind === 'too-large') return new EtcdTooLargeError(err);
  return err instanceof Error ? err : new Error(String(err));
}
