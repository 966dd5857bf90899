// The boundaries of the domain: reconcilers write through a StateStore and call the
// ActionController through a client; src/ provides etcd- and gRPC-backed implementations.
import type { ResourceKind } from './states.js';

/** Where a stored key is now, as seen by the cache: a write is guarded by it. */
export interface StoredRevision {
  modRevision: number;
  version: number;
  createRevision?: number;
}

export interface HistoryEntry {
  kind: ResourceKind;
  name: string;
  /** null for a resource that had no state yet. */
  from: string | null;
  to: string;
  /** ISO-8601 time of the decision. */
  at: string;
  reason: string;
  /** Who asked: "controller" for derived states, the caller-supplied `source` for requested ones. */
  source: string;
  /**
   * The authenticated identity of a requested change (`cn:…`, `token:…`, or "anonymous"),
   * which unlike `source` the caller cannot choose.
   */
  identity?: string;
  transitionId?: string;
  /** False when the level-based rules jumped over an edge the design's diagram does not draw. */
  drawn: boolean;
}

/** A durable request to have a failed package repaired, kept under /statemanager/reconcile/. */
export interface ReconcileRequestRecord {
  package: string;
  /** The state that triggered it (Error by default). */
  state: string;
  requestedAt: string;
  /** Successful Reconcile calls so far. */
  deliveries: number;
  lastDeliveredAt?: string;
  /** The scenario named in the last delivered call. */
  scenario?: string;
  /** Failed calls since the last success (informational; retries are driven by the queue). */
  failures?: number;
  lastError?: string;
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

export type CommitOutcome = { committed: true; revision: number } | { committed: false };

export interface StateStore {
  writeState(t: StateTransition): Promise<CommitOutcome>;
  deleteState(d: StateDeletion): Promise<CommitOutcome>;
  /** Replace a reconcile request if it is still at `expected`. */
  updateReconcileRequest(record: ReconcileRequestRecord, expected: StoredRevision): Promise<CommitOutcome>;
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
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
