// A package's state from its models; entering a trigger state (Error by default) writes a
// durable reconcile request in the same transaction, leaving one removes it.
import type { Reconciler, ReconcileResult } from '../controller/controller.js';
import { CONFLICT } from './conflict.js';
import type { Fleet } from './fleet.js';
import type { DomainObserver } from './observer.js';
import type { LagTracker } from './lag-tracker.js';
import type { Clock, ReconcileRequestRecord, StateStore, StateTransition } from './ports.js';
import { isDiagramEdge, nextPackageState } from './rules.js';
import type { ModelState, PackageState } from './states.js';
import { summarizeCounts } from './summary.js';

export interface PackageReconcilerDeps {
  fleet: Fleet;
  store: StateStore;
  observer: DomainObserver;
  clock: Clock;
  /** Recorded in history: which replica decided. */
  source: string;
  triggerStates: ReadonlySet<PackageState>;
  lag?: LagTracker;
}

export class PackageReconciler implements Reconciler {
  constructor(private readonly d: PackageReconcilerDeps) {}

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const { fleet, store, observer } = this.d;
    const stored = fleet.storedPackageState(name);
    const models = fleet.modelsOfPackage(name);
    const hasRequest = fleet.reconcileRequest(name) !== undefined;

    if (models === undefined) {
      this.d.lag?.packageSettled(name, false);
      if (!stored) return;
      const res = await store.deleteState({ kind: 'package', name, expected: stored, deleteReconcileRequest: hasRequest });
      if (!res.committed) return CONFLICT;
      observer.transition('package', name, stored.value.state ?? null, null, 'package definition removed');
      if (hasRequest) observer.reconcileRequest('cleared', name, 'package removed');
      return;
    }

    const plan = this.plan(name);
    if (plan === undefined) {
      this.d.lag?.packageSettled(name, false);
      return;
    }
    const res = await store.writeState(plan.transition);
    if (!res.committed) return CONFLICT;
    plan.committed();
    this.d.lag?.packageSettled(name, true);
  }

  /**
   * The package's next state from its models' stored states (`override` standing in for one
   * model whose new state is being written in the same transaction), as a transition and what
   * to report once it is committed; undefined when nothing changes or the package has no
   * definition (deletion is the reconcile's own path).
   */
  plan(name: string, override?: { model: string; state: ModelState }): PackagePlan | undefined {
    const { fleet, observer, triggerStates } = this.d;
    const models = fleet.modelsOfPackage(name);
    if (models === undefined) return undefined;
    const stored = fleet.storedPackageState(name);
    const hasRequest = fleet.reconcileRequest(name) !== undefined;
    const states: ModelState[] = [];
    for (const m of models) states.push(override?.model === m ? override.state : (fleet.storedModelState(m)?.value.state ?? 'Created'));
    const prev = stored?.value.state;
    const next = nextPackageState(prev, states);
    if (prev === next) return undefined;

    const now = new Date(this.d.clock.now()).toISOString();
    const reason = `models: ${summarizeCounts(states)}`;
    const entering = triggerStates.has(next) && (prev === undefined || !triggerStates.has(prev));
    const leaving = !triggerStates.has(next) && hasRequest;
    const request: ReconcileRequestRecord | undefined = entering
      ? { package: name, state: next, requestedAt: now, deliveries: 0 }
      : undefined;
    const transition: StateTransition = {
      kind: 'package',
      name,
      to: next,
      expected: stored,
      history: {
        kind: 'package',
        name,
        from: prev ?? null,
        to: next,
        at: now,
        reason,
        source: this.d.source,
        drawn: isDiagramEdge('package', prev, next),
      },
      ...(request ? { reconcileRequest: { put: request } } : leaving ? { reconcileRequest: { delete: true } } : {}),
    };
    return {
      transition,
      committed: () => {
        observer.transition('package', name, prev ?? null, next, reason);
        if (request) observer.reconcileRequest('created', name);
        if (leaving) observer.reconcileRequest('cleared', name, `package is ${next}`);
      },
    };
  }
}

/** A package state change to write, and what to report once it is committed (the lag is the writer's). */
export interface PackagePlan {
  transition: StateTransition;
  committed(): void;
}
