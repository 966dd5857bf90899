// The shapes of the records the controller stores beside the states: a state's history entry
// and a package's durable reconcile request (contract section 1).
import type { ResourceKind } from './states.js';

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
  /**
   * Set on a request written apart from its state (a package found in a trigger state with none):
   * the package state's mod revision it was written against, which stands for "seen since".
   */
  packageStateRevision?: number;
}
