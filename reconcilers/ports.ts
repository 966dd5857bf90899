// The boundaries of the domain: reconcilers write through a StateStore and call the
// ActionController through a client; src/ provides etcd- and gRPC-backed implementations.
import type { HistoryEntry, ReconcileRequestRecord } from '../domain/records.js';
import type { ResourceKind } from '../domain/states.js';

export type { HistoryEntry, ReconcileRequestRecord };

/** Where a stored key is now, as seen by the cache: a write is guarded by it. */
export interface StoredRevision {
  modRevision: number;
  version: number;
  createRevision?: number;
}

export interface StateTransition {
  kind: ResourceKind;
  name: string;
  to: string;
  /** The state key as the writer saw it; undefined means it must not exist yet. */
  expected: StoredRevision | undefined;
  history: HistoryEntry;
  /** Written or removed in the same transaction as the state. */
  reconcileRequest?: { put: ReconcileRequestRecord } | { delete: true };
}

export interface StateDeletion {
  kind: ResourceKind;
  name: string;
  expected: StoredRevision;
  /** Also drop the package's reconcile request. */
  deleteReconcileRequest?: boolean;
}

/** A state the decision read: the transaction commits only if it is still where it was seen. */
export interface ReadGuard {
  kind: ResourceKind;
  name: string;
  /** undefined means it must still be absent. */
  expected: StoredRevision | undefined;
}

export type CommitOutcome = { committed: true; revision: number } | { committed: false };

/**
 * A write the store refused as larger than one transaction may be (etcd's --max-txn-ops or
 * --max-request-bytes): nothing was written; the same writes in smaller transactions may pass.
 */
export interface TooLargeForOneWrite {
  readonly tooLarge: true;
}

export function isTooLarge(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Partial<TooLargeForOneWrite>).tooLarge === true;
}

export interface StateStore {
  writeState(t: StateTransition): Promise<CommitOutcome>;
  /**
   * Several transitions in one transaction, all or nothing: each guarded like writeState, and
   * every `unchanged` state still where the decision saw it (no write decided from a stale level).
   */
  writeStates(transitions: readonly StateTransition[], unchanged: readonly ReadGuard[]): Promise<CommitOutcome>;
  /** Writes waiting for a transaction slot (the store is the bottleneck while above zero). */
  writesWaiting(): number;
  deleteState(d: StateDeletion): Promise<CommitOutcome>;
  /**
   * Removes the history entries no stored state accounts for, left by a state key someone else
   * deleted: all of them while the state key is absent (`state` undefined, guarded on its
   * absence), else those past `state.version` (guarded on the state's mod revision), which a state
   * created again at version 1 does not overwrite.
   */
  trimHistory(kind: ResourceKind, name: string, state: StoredRevision | undefined): Promise<CommitOutcome>;
  /** Replace a reconcile request if it is still at `expected`. */
  updateReconcileRequest(record: ReconcileRequestRecord, expected: StoredRevision): Promise<CommitOutcome>;
  /**
   * A request for a package found in a trigger state with none (left so by another writer, e.g.
   * the StateManager this one replaced): written only while the package state is still at
   * `packageState` and no request exists.
   */
  createReconcileRequest(record: ReconcileRequestRecord, packageState: StoredRevision): Promise<CommitOutcome>;
  deleteReconcileRequest(pkg: string, expected: StoredRevision): Promise<CommitOutcome>;
  /** Remove an operator's resync request once applied, if it is still at `expected`. */
  deleteResyncRequest(id: string, expected: StoredRevision): Promise<CommitOutcome>;
  /**
   * Read from the store itself, not a cache, under the same guard as writes: the package's stored
   * state if its reconcile request is still at `expected`, else undefined (gone or changed).
   */
  confirmReconcileRequest(pkg: string, expected: StoredRevision): Promise<{ packageState: string | undefined } | undefined>;
}

export const POD_STATUS = {
  NONE: 0,
  INIT: 1,
  READY: 2,
  RUNNING: 3,
  DONE: 4,
  FAILED: 5,
  UNKNOWN: 6,
} as const;

export interface ReconcileCall {
  scenarioName: string;
  current: number;
  desired: number;
}

export interface ActionControllerClient {
  /** Resolves when the ActionController accepted the request; rejects otherwise. */
  reconcile(call: ReconcileCall): Promise<{ status: number; desc: string }>;
}

export interface Clock {
  /** Wall-clock time, ms since the epoch: for what is written or shown (history `at`, requests). */
  now(): number;
  /**
   * A monotonic reading in ms: for durations the controller measures itself (a node lease's
   * grace). A vehicle's wall clock steps when it first syncs (hours or years at boot): a grace
   * measured on it would be cut to nothing, or stretched by the step.
   */
  elapsed(): number;
}

export const systemClock: Clock = { now: () => Date.now(), elapsed: () => performance.now() };

// What the domain reports as it works; src/ turns it into log lines and metrics.

export type ReconcileRequestResult = 'created' | 'delivered' | 'failed' | 'cleared';

export interface DomainObserver {
  /** Bad input skipped: logged with the key, counted by reason. */
  invalidInput(reason: string, key: string, detail: string): void;
  /** A state change that was committed: one per change; `details` (who asked, for a requested change) go on the same line. */
  transition(kind: ResourceKind, name: string, from: string | null, to: string | null, reason: string, details?: Readonly<Record<string, string | number>>): void;
  reconcileRequest(result: ReconcileRequestResult, pkg: string, detail?: string): void;
}

export const silentObserver: DomainObserver = {
  invalidInput: () => undefined,
  transition: () => undefined,
  reconcileRequest: () => undefined,
};
