// What a package's state should become from its models' states, as the transition to write: the
// package reconciler decides it, and so does a model reconcile that writes the packages its new
// state changes in the same transaction (package-cascade.ts). One function, so both decide alike.
import type { CacheEntry } from '../controller/indexed-cache.js';
import { isDiagramEdge, nextPackageState, summarizeCounts } from '../domain/rules.js';
import type { ModelState, PackageState } from '../domain/states.js';
import type { StoredState } from './fleet.js';
import type { DomainObserver, ReconcileRequestRecord, StateTransition } from './ports.js';

export interface PackageDecision {
  transition: StateTransition;
  from: PackageState | null;
  reason: string;
  /** Entering a trigger state: a reconcile request is written with the state. */
  requestCreated: boolean;
  /** Leaving the trigger states: the reconcile request is removed with the state. */
  requestCleared: boolean;
}

export interface PackageDecisionInput {
  name: string;
  stored: CacheEntry<StoredState<PackageState>> | undefined;
  /** The package's models' states, in the definition's order ('Created' for one without a state). */
  modelStates: readonly ModelState[];
  hasRequest: boolean;
  triggerStates: ReadonlySet<PackageState>;
  /** Time of the decision, ms since the epoch. */
  now: number;
  source: string;
}

/** The transition to write, or undefined when the stored state is already what the rules say. */
export function decidePackage(i: PackageDecisionInput): PackageDecision | undefined {
  const prev = i.stored?.value.state;
  const next = nextPackageState(prev, i.modelStates);
  if (prev === next) return undefined;
  const reason = `models: ${summarizeCounts(i.modelStates)}`;
  const at = new Date(i.now).toISOString();
  const entering = i.triggerStates.has(next) && (prev === undefined || !i.triggerStates.has(prev));
  const leaving = !i.triggerStates.has(next) && i.hasRequest;
  const request: ReconcileRequestRecord | undefined = entering ? { package: i.name, state: next, requestedAt: at, deliveries: 0 } : undefined;
  return {
    transition: {
      kind: 'package',
      name: i.name,
      to: next,
      expected: i.stored,
      history: { kind: 'package', name: i.name, from: prev ?? null, to: next, at, reason, source: i.source, drawn: isDiagramEdge('package', prev, next) },
      ...(request ? { reconcileRequest: { put: request } } : leaving ? { reconcileRequest: { delete: true } } : {}),
    },
    from: prev ?? null,
    reason,
    requestCreated: request !== undefined,
    requestCleared: leaving,
  };
}

/** A committed decision, as log lines and metrics. */
export function reportPackageDecision(observer: DomainObserver, d: PackageDecision): void {
  const { name, to } = d.transition;
  observer.transition('package', name, d.from, to, d.reason);
  if (d.requestCreated) observer.reconcileRequest('created', name);
  if (d.requestCleared) observer.reconcileRequest('cleared', name, `package is ${to}`);
}
